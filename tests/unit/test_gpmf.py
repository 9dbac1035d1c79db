"""GoPro GPMF telemetry (framesift.gpmf, framesift.media.telemetry): KLVs read, the GPS stream's
samples scaled, timed across their payload and placed; payloads without a fix or a good DOP
skipped, bad ones dropped with a note."""

from __future__ import annotations

from datetime import timedelta

import pytest

from framesift.capture import CaptureFields
from framesift.gpmf import Payload, parse_gpmf, payload_points, read_klvs
from framesift.media.telemetry import hex_dump_bytes, read_payloads, telemetry_stream
from tests.support import footage as fs


def test_a_payloads_gps5_samples_are_scaled_and_spread_over_its_duration():
    payload = fs.gpmf_payload(fs.gps_stream(0, 1001, 18))
    points = payload_points(payload, 2000, 1001)

    assert len(points) == 18
    step = 1001 / 18
    assert [p.time_ms for p in points] == [round(2000 + i * step) for i in range(18)]
    for index, point in enumerate(points):
        want = fs.gopro_position(index * step)
        assert (point.latitude, point.longitude) == pytest.approx(want, abs=1e-7)
        assert point.altitude == pytest.approx(fs.GOPRO_START[2])
        assert point.utc == fs.GOPRO_UTC + timedelta(milliseconds=index * step)


def test_the_accelerometer_stream_beside_the_gps_is_passed_over():
    payload = fs.gpmf_payload(fs.gps_stream(0, 1001, 18))
    [device] = read_klvs(payload)
    keys = [
        [k.key for k in read_klvs(s.data)][-1] for s in read_klvs(device.data) if s.type == "\0"
    ]
    assert keys == [b"ACCL", b"GPS5"]  # both there; only GPS5 makes points (above)


@pytest.mark.parametrize(("fix", "dop"), [(0, 250), (3, 500)])
def test_a_payload_without_a_fix_or_with_a_poor_one_gives_no_position(fix, dop):
    payload = fs.gpmf_payload(fs.gps_stream(0, 1001, 18, fix=fix, dop=dop))
    assert payload_points(payload, 0, 1001) == []


def test_gps9_samples_carry_their_own_time_and_those_without_a_fix_are_skipped():
    payload = fs.gpmf_payload(fs.gps9_stream(1000, 1000, 10, fixes=(0, 3, 2)))
    points = payload_points(payload, 1000, 1000)

    assert [p.time_ms for p in points] == [1000 + 100 * i for i in range(1, 10)]  # not the first
    for point in points:
        at = point.time_ms  # the generated flight's clock is the video's here
        assert (point.latitude, point.longitude) == pytest.approx(fs.gopro_position(at), abs=1e-7)
        assert point.utc is not None
        assert abs(point.utc - (fs.GOPRO_UTC + timedelta(milliseconds=at))) < timedelta(
            milliseconds=1
        )


def test_a_hero11_payload_is_read_from_gps9_not_its_gps5_too():
    payload = fs.gpmf_payload(fs.gps_stream(0, 1000, 18), fs.gps9_stream(0, 1000, 10))
    assert len(payload_points(payload, 0, 1000)) == 10  # GPS9's 10 a second, not GPS5's 18


def test_gps9_with_a_poor_dop_or_a_type_that_does_not_fit_gives_no_position():
    assert payload_points(fs.gpmf_payload(fs.gps9_stream(0, 1000, 10, dop=5.0)), 0, 1000) == []
    stream = fs.gps9_stream(0, 1000, 2).replace(b"lllllllSS", b"llllllllS")
    track = parse_gpmf("GX01.MP4", [Payload(0, 1000, fs.gpmf_payload(stream))])
    assert track.points == []
    assert track.notes[0].endswith("TYPE 'llllllllS' does not lay out 32 bytes")


def test_a_bad_payload_is_dropped_with_a_note_and_the_good_ones_kept():
    good = fs.gpmf_payload(fs.gps_stream(1001, 1001, 18))
    payloads = [Payload(0, 1001, good[:100]), Payload(1001, 1001, good)]
    track = parse_gpmf("GX01.MP4", payloads)

    assert len(track.points) == 18 and track.points[0].time_ms == 1001
    assert track.notes == [
        f"GX01.MP4 GPMF: 1 payload(s) dropped, first 0 ms: b'DEVC' runs {len(good) - 100} "
        "bytes past its payload"
    ]


def test_positions_out_of_range_drop_their_payload():
    stream = fs.gps_stream(0, 1001, 2)
    at = stream.index(b"GPS5") + 8
    bad = stream[:at] + (200 * 10_000_000).to_bytes(4, "big", signed=True) + stream[at + 4 :]
    track = parse_gpmf("GX01.MP4", [Payload(0, 1001, fs.gpmf_payload(bad))])
    assert track.points == []
    assert track.notes[0].endswith("0 ms: 200.0, 8.5417 out of range")


def test_a_frame_on_the_track_takes_its_place_and_the_gps_time():
    track = parse_gpmf("GX01.MP4", [Payload(0, 1001, fs.gpmf_payload(fs.gps_stream(0, 1001, 18)))])
    camera_clock = CaptureFields(
        captured_at=fs.GOPRO_UTC + timedelta(hours=2), latitude=1.0, longitude=1.0
    )
    frame = track.placed(camera_clock.at(500), 500)

    assert (frame.latitude, frame.longitude) == pytest.approx(fs.gopro_position(500), abs=5e-7)
    assert frame.captured_at is not None
    assert abs(frame.captured_at - (fs.GOPRO_UTC + timedelta(milliseconds=500))) < timedelta(
        milliseconds=1
    )


def test_ffprobes_hex_dump_is_read_back_to_the_bytes():
    dump = (
        "\n00000000: 4445 5643 0004 008f 4456 4944 4c04 0001  DEVC....DVIDL...\n"
        "00000010: 0000 0001                                ....\n"
    )
    assert hex_dump_bytes(dump) == bytes.fromhex("44455643 0004008f 44564944 4c040001 00000001")


def test_payloads_are_timed_from_the_videos_first_frame():
    said = {
        "format": {"start_time": "0.500000"},
        "packets": [
            {"pts_time": "0.500000", "duration_time": "1.001000", "data": "00000000: 4142 4344"},
            {"pts_time": "N/A", "duration_time": "1.0", "data": ""},
        ],
    }
    [payload] = read_payloads(said, origin_s=0.1)
    assert payload.time_ms == pytest.approx(-100)  # the video starts 0.1 s after the file
    assert payload.duration_ms == pytest.approx(1001)
    assert payload.data == b"ABCD"


def test_the_gpmf_track_is_the_stream_tagged_gpmd():
    streams = [
        {"index": 0, "codec_type": "video", "codec_tag_string": "avc1"},
        {"index": 3, "codec_type": "data", "codec_tag_string": "fdsc"},  # GoPro's SOS track
        {"index": 4, "codec_type": "data", "codec_tag_string": "gpmd"},
    ]
    assert telemetry_stream(streams) == 4
    assert telemetry_stream(streams[:2]) is None

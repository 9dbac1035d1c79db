"""DJI .SRT telemetry (framesift.track): cues read, a frame's position interpolated between them,
cues without a fix skipped and bad ones dropped with a note."""

from __future__ import annotations

import pytest

from framesift.capture import CaptureFields
from framesift.track import EDGE_MS, is_sidecar, parse_dji_srt, sidecar_names, with_sidecars
from tests.support import footage as fs


@pytest.mark.parametrize("longitude_key", ["longitude", "longtitude"])
def test_a_dji_srt_gives_a_position_between_its_cues(tmp_path, longitude_key):
    srt = fs.dji_srt(tmp_path / "DJI_0001.SRT", longitude_key=longitude_key)
    track = parse_dji_srt("DJI_0001.SRT", srt.read_bytes())

    # The first cue, at 0 ms, has no GPS fix: the track starts at the second.
    assert [p.time_ms for p in track.points][:3] == [300, 600, 900]
    assert track.notes == []
    last = 1500  # the last cue: the video's 1.5 s
    for time_ms in (300, 1000, 1900):  # on a cue, between two, past the last within EDGE_MS
        point = track.position(time_ms)
        assert point is not None
        want = fs.drone_position(min(time_ms, last))
        assert (point.latitude, point.longitude) == pytest.approx(want, abs=1e-9)
        assert point.altitude == pytest.approx(fs.DRONE_START[2])


def test_no_position_far_from_the_track():
    track = parse_dji_srt(
        "x.SRT", b"1\n00:00:10,000 --> 00:00:10,033\n[latitude: 1.0] [longitude: 2.0]\n"
    )
    assert track.position(10_000 - EDGE_MS - 1) is None
    assert track.position(10_000 + EDGE_MS) is not None


def test_bad_cues_are_dropped_with_a_note_and_the_frame_keeps_the_containers_place():
    data = (
        b"1\n00:00:00,000 --> 00:00:00,033\n[latitude: 200.0] [longitude: 2.0]\n\n"
        b"2\n00:00:00,033 --> 00:00:00,066\n[latitude: 91.0] [longitude: 2.0]\n"
    )
    track = parse_dji_srt("DJI_0002.SRT", data)
    assert track.points == []
    assert track.notes == ["DJI_0002.SRT: 2 cue(s) dropped, first 0 ms: 200.0, 2.0 out of range"]
    video = CaptureFields(latitude=1.0, longitude=2.0)
    assert track.placed(video, 0) == video.model_copy(update={"metadata_notes": track.notes})


def test_text_that_is_no_srt_is_an_empty_track():
    assert parse_dji_srt("x.SRT", b"\xff\xfe not a subtitle").points == []


def test_a_sidecar_is_named_after_its_video():
    assert sidecar_names("raw/drone/DJI_0001.MP4") == [
        "raw/drone/DJI_0001.SRT",
        "raw/drone/DJI_0001.srt",
    ]
    assert is_sidecar("raw/drone/DJI_0001.SRT") and not is_sidecar("raw/drone/DJI_0001.MP4")


def test_a_videos_sidecar_is_uploaded_just_before_it_and_once(tmp_path):
    drone, sidecar, other = (tmp_path / n for n in ("DJI_0001.MP4", "DJI_0001.SRT", "b.mp4"))
    for path in (drone, sidecar, other):
        path.write_bytes(b"x")

    assert with_sidecars([other, drone, sidecar]) == [other, sidecar, drone]
    assert with_sidecars([sidecar]) == [sidecar]  # alone, when named

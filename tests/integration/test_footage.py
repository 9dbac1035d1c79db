"""Footage as devices write it (#30): what each generated file carries, and what framesift does
with it today.

The first half checks tests/support/footage.py's files with ffprobe, ffmpeg and Pillow, so the
generator cannot drift into writing ffmpeg's defaults. The second half runs the files through the
embedded pipeline; where framesift is wrong today the test is a strict xfail naming #30, and it
turns into a failure (to be unmarked) the day the fix lands.
"""

from __future__ import annotations

import html
import io
import json
import subprocess
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image, ImageOps

from framesift import bootstrap, media
from framesift.documents import Box, VideoRecord, VideoStatus
from framesift.embedded import EmbeddedPipeline
from framesift.errors import StillSampling
from framesift.events import PubSubMessage, finalize_message
from framesift.imagestats import image_stats, layout_distance
from framesift.messages import Segment
from framesift.report import sources, write_report
from framesift.sampling import SamplingPolicy
from framesift.snapshot import Layout, write_snapshot
from framesift.topology import Topics
from tests.support import footage as fs
from tests.support.footage import Footage
from tests.support.labels import annotate

OLD_FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
BUILDS = {"ffmpeg-system": "ffmpeg", "ffmpeg-4.2": OLD_FFMPEG}
UPRIGHT_MARKS = {"tl": "red", "tr": "green", "bl": "blue", "br": ""}
# Where the coded picture's top-left red block is shown after each clockwise turn.
RED_CORNER = {0: "tl", 90: "tr", 270: "bl"}


@pytest.fixture(scope="module", params=list(BUILDS), ids=list(BUILDS))
def videos(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Every video case, made by the machine's ffmpeg and by the static 4.2.2."""
    return fs.make_videos(tmp_path_factory.mktemp(request.param), BUILDS[request.param])


@pytest.fixture(scope="module")
def system_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Footage]:
    return fs.make_videos(tmp_path_factory.mktemp("footage"), "ffmpeg")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Footage]:
    return fs.make_photos(tmp_path_factory.mktemp("photos"))


def _stream(path: Path) -> dict[str, Any]:
    return fs.video_streams(fs.ffprobe(path))[0]


def _decoded(
    path: Path, *options: str, ffmpeg: str = "ffmpeg", filters: str = "null"
) -> Image.Image:
    """The first frame as ffmpeg decodes it (auto-rotated unless told otherwise), as RGB."""
    done = subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            *options,
            "-i",
            str(path),
            "-vf",
            filters,
            "-frames:v",
            "1",
            "-f",
            "image2pipe",
            "-c:v",
            "png",
            "-",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return Image.open(io.BytesIO(done.stdout)).convert("RGB")


def _combing(picture: Image.Image) -> float:
    """How much each row differs from the mean of its neighbours beyond what the rows two
    apart do: near 0 for a progressive picture, large for two fields woven from two instants."""
    luma = np.asarray(picture.convert("L"), dtype=float)
    between = np.abs(luma[1:-1] - (luma[:-2] + luma[2:]) / 2).mean()
    apart = np.abs(luma[2:] - luma[:-2]).mean() / 2
    return float(between - apart)


# ------------------------------------------------------------------ what the files carry


@pytest.mark.parametrize("rotation", [90, 270])
def test_portrait_video_is_coded_landscape_with_the_phones_display_matrix(videos, rotation):
    case = videos[f"portrait-{rotation}"]
    stream = _stream(case.path)

    assert (stream["width"], stream["height"]) == (case.expected.coded_width, 240)
    assert fs.display_matrix(case.path) == fs.PHONE_MATRIX[rotation]
    [side] = [s for s in stream["side_data_list"] if s["side_data_type"] == "Display Matrix"]
    # ffprobe 5.1 gives the angle counter-clockwise: a phone's 90° clockwise is -90.
    assert side["rotation"] == {90: -90, 270: 90}[rotation]
    assert "rotate" not in stream.get("tags", {})  # 5.x reads the matrix as side data only
    shown = _decoded(case.path)
    assert shown.size == (case.expected.width, case.expected.height) == (240, 320)
    assert fs.mark_corners(shown)[RED_CORNER[rotation]] == "red"
    coded = _decoded(case.path, "-noautorotate")
    assert coded.size == (320, 240) and fs.mark_corners(coded)["tl"] == "red"


@pytest.mark.parametrize("rotation", [90, 270])
def test_ffmpeg_4_reads_the_display_matrix_as_a_clockwise_rotate_tag(system_videos, rotation):
    said = subprocess.run(
        [OLD_FFMPEG, "-hide_banner", "-i", str(system_videos[f"portrait-{rotation}"].path)],
        capture_output=True,
        text=True,
        timeout=60,
    ).stderr
    assert f"rotate          : {rotation}" in said
    assert f"displaymatrix: rotation of {-rotation if rotation == 90 else 90}.00 degrees" in said
    shown = _decoded(system_videos[f"portrait-{rotation}"].path, ffmpeg=OLD_FFMPEG)
    assert shown.size == (240, 320)
    assert fs.mark_corners(shown)[RED_CORNER[rotation]] == "red"


@pytest.mark.parametrize("kind", ["hlg", "pq"])
def test_hdr_is_10_bit_hevc_tagged_bt2020_hlg_or_pq_as_phones_tag_it(videos, kind):
    case = videos[f"hdr-{kind}"]
    stream = _stream(case.path)
    assert (stream["codec_name"], stream["profile"], stream["pix_fmt"]) == (
        "hevc",
        "Main 10",
        "yuv420p10le",
    )
    assert (stream["color_transfer"], stream["color_primaries"], stream["color_space"]) == (
        case.expected.transfer,
        "bt2020",
        "bt2020nc",
    )
    assert stream["codec_tag_string"] == "hvc1"  # as Apple writes HEVC
    reference = _stream(videos["sdr-reference"].path)
    assert (reference["color_transfer"], reference["pix_fmt"]) == ("bt709", "yuv420p")


def _rgb(path: Path, chain: str) -> np.ndarray:
    to_rgb = "scale=in_color_matrix=bt709:in_range=tv:out_range=pc,format=rgb24"
    done = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(path),
            "-vf",
            f"{chain},{to_rgb}",
            "-frames:v",
            "2",
            "-f",
            "rawvideo",
            "-",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return np.frombuffer(done.stdout, np.uint8).astype(int).reshape(-1, 240, 320, 3)


# docs/footage.md: zscale back to linear light and on to BT.709 (clipping, no knee).
TO_SDR = (
    "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=clip:desat=0,"
    "zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
)


@pytest.mark.parametrize("kind", ["hlg", "pq"])
def test_hdr_holds_the_reference_content_and_is_far_from_it_untouched(system_videos, kind):
    """Tone-mapped back, the HDR file is the SDR reference within coding loss (measured 7-10 of
    255); read as if it were SDR, as framesift does today, it is 69-87 away."""
    reference = _rgb(system_videos["sdr-reference"].path, "format=yuv420p")
    hdr = system_videos[f"hdr-{kind}"].path
    assert np.abs(_rgb(hdr, TO_SDR) - reference).mean() < 12
    assert np.abs(_rgb(hdr, "format=yuv420p") - reference).mean() > 60


def test_interlaced_ts_starts_late_top_field_first_and_combs(system_videos):
    case = system_videos["interlaced-late"]
    info = fs.ffprobe(case.path)
    stream = fs.video_streams(info)[0]

    assert info["format"]["format_name"] == "mpegts"
    assert float(info["format"]["start_time"]) == pytest.approx(fs.LATE_START_S, abs=0.002)
    assert float(stream["start_time"]) == pytest.approx(fs.LATE_START_S, abs=0.002)
    assert (stream["codec_name"], stream["field_order"]) == ("mpeg2video", "tt")
    woven = _decoded(case.path, "-ss", "0.5")
    deinterlaced = _decoded(case.path, "-ss", "0.5", filters="bwdif=deint=interlaced")
    assert _combing(woven) > 3
    assert _combing(deinterlaced) < _combing(woven) / 3


def test_an_interlaced_portrait_video_combs_along_its_coded_rows(videos):
    case = videos["interlaced-portrait"]
    stream = _stream(case.path)

    assert (stream["codec_name"], stream["field_order"]) == ("h264", "tt")
    assert fs.display_matrix(case.path) == fs.PHONE_MATRIX[90]
    coded = _decoded(case.path, "-noautorotate", "-ss", "0.5")
    assert coded.size == (320, 240) and fs.mark_corners(coded)["tl"] == "red"
    assert _combing(coded) > 5


def test_ffmpeg_4_2_static_cannot_read_mpeg_ts(system_videos):
    """The static 4.2.2 build the tests run as the old ffmpeg crashes (SIGSEGV) opening any
    MPEG-TS input, so the late-start case runs on the machine's ffmpeg only."""
    done = subprocess.run(
        [
            OLD_FFMPEG,
            "-v",
            "error",
            "-i",
            str(system_videos["interlaced-late"].path),
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == -11
    assert {"interlaced-late"} == fs.OLD_FFMPEG_CANNOT_READ


def test_vfr_frames_come_at_the_uneven_times_written(videos):
    case = videos["vfr"]
    stream = _stream(case.path)
    assert fs.frame_times(case.path) == pytest.approx(list(case.expected.frame_times_s), abs=0.002)
    assert stream["avg_frame_rate"] != stream["r_frame_rate"]


@pytest.mark.parametrize(
    ("name", "codec", "format_name", "pix_fmt"),
    [
        ("vp9", "vp9", "matroska,webm", "yuv420p"),
        ("av1", "av1", "mov,mp4,m4a,3gp,3g2,mj2", "yuv420p"),
        ("mjpeg", "mjpeg", "avi", "yuvj420p"),
    ],
)
def test_other_codecs_and_containers(videos, name, codec, format_name, pix_fmt):
    case = videos[name]
    info = fs.ffprobe(case.path)
    stream = fs.video_streams(info)[0]
    assert (stream["codec_name"], info["format"]["format_name"], stream["pix_fmt"]) == (
        codec,
        format_name,
        pix_fmt,
    )
    assert (stream["width"], stream["height"]) == (case.expected.width, case.expected.height)
    assert fs.decodes("ffmpeg", case.path) and fs.decodes(OLD_FFMPEG, case.path)


def test_two_video_streams_the_second_is_the_default(videos):
    streams = fs.video_streams(fs.ffprobe(videos["two-streams"].path))
    assert [(s["width"], s["disposition"]["default"]) for s in streams] == [
        (320, 0),
        (160, 1),
    ]


def test_the_index_is_where_each_writer_puts_it(videos):
    placed = {
        n: c.expected.moov_first for n, c in videos.items() if c.expected.moov_first is not None
    }
    assert placed == {
        "portrait-90": False,
        "portrait-270": True,
        "moov-at-end": False,
        "iphone-metadata": False,
        "android-metadata": True,
        "gopro": False,  # GoPro writes the index last, as it records
        "interlaced-portrait": True,
    }
    assert {n: fs.moov_before_mdat(videos[n].path) for n in placed} == placed


def test_audio_only_has_no_video_stream(videos):
    info = fs.ffprobe(videos["audio-only"].path)
    assert [s["codec_type"] for s in info["streams"]] == ["audio"]


def test_iphone_and_android_capture_metadata_as_their_writers_put_it(videos):
    iphone = fs.ffprobe(videos["iphone-metadata"].path)["format"]["tags"]
    assert iphone["creation_time"] == "2024-05-04T12:03:22.000000Z"
    assert iphone["com.apple.quicktime.creationdate"] == "2024-05-04T14:03:22+0200"
    assert iphone["com.apple.quicktime.location.ISO6709"] == "+48.8584+002.2945+035.000/"
    assert (
        iphone["com.apple.quicktime.make"],
        iphone["com.apple.quicktime.model"],
        iphone["com.apple.quicktime.software"],
    ) == ("Apple", "iPhone 15 Pro", "17.4.1")
    assert b"mdta" in videos["iphone-metadata"].path.read_bytes()  # QuickTime keys, not udta
    android = fs.ffprobe(videos["android-metadata"].path)["format"]["tags"]
    assert android["creation_time"] == "2024-05-04T12:03:22.000000Z"
    assert android["location"] == "+48.8584+002.2945/"
    assert b"loci" in videos["android-metadata"].path.read_bytes()
    assert not any("make" in key or "model" in key for key in android)


def test_a_gopro_mp4_carries_a_gpmd_track_of_gpmf_payloads_as_gopro_writes_it(videos):
    case = videos["gopro"]
    info = fs.ffprobe(case.path)
    [data] = [s for s in info["streams"] if s["codec_type"] == "data"]
    # As ffprobe shows a GoPro's own files (a tab before the handler name included).
    assert (data["codec_tag_string"], data["tags"]["handler_name"]) == ("gpmd", "\tGoPro MET")
    assert info["format"]["tags"]["creation_time"] == fs.GOPRO_CREATION_TIME
    packets = fs.ffprobe(
        case.path, "-select_streams", "d", "-show_entries", "packet=pts_time,duration_time"
    )["packets"]
    assert [(p["pts_time"], p["duration_time"]) for p in packets] == [
        ("0.000000", "1.001000"),
        ("1.001000", "0.499000"),
    ]
    first = fs.gopro_payloads()[0][1]
    assert first.startswith(b"DEVC") and fs.GPS_STREAM_NAME in first
    assert first in case.path.read_bytes()  # copied as it was, not re-packed


def test_bad_metadata_is_really_in_the_file(videos):
    case = videos["bad-metadata"]
    tags = fs.ffprobe(case.path)["format"]["tags"]
    assert tags["creation_time"].startswith("9999-12-31")
    assert tags["com.apple.quicktime.creationdate"].startswith("0000-")
    assert tags["com.apple.quicktime.location.ISO6709"].startswith("+200.0000")
    assert len(tags["com.apple.quicktime.model"]) == fs.BIG_TAG_BYTES
    assert fs.BAD_UTF8 in case.path.read_bytes()
    # ffprobe replaces what is not UTF-8 (its -string_validation default) rather than failing.
    assert "\ufffd" in tags["com.apple.quicktime.make"]
    assert tags["com.apple.quicktime.software"] == "17.4.1"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_photo_shows_upright_only_after_its_exif_orientation(photos, orientation):
    case = photos[f"exif-{orientation}"]
    stored = Image.open(case.path)
    exif = stored.getexif()

    assert stored.size == fs.PHOTO_STORED
    assert exif[0x0112] == orientation
    shown = ImageOps.exif_transpose(stored)
    assert shown.size == (case.expected.width, case.expected.height)
    assert fs.mark_corners(shown) == UPRIGHT_MARKS
    if orientation != 1:
        assert fs.mark_corners(stored) != UPRIGHT_MARKS


def test_the_eight_orientations_store_eight_different_pictures(photos):
    stored = {
        tuple(fs.mark_corners(Image.open(photos[f"exif-{o}"].path)).values()) for o in range(1, 9)
    }
    assert len(stored) == 8


def test_photo_carries_capture_time_offset_gps_and_camera(photos):
    exif = Image.open(photos["exif-6"].path).getexif()
    capture = fs.PHOTO_CAPTURE
    assert (exif[0x010F], exif[0x0110], exif[0x0131]) == (
        capture.make,
        capture.model,
        capture.software,
    )
    taken = exif.get_ifd(0x8769)
    assert (taken[0x9003], taken[0x9011]) == ("2024:05:04 14:03:22", "+02:00")
    gps = exif.get_ifd(0x8825)

    def degrees(dms: tuple[Any, ...]) -> float:
        return float(dms[0]) + float(dms[1]) / 60 + float(dms[2]) / 3600

    assert (gps[1], gps[3], gps[5]) == ("N", "E", b"\x00")
    assert degrees(gps[2]) == pytest.approx(capture.latitude, abs=1e-5)
    assert degrees(gps[4]) == pytest.approx(capture.longitude, abs=1e-5)
    assert float(gps[6]) == capture.altitude


def test_a_truncated_exif_block_keeps_what_is_whole_and_loses_the_rest(photos):
    case = photos["exif-truncated"]
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        picture = Image.open(case.path)  # Pillow reads the EXIF block as it opens the file
        exif = picture.getexif()
        whole = (exif.get(0x010F), exif.get(0x0110), exif.get(0x0112))
        lost = (exif.get(0x0131), dict(exif.get_ifd(0x8769)), dict(exif.get_ifd(0x8825)))
    assert any("Truncated" in str(w.message) for w in said)
    assert whole == ("Canon", "Canon EOS R6", 1)
    assert lost == (None, {}, {})
    assert picture.info["exif"].startswith(b"Exif\x00\x00MM")
    assert picture.convert("RGB").size == fs.PHOTO_STORED  # the picture itself is whole


# ------------------------------------------------------------ what framesift does today


def _sample(settings: Any, case: Footage) -> tuple[dict[str, Any], list[tuple[dict, Image.Image]]]:
    """Run one file through the embedded pipeline: its video record, and each frame document
    with its JPEG, in time order."""
    pipeline = EmbeddedPipeline(settings)
    result = pipeline.run([case.path], collector="cam").results[-1]
    video = pipeline.adapters.documents.get("videos", result.video_doc_id or "")
    assert video is not None
    docs = pipeline.adapters.documents.where("frames", "video_doc_id", video["id"])
    frames = [
        (doc, Image.open(io.BytesIO(pipeline.blobs.get(doc["bucket"], doc["object_name"]))))
        for doc in sorted(docs, key=lambda d: d["timestamp_ms"])
    ]
    return video, frames


def _photo_record(settings: Any, case: Footage) -> dict[str, Any]:
    pipeline = EmbeddedPipeline(settings)
    pipeline.run([case.path], collector="shop")
    [doc] = pipeline.adapters.documents.where("frames", "source", "image")
    return doc


@pytest.mark.parametrize("rotation", [90, 270])
def test_portrait_frames_are_recorded_as_displayed(system_videos, sampler_settings, rotation):
    case = system_videos[f"portrait-{rotation}"]
    video, frames = _sample(sampler_settings, case)

    assert frames
    for doc, jpeg in frames:
        assert (doc["width"], doc["height"]) == jpeg.size == (240, 320)
        assert fs.mark_corners(jpeg)[RED_CORNER[rotation]] == "red"
    assert (video["width"], video["height"], video["rotation"]) == (240, 320, rotation)


def _exported_to_coco(
    pipeline: EmbeddedPipeline, settings: Any, folder: Path
) -> tuple[dict[str, Any], dict[str, Any], Image.Image]:
    """The one labeled image of an embedded run exported to the warehouse and on to a COCO
    snapshot: its COCO image entry, its one annotation, and the JPEG written."""
    bootstrap.exporter(pipeline.adapters, settings).run()
    out = folder / "coco"
    write_snapshot(pipeline.adapters.warehouse, pipeline.blobs, out, Layout.COCO, ["car"])
    [(image, annotation)] = [
        (coco["images"][0], coco["annotations"][0])
        for coco in map(json.loads, map(Path.read_text, out.glob("annotations/*.json")))
        if coco["images"]
    ]
    return image, annotation, Image.open(out / image["file_name"])


def test_a_box_on_a_portrait_frame_is_exported_in_the_displayed_pixels(
    system_videos, embedded_settings, tmp_path
):
    """A vendor boxes the red mark on the frame it is shown (240x320, the mark top-right); the
    webhook's normalisation checks it against the stored size and COCO gives it back in the
    pixels of the exported JPEG, on the mark."""
    pipeline = EmbeddedPipeline(embedded_settings)
    result = pipeline.run([system_videos["portrait-90"].path], collector="cam").results[-1]
    documents = pipeline.adapters.documents
    frame = next(
        doc
        for doc in documents.where("frames", "video_doc_id", result.video_doc_id or "")
        if doc.get("dedup_status") == "kept"
    )
    mark = Box(label="car", left=180, top=0, width=60, height=80)  # the red block, displayed
    assert annotate(documents, frame["id"], [mark])
    [stored] = documents.where("annotations", "frame_id", frame["id"])
    assert [stored["boxes"][0][k] for k in "xywh"] == [0.75, 0.0, 0.25, 0.25]
    image, annotation, jpeg = _exported_to_coco(pipeline, embedded_settings, tmp_path)
    assert (image["width"], image["height"]) == jpeg.size == (240, 320)
    assert annotation["bbox"] == [180, 0, 60, 80]
    left, top, width, height = annotation["bbox"]
    inside = jpeg.crop((left + 4, top + 4, left + width - 4, top + height - 4))
    assert set(fs.mark_corners(inside).values()) == {"red"}


# MPEG-TS on the machine's ffmpeg only: the static 4.2.2 crashes opening it (see above).
def test_a_stream_that_starts_late_is_timed_from_its_first_frame(system_videos, embedded_settings):
    _, frames = _sample(embedded_settings, system_videos["interlaced-late"])
    stamps = [doc["timestamp_ms"] for doc, _ in frames]

    # One frame a second from the first (1.47 s in the stream), as for a stream starting at 0.
    assert stamps == [0, 1000]
    assert all("-" not in doc["object_name"] for doc, _ in frames)


def test_a_late_stream_sampled_in_segments_is_timed_as_when_sampled_whole(
    system_videos, ffmpeg_tools, tmp_path
):
    """An MP4 whose video starts at 1.47 s, on both builds: windows and segment bounds count
    from its first frame, so segments keep the frames one run keeps, at the same times."""
    late = tmp_path / "late.mp4"
    subprocess.run(
        [
            *(ffmpeg_tools.ffmpeg, "-v", "error", "-i", str(system_videos["moov-at-end"].path)),
            *("-c", "copy", "-output_ts_offset", str(fs.LATE_START_S), str(late)),
        ],
        check=True,
        timeout=60,
    )
    probe = media.probe(str(late))
    policy = SamplingPolicy(every_seconds=0.5)

    def stamps(segments: list[Segment]) -> list[int]:
        runs = (
            media.Sampling(
                str(late), policy, 75, segment, ffmpeg_tools, origin_s=probe.start_time_s
            )
            for segment in segments
        )
        return [image.timestamp_ms for run in runs for image in run.images()]

    [stream] = fs.video_streams(fs.ffprobe(late))
    assert float(stream["start_time"]) == pytest.approx(fs.LATE_START_S, abs=0.002)
    segments = media.plan_segments(probe, policy, 0.5)
    assert len(segments) >= 3
    # 25 fps: the first frame of each half second from the first frame.
    assert stamps([media.WHOLE]) == stamps(segments) == [0, 520, 1000]


def test_an_interlaced_portrait_video_is_deinterlaced_then_turned_upright(videos, sampler_settings):
    """Deinterlacing works on the coded rows (the fields), so it must come before the turn:
    turned first, the fields become columns, which bwdif does not see."""
    video, frames = _sample(sampler_settings, videos["interlaced-portrait"])

    assert (video["width"], video["height"], video["rotation"]) == (240, 320, 90)
    assert video["interlaced"] is True
    assert len(frames) == 2
    for doc, jpeg in frames:
        assert (doc["width"], doc["height"]) == jpeg.size == (240, 320)
        assert fs.mark_corners(jpeg)[RED_CORNER[90]] == "red"
        # Turned back to the coded picture, where the fields are rows.
        assert _combing(jpeg.transpose(Image.Transpose.ROTATE_90)) < 1.5


def test_interlaced_frames_are_deinterlaced(system_videos, embedded_settings):
    video, frames = _sample(embedded_settings, system_videos["interlaced-late"])

    assert frames
    assert all(_combing(jpeg) < 1.5 for _, jpeg in frames)
    assert video["interlaced"] is True


# docs/footage.md: no tone mapping is 69 (HLG) to 87 (PQ) away from the SDR rendering, a
# clipping tone-map 7-10 (coding loss), mobius 22-25, hable 49 on content at or below SDR white.
HDR_BOUND = 30


@pytest.mark.parametrize("kind", ["hlg", "pq"])
def test_hdr_frames_come_close_to_the_sdr_rendering(system_videos, sampler_settings, kind):
    _, reference = _sample(sampler_settings, system_videos["sdr-reference"])
    video, frames = _sample(sampler_settings, system_videos[f"hdr-{kind}"])

    assert [d["timestamp_ms"] for d, _ in frames] == [d["timestamp_ms"] for d, _ in reference]
    for (_, got), (_, want) in zip(frames, reference, strict=True):
        difference = np.abs(np.asarray(got, int) - np.asarray(want.convert(got.mode), int))
        assert difference.mean() < HDR_BOUND
    assert (video["transfer"], video["primaries"]) == (fs.HDR_TRANSFER[kind], "bt2020")
    assert video["tone_mapped"] is True


def _without_zscale(folder: Path) -> str:
    """An ffmpeg like the machine's but built without libzimg: its filter list lacks zscale."""
    wrapper = folder / "ffmpeg-without-zscale"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" -filters "*) ffmpeg "$@" | grep -v " zscale "; exit 0;; esac\n'
        'exec ffmpeg "$@"\n'
    )
    wrapper.chmod(0o755)
    return str(wrapper)


def test_without_zscale_hdr_is_sampled_untouched_and_the_record_says_why(
    system_videos, embedded_settings, tmp_path, caplog
):
    settings = embedded_settings.model_copy(update={"ffmpeg_binary": _without_zscale(tmp_path)})
    with caplog.at_level("WARNING", logger="framesift.stages.sampler"):
        video, frames = _sample(settings, system_videos["hdr-pq"])

    assert video["status"] == "sampled" and frames
    assert (video["tone_mapped"], video["transfer"]) == (False, "smpte2084")
    assert "no zscale filter" in video["tone_map_note"]
    assert any("no zscale filter" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_an_exif_oriented_photo_is_recorded_as_displayed(photos, embedded_settings, orientation):
    case = photos[f"exif-{orientation}"]
    doc = _photo_record(embedded_settings, case)

    assert (doc["width"], doc["height"]) == (case.expected.width, case.expected.height)
    assert doc["orientation"] == orientation


def test_a_box_on_an_oriented_photo_is_exported_on_upright_pixels(
    photos, embedded_settings, tmp_path
):
    """A box on the red mark of an Orientation 6 photo as shown (top-left of 120x160) is
    exported on a JPEG whose pixels are upright, for readers that ignore EXIF."""
    pipeline = EmbeddedPipeline(embedded_settings)
    pipeline.run([photos["exif-6"].path], collector="shop")
    [photo] = pipeline.adapters.documents.where("frames", "source", "image")
    assert annotate(
        pipeline.adapters.documents,
        photo["id"],
        [Box(label="car", left=0, top=0, width=30, height=40)],
    )
    image, annotation, jpeg = _exported_to_coco(pipeline, embedded_settings, tmp_path)
    # As a loader reads it: EXIF not applied.
    assert (image["width"], image["height"]) == jpeg.size == (120, 160)
    assert jpeg.getexif().get(0x0112, 1) == 1
    assert fs.mark_corners(jpeg) == UPRIGHT_MARKS
    assert annotation["bbox"] == [0, 0, 30, 40]


def test_the_eight_orientations_of_one_picture_hash_alike_once_turned(photos):
    """Dedup hashes what a person sees: eight files storing one picture eight ways (8
    different stored pictures, above) have one pHash and one colour layout."""
    stats = [image_stats(photos[f"exif-{o}"].path.read_bytes()).stats for o in range(1, 9)]
    assert len({s.phash for s in stats}) == 1
    assert max(layout_distance(s.layout, stats[0].layout) or 0 for s in stats) < 2


# The record's capture fields (framesift.capture.CaptureFields) and the generator's names.
CAPTURE_FIELDS = {
    "latitude": "latitude",
    "longitude": "longitude",
    "altitude": "altitude",
    "camera_make": "make",
    "camera_model": "model",
    "camera_software": "software",
    "capture_utc_offset": "utc_offset",
}


def _captured_at(record: dict[str, Any]) -> datetime | None:
    value = record.get("captured_at")
    return datetime.fromisoformat(value) if value else None


def test_a_videos_capture_time_place_and_camera_are_on_its_record_and_frames(
    system_videos, embedded_settings
):
    capture = fs.IPHONE
    video, frames = _sample(embedded_settings, system_videos["iphone-metadata"])

    assert _captured_at(video) == capture.captured_at
    assert {k: video[k] for k in CAPTURE_FIELDS} == {
        k: getattr(capture, name) for k, name in CAPTURE_FIELDS.items()
    }
    assert video["metadata_notes"] == []
    assert capture.captured_at and len(frames) == 2
    for doc, _ in frames:
        # Each frame at its own time: the video's creation time plus the frame's timestamp.
        at = capture.captured_at + timedelta(milliseconds=doc["timestamp_ms"])
        assert _captured_at(doc) == at
        assert {k: doc[k] for k in CAPTURE_FIELDS} == {k: video[k] for k in CAPTURE_FIELDS}


def test_an_android_videos_iso6709_location_is_read(system_videos, embedded_settings):
    capture = fs.ANDROID
    video, _ = _sample(embedded_settings, system_videos["android-metadata"])

    assert _captured_at(video) == capture.captured_at
    assert (video["latitude"], video["longitude"], video["altitude"]) == (48.8584, 2.2945, None)
    assert video["capture_utc_offset"] is None  # creation_time is UTC, no local offset given


def test_a_photos_capture_time_place_and_camera_are_on_its_record(photos, embedded_settings):
    capture = fs.PHOTO_CAPTURE
    doc = _photo_record(embedded_settings, photos["exif-6"])

    assert _captured_at(doc) == capture.captured_at
    assert [doc[k] for k in CAPTURE_FIELDS] == pytest.approx(
        [getattr(capture, name) for name in CAPTURE_FIELDS.values()]
    )


def test_bad_capture_metadata_is_dropped_field_by_field(system_videos, embedded_settings):
    video, frames = _sample(embedded_settings, system_videos["bad-metadata"])

    assert video["status"] == "sampled" and frames
    assert video["camera_software"] == "17.4.1"
    dropped = {"make": "camera_make", "model": "camera_model"}
    bad = [dropped.get(k, k) for k in system_videos["bad-metadata"].expected.bad_fields]
    assert {k: video.get(k) for k in bad} == dict.fromkeys(bad)
    notes = video["metadata_notes"]
    assert len(notes) == 5 and all(len(note) < 200 for note in notes)  # no 1 MB note
    assert any("latitude 200.0 out of range" in note for note in notes)
    assert all(doc["metadata_notes"] == notes for doc, _ in frames)


def test_a_truncated_exif_block_keeps_the_whole_fields_and_says_so(photos, embedded_settings):
    doc = _photo_record(embedded_settings, photos["exif-truncated"])

    assert (doc["camera_make"], doc["camera_model"]) == ("Canon", "Canon EOS R6")
    assert all(doc[k] is None for k in ("captured_at", "latitude", "camera_software"))
    assert doc["metadata_notes"] == ["EXIF incomplete: Truncated File Read"]


def test_the_default_video_stream_is_sampled_and_named(system_videos, sampler_settings):
    video, frames = _sample(sampler_settings, system_videos["two-streams"])

    assert frames and all(jpeg.size == (160, 120) for _, jpeg in frames)
    assert (video["width"], video["height"], video["stream_index"]) == (160, 120, 1)


@pytest.mark.parametrize("name", ["vfr", "vp9", "av1", "mjpeg", "moov-at-end"])
def test_other_formats_are_sampled_at_their_size_and_times(system_videos, sampler_settings, name):
    case = system_videos[name]
    video, frames = _sample(sampler_settings, case)

    assert video["status"] == "sampled"
    assert [doc["timestamp_ms"] // 1000 for doc, _ in frames] == [0, 1]
    for doc, jpeg in frames:
        assert (
            (doc["width"], doc["height"])
            == jpeg.size
            == (case.expected.width, case.expected.height)
        )


def test_audio_only_fails_with_a_clear_reason(system_videos, sampler_settings):
    video, frames = _sample(sampler_settings, system_videos["audio-only"])

    assert (video["status"], frames) == ("failed", [])
    assert video["error"].startswith("no video stream")


def test_the_report_shows_each_sources_capture_time_place_and_camera(
    system_videos, photos, embedded_settings, tmp_path
):
    pipeline = EmbeddedPipeline(embedded_settings)
    pipeline.run([system_videos["iphone-metadata"].path], collector="phone")
    pipeline.run([photos["exif-6"].path], collector="shop")
    documents = pipeline.adapters.documents
    ids = sources(documents, None)

    sheets = write_report(documents, pipeline.blobs, ids, tmp_path / "report")

    assert [sheet.captured for sheet in sheets] == [
        "2024-05-04 14:03:22 +02:00; 48.85840, 2.29450, 35 m; Apple iPhone 15 Pro (17.4.1)",
        "2024-05-04 14:03:22 +02:00; 48.85837, 2.29448, 35 m; Canon Canon EOS R6 "
        "(Firmware Version 1.8.1)",
    ]
    page = (tmp_path / "report" / "index.html").read_text()
    assert all(f"captured {html.escape(sheet.captured)}" in page for sheet in sheets)


def test_a_drone_videos_frames_are_placed_on_its_srt_track(
    system_videos, embedded_settings, tmp_path
):
    """A DJI video with its .SRT beside it: each frame at the track's position at its time
    (interpolated: cues every 0.3 s, frames at whole seconds), the video at its container's."""
    drone = tmp_path / "DJI_0001.mov"
    drone.write_bytes(system_videos["iphone-metadata"].path.read_bytes())
    fs.dji_srt(drone.with_suffix(".SRT"))
    pipeline = EmbeddedPipeline(embedded_settings)
    summary = pipeline.run([drone], collector="drone")
    video = pipeline.adapters.documents.get("videos", summary.sources[0])
    assert video is not None
    frames = pipeline.adapters.documents.where("frames", "video_doc_id", video["id"])

    assert (video["latitude"], video["longitude"]) == (fs.IPHONE.latitude, fs.IPHONE.longitude)
    assert len(frames) == 2
    for doc in frames:
        # The first cue has no fix: the frame at 0 takes the first fixed cue's, 0.3 s later.
        want = fs.drone_position(max(doc["timestamp_ms"], fs.DRONE_CUE_MS))
        assert (doc["latitude"], doc["longitude"]) == pytest.approx(want, abs=1e-9)
        assert doc["altitude"] == pytest.approx(fs.DRONE_START[2])
    # The sidecar's own notification (GCS sends one) is passed over, not recorded as ignored.
    sidecar = str(Path(video["object_name"]).with_suffix(".SRT"))
    info = pipeline.blobs.stat(embedded_settings.raw_bucket, sidecar)
    pipeline.publisher.publish(Topics.RAW_OBJECTS, *finalize_message(info))
    pipeline.publisher.drain()
    assert pipeline.adapters.documents.where("ignored_uploads", "object_name", sidecar) == []


def test_a_sidecar_uploaded_after_its_video_places_its_frames_once(
    system_videos, embedded_settings, tmp_path
):
    """The .SRT comes after its video was sampled (a second upload from the field): its
    notification, delivered twice, re-places the frames already there; no frame is made or sent
    on again, and the second delivery writes nothing."""
    drone = tmp_path / "DJI_0002.mov"
    drone.write_bytes(system_videos["iphone-metadata"].path.read_bytes())
    pipeline = EmbeddedPipeline(embedded_settings)
    documents = pipeline.adapters.documents
    summary = pipeline.run([drone], collector="drone")
    video = documents.get("videos", summary.sources[0])
    assert video is not None
    # Another drone's video of the same name: the sidecar is not beside it.
    other = pipeline.run([drone], collector="other-drone").sources[-1]  # the run summary adds up

    def frames(video_doc_id: str = video["id"]) -> list[dict[str, Any]]:
        docs = documents.where("frames", "video_doc_id", video_doc_id)
        return sorted(docs, key=lambda doc: doc["timestamp_ms"])

    before, others = frames(), frames(other)
    assert [doc["latitude"] for doc in before] == [fs.IPHONE.latitude] * 2  # the container's
    sent_on: list[bytes] = []
    pipeline.publisher.subscribe(Topics.FRAMES_SAMPLED, lambda data, *_: sent_on.append(data))
    srt = fs.dji_srt(tmp_path / "DJI_0002.SRT")
    info = pipeline.blobs.put_file(
        embedded_settings.raw_bucket, str(Path(video["object_name"]).with_suffix(".SRT")), srt, {}
    )
    sampler = bootstrap.sampler(pipeline.adapters, embedded_settings)
    results = []
    for delivery in range(2):
        results.append(sampler.handle_message(PubSubMessage.of(*finalize_message(info), "m")))
        if delivery == 0:
            placed = frames()
    after = frames()

    assert [(r.outcome.value, r.frames) for r in results] == [("placed", 2), ("placed", 0)]
    assert [doc["id"] for doc in after] == [doc["id"] for doc in before]
    for doc in after:
        want = fs.drone_position(max(doc["timestamp_ms"], fs.DRONE_CUE_MS))
        assert (doc["latitude"], doc["longitude"]) == pytest.approx(want, abs=1e-9)
        assert doc["altitude"] == pytest.approx(fs.DRONE_START[2])
        assert _captured_at(doc) == fs.IPHONE.captured_at + timedelta(  # type: ignore[operator]
            milliseconds=doc["timestamp_ms"]
        )
    assert after == placed  # the second delivery wrote nothing (updated_at included)
    assert frames(other) == others
    assert sent_on == []  # nothing sent to dedup again
    assert documents.get("videos", video["id"]) == video


def test_a_sidecar_while_its_video_is_sampled_is_retried_until_it_is(embedded_settings):
    pipeline = EmbeddedPipeline(embedded_settings)
    documents = pipeline.adapters.documents
    raw = embedded_settings.raw_bucket
    video_name = f"{embedded_settings.raw_prefix}drone/DJI_0003.MP4"
    record = VideoRecord(
        id=VideoRecord.make_id(raw, video_name, 1),
        collector="drone",
        video_id="DJI_0003",
        bucket=raw,
        object_name=video_name,
        generation=1,
        size_bytes=1,
        status=VideoStatus.PROCESSING,
    )
    documents.create("videos", record.id, record.stored())
    info = pipeline.blobs.put(raw, video_name[:-4] + ".SRT", b"", "text/plain")
    sampler = bootstrap.sampler(pipeline.adapters, embedded_settings)

    with pytest.raises(StillSampling, match=r"applied once .*DJI_0003\.MP4 is sampled"):
        sampler.handle_message(PubSubMessage.of(*finalize_message(info), "m"))
    # Another drone's sidecar of the same name is not held up by this video.
    elsewhere = pipeline.blobs.put(
        raw, info.name.replace("drone/", "drone-2/", 1), b"", "text/plain"
    )
    result = sampler.handle_message(PubSubMessage.of(*finalize_message(elsewhere), "m"))
    assert (result.outcome.value, result.reason) == (
        "placed",
        "0 frame(s) of 0 video(s) placed on it",
    )


def test_a_gopros_frames_are_placed_and_timed_on_its_gpmf_track(videos, embedded_settings):
    """A GoPro MP4: each frame at the GPS5 track's position at its time (interpolated between
    samples 55.6 ms apart) and captured at the GPS time (GPSU), not at the camera's clock the
    container has; the video record keeps the container's."""
    video, frames = _sample(embedded_settings, videos["gopro"])

    assert video["status"] == "sampled"
    assert video["latitude"] is None
    assert _captured_at(video) == datetime.fromisoformat(fs.GOPRO_CREATION_TIME)
    # The second frame is the first reference frame from 1 s on (decoding skips the others).
    assert len(frames) == 2 and frames[0][0]["timestamp_ms"] == 0
    for doc, _ in frames:
        want = fs.gopro_position(doc["timestamp_ms"])
        # GPS5 stores 1e-7 degrees, sample times are whole ms: within 5e-7 (6 cm).
        assert (doc["latitude"], doc["longitude"]) == pytest.approx(want, abs=5e-7)
        assert doc["altitude"] == pytest.approx(fs.GOPRO_START[2])
        at = fs.GOPRO_UTC + timedelta(milliseconds=doc["timestamp_ms"])
        assert abs((_captured_at(doc) or datetime.min) - at) <= timedelta(milliseconds=1)
        assert doc["metadata_notes"] == []


def test_a_corrupt_gpmf_track_is_a_note_on_the_frames_not_a_failed_video(
    system_videos, embedded_settings, tmp_path
):
    good = fs.gopro_payloads()
    # The first payload cut short (a KLV running past its end), the second not GPMF at all.
    payloads = [(good[0][0], good[0][1][:300]), (good[1][0], b"\xff" * 64)]
    case = fs.gopro(tmp_path, payloads=payloads, name="GX010002.MP4")
    video, frames = _sample(embedded_settings, case)

    assert video["status"] == "sampled" and len(frames) == 2
    for doc, _ in frames:
        assert doc["latitude"] is None  # the container's: it has none
        [note] = doc["metadata_notes"]
        assert note == (
            "GX010002.MP4 GPMF: 2 payload(s) dropped, first 0 ms: b'DEVC' runs 464 bytes past "
            "its payload"
        )


def test_a_second_delivery_leaves_the_capture_fields_as_they_were(
    system_videos, photos, embedded_settings
):
    pipeline = EmbeddedPipeline(embedded_settings)
    documents = pipeline.adapters.documents

    def captured(collector: str) -> list[dict[str, Any]]:
        fields = ("id", "captured_at", "latitude", "camera_model", "metadata_notes")
        docs = sorted(documents.where("frames", "collector", collector), key=lambda d: d["id"])
        return [{k: doc[k] for k in fields} for doc in docs]

    for case, collector in ((system_videos["bad-metadata"], "phone"), (photos["exif-6"], "shop")):
        info = pipeline.upload(case.path, collector)
        pipeline.publisher.drain()
        first = captured(collector)
        pipeline.publisher.publish(Topics.RAW_OBJECTS, *finalize_message(info))
        pipeline.publisher.drain()
        assert first and captured(collector) == first

"""ffmpeg plumbing: exact timestamps, the JPEG stream splitter, and what is not a video."""

from __future__ import annotations

import io
import math
import subprocess
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from framesift import media as ff
from framesift.errors import SamplingFailed, SourceUnavailable, UnreadableVideo
from framesift.messages import Segment
from framesift.sampling import DecodeMode, SamplingMode, SamplingPolicy


def sample(
    url: str,
    policy: SamplingPolicy,
    start_time_s: float,
    quality: int,
    segment: Segment = ff.WHOLE,
    tools: ff.Ffmpeg = ff.SYSTEM,
    decode: DecodeMode | None = None,
) -> Iterator[ff.SampledImage]:
    """The images of one sampling run, as the sampler reads them."""
    sampling = ff.Sampling(url, policy, quality, segment, tools, decode, origin_s=start_time_s)
    return sampling.images()


def test_ntsc_timestamps_are_exact_not_floor_fps(ffmpeg_tools, media):
    probe = ff.probe(str(media["clip_4s_ntsc"]))
    assert probe.fps == pytest.approx(30000 / 1001)

    frames = list(
        sample(
            str(media["clip_4s_ntsc"]), SamplingPolicy(), probe.start_time_s, 3, tools=ffmpeg_tools
        )
    )

    # Frame k is at k * 1001/30000 s: the first frame of each 1 s window is 0, 30, 60, 90.
    assert [f.timestamp_ms for f in frames] == [0, 1001, 2002, 3003]


def test_variable_frame_rate_timestamps_are_the_streams_own(ffmpeg_tools, media):
    # 30 fps until 2 s, then 7 fps: the 2.5 s window starts with the frame at 2 + 4/7 s.
    policy = SamplingPolicy(every_seconds=0.5)
    assert _timestamps(media["vfr"], policy, ffmpeg_tools) == [
        0,
        500,
        1000,
        1500,
        2000,
        2571,
        3000,
        3571,
    ]


def test_fractional_interval_keeps_the_first_frame_of_each_window(ffmpeg_tools, media):
    probe = ff.probe(str(media["clip_5s_25fps"]))
    policy = SamplingPolicy(every_seconds=0.5)
    frames = list(
        sample(str(media["clip_5s_25fps"]), policy, probe.start_time_s, 3, tools=ffmpeg_tools)
    )
    # 25 fps: frames every 40 ms, so the window starting at 500 ms begins with the frame at 520.
    assert [f.timestamp_ms for f in frames] == [math.ceil(i * 500 / 40) * 40 for i in range(10)]


def test_frames_are_jpegs_of_the_video_even_with_odd_sides(ffmpeg_tools, tmp_path):
    odd = tmp_path / "odd.mp4"
    # libx264 with yuv444p accepts odd sides; 4:2:0 JPEG planes need even ones.
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=321x241:rate=25:duration=2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv444p",
            str(odd),
        ],
        check=True,
    )
    probe = ff.probe(str(odd))

    images = list(sample(str(odd), SamplingPolicy(), probe.start_time_s, 90, tools=ffmpeg_tools))

    assert [i.timestamp_ms for i in images] == [0, 1000]
    for image in images:
        picture = Image.open(io.BytesIO(image.jpeg))
        assert picture.format == "JPEG"
        assert picture.size == (320, 240)
        # The JPEG shows the frame: its gray mean matches the stats from the gray branch.
        assert abs(float(np.asarray(picture.convert("L")).mean()) - image.stats.brightness) < 3


@pytest.mark.parametrize("medium", ["image_as_mp4", "audio_only"])
def test_a_still_image_or_audio_is_not_a_video(media, medium):
    with pytest.raises(UnreadableVideo, match="no video stream"):
        ff.probe(str(media[medium]))


def test_text_is_not_a_video(media):
    with pytest.raises(UnreadableVideo, match=r"ffprobe failed: .*Invalid data"):
        ff.probe(str(media["text_as_mp4"]))


@pytest.mark.parametrize("medium", ["truncated", "corrupt_middle"])
def test_damaged_video_yields_its_good_frames_then_says_what_broke(ffmpeg_tools, media, medium):
    probe = ff.probe(str(media[medium]))
    kept = []
    with pytest.raises(SamplingFailed, match=r"decode errors: .*(partial file|Invalid NAL)"):
        for image in sample(
            str(media[medium]), SamplingPolicy(), probe.start_time_s, 3, tools=ffmpeg_tools
        ):
            kept.append(image.timestamp_ms)
    assert kept[:2] == [0, 1000]  # the frames before the damage are delivered


def _timestamps(path, policy, tools, segment_seconds=None):
    probe = ff.probe(str(path))
    segments = ff.plan_segments(probe, policy, segment_seconds) if segment_seconds else [ff.WHOLE]
    return [
        image.timestamp_ms
        for segment in segments
        for image in sample(str(path), policy, probe.start_time_s, 5, segment, tools)
    ]


@pytest.mark.parametrize(
    "policy",
    [
        SamplingPolicy(),
        SamplingPolicy(every_seconds=0.7),
        SamplingPolicy(mode=SamplingMode.EVERY_FRAMES, every_frames=7),
    ],
    ids=["1s", "0.7s", "7frames"],
)
@pytest.mark.parametrize("clip", ["clip_5s_25fps", "clip_4s_ntsc"])
def test_segments_together_keep_exactly_the_frames_of_one_pass(ffmpeg_tools, media, clip, policy):
    whole = _timestamps(media[clip], policy, ffmpeg_tools)
    segmented = _timestamps(media[clip], policy, ffmpeg_tools, segment_seconds=1.3)

    assert len(ff.plan_segments(ff.probe(str(media[clip])), policy, 1.3)) >= 3
    assert segmented == whole
    assert len(whole) == len(set(whole))


def test_every_n_frames_counts_frames(ffmpeg_tools, media):
    # 25 fps, every 10th frame: frames 0, 10, 20, ... at 0, 400, 800 ms.
    policy = SamplingPolicy(mode=SamplingMode.EVERY_FRAMES, every_frames=10)
    assert _timestamps(media["clip_5s_25fps"], policy, ffmpeg_tools) == [i * 400 for i in range(13)]


def test_scene_change_keeps_the_first_frame_of_each_shot(ffmpeg_tools, media):
    policy = SamplingPolicy(mode=SamplingMode.SCENE, scene_threshold=0.3)
    assert _timestamps(media["three_shots"], policy, ffmpeg_tools) == [0, 2000, 4000]


def test_keyframes_only_decodes_only_keyframes(ffmpeg_tools, media):
    # GOP 50 at 25 fps: keyframes at 0, 2, 4 s, so only those windows get a frame.
    policy = SamplingPolicy(keyframes_only=True)
    assert _timestamps(media["clip_5s_gop50"], policy, ffmpeg_tools) == [0, 2000, 4000]
    assert _timestamps(media["clip_5s_25fps"], SamplingPolicy(), ffmpeg_tools) == [
        0,
        1000,
        2000,
        3000,
        4000,
    ]


def test_each_frame_carries_its_hash_and_stats(ffmpeg_tools, media):
    probe = ff.probe(str(media["three_shots"]))
    images = list(
        sample(
            str(media["three_shots"]), SamplingPolicy(), probe.start_time_s, 3, tools=ffmpeg_tools
        )
    )
    red, blue = images[0].stats, images[2].stats

    assert len(images) == 6
    assert all(len(i.stats.phash) == 16 for i in images)
    # Flat colour: no edges at all; the test pattern is full of them.
    assert red.sharpness == pytest.approx(0.0, abs=1.0)
    assert images[4].stats.sharpness > 100
    # Within a shot the picture is the same: same hash; red is brighter in gray than blue.
    assert images[0].stats.phash == images[1].stats.phash
    assert red.brightness > blue.brightness


SIGNED_LOOKING = (
    "http://127.0.0.1:9/download/storage/v1/b/raw/o/cam%2Fa.mp4?alt=media"
    "&X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=sampler%40p.iam.gserviceaccount.com"
    "&X-Goog-Signature=0123456789abcdef"
)


def _holds_no_url(message: str) -> bool:
    return not any(part in message for part in ("http", "X-Goog", "0123456789abcdef", "%40"))


def test_a_failure_reason_never_holds_the_inputs_url(ffmpeg_tools):
    """Deployed, ffmpeg reads a signed URL whose query is a credential: the reasons stored on
    the video and logged must not carry it."""
    tools = replace(ffmpeg_tools, reconnect_delay_max_s=1)  # nothing listens: no long retry
    with pytest.raises(SourceUnavailable) as probed:
        ff.probe(SIGNED_LOOKING, tools)
    with pytest.raises(SourceUnavailable) as sampled:
        list(sample(SIGNED_LOOKING, SamplingPolicy(), 0.0, 3, tools=tools))
    for failure in (probed.value, sampled.value):
        assert _holds_no_url(str(failure)), str(failure)
        assert "<input>" in str(failure)


def test_reference_decoding_keeps_each_windows_first_reference_frame(ffmpeg_tools, media):
    """-skip_frame noref: one frame per window still, each inside its window and at or after
    the window's first frame by a few frames at most; the same in every ffmpeg."""
    policy = SamplingPolicy(every_seconds=1.0)
    video = media["clip_5s_25fps"]
    probe = ff.probe(str(video), ffmpeg_tools)
    assert policy.decode_mode(probe.fps, 4.0) is DecodeMode.REFERENCE
    assert policy.decode_mode(probe.fps, 26.0) is DecodeMode.ALL  # a window of 25 frames
    assert SamplingPolicy(mode="every_frames").decode_mode(probe.fps, 4.0) is DecodeMode.ALL

    def kept(decode):
        return [
            image.timestamp_ms
            for image in sample(
                str(video), policy, probe.start_time_s, 85, tools=ffmpeg_tools, decode=decode
            )
        ]

    every, reference = kept(DecodeMode.ALL), kept(DecodeMode.REFERENCE)
    assert every == [0, 1000, 2000, 3000, 4000]
    assert len(reference) == len(every)
    for first, chosen in zip(every, reference, strict=True):
        assert first <= chosen < first + 4 * 40  # the same window, a few 40 ms frames late

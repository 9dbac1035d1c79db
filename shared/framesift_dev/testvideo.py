"""Test videos made with ffmpeg's lavfi sources (nothing is downloaded), for the tests, the
benchmarks and ``framesift make-sample``."""

from __future__ import annotations

from typing import Any

import ffmpeg

from framesift.media.failures import last_lines


def generate_test_video(
    path: str,
    seconds: float = 5.0,
    fps: str = "25",
    size: str = "320x240",
    gop: int = 50,
    faststart: bool = True,
    hue: float = 0.0,
) -> None:
    """Write an H.264 test video from ffmpeg's lavfi sources (a moving pattern with a timer).
    With ``hue`` (degrees), the same pattern in other colours: other bytes, the same pHashes
    (luma), for tests that upload one scene more than once and must not meet dedup's
    dataset-wide exact duplicates."""
    stream = ffmpeg.input(f"testsrc2=size={size}:rate={fps}:duration={seconds}", f="lavfi")
    if hue:
        stream = stream.filter("hue", h=hue)
    output_args: dict[str, Any] = {
        "vcodec": "libx264",
        "pix_fmt": "yuv420p",
        "g": gop,
        "preset": "veryfast",
    }
    if faststart:
        output_args["movflags"] = "+faststart"
    try:
        stream.output(path, **output_args).overwrite_output().run(quiet=True)
    except ffmpeg.Error as exc:
        raise RuntimeError(
            f"ffmpeg could not make {path}: {last_lines(exc.stderr.decode())}"
        ) from exc

"""Probing a video with ffprobe: its duration, frame rate, size, codec and start time."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from framesift.errors import UnreadableVideo
from framesift.media.commands import probe_command
from framesift.media.failures import last_lines, source_failure
from framesift.media.tools import SYSTEM, Ffmpeg


@dataclass(frozen=True)
class VideoProbe:
    duration_s: float | None
    fps: float | None
    width: int
    height: int
    codec: str
    start_time_s: float
    # The container's and the video stream's metadata (framesift.capture reads them).
    format_tags: dict[str, str] = field(default_factory=dict)
    stream_tags: dict[str, str] = field(default_factory=dict)


def _fraction(value: str | None) -> float | None:
    try:
        rate = Fraction(value or "")
    except (ValueError, ZeroDivisionError):
        return None
    return float(rate) if rate > 0 else None


def probe(url: str, tools: Ffmpeg = SYSTEM) -> VideoProbe:
    ran = subprocess.run(probe_command(url, tools, tools.version), capture_output=True)
    if ran.returncode != 0:
        stderr = ran.stderr.decode(errors="replace")
        if failure := source_failure(stderr.splitlines(), UnreadableVideo):
            raise failure
        raise UnreadableVideo(f"ffprobe failed: {last_lines(stderr)}")
    info: dict[str, Any] = json.loads(ran.stdout.decode("utf-8"))
    streams = [s for s in info.get("streams", []) if s.get("codec_type") == "video"]
    # A still image (mjpeg/png "video" with one frame) is not a video.
    moving = [s for s in streams if not s.get("disposition", {}).get("attached_pic")]
    fmt = info.get("format", {})
    if not moving or fmt.get("format_name", "").startswith(("image2", "png_pipe", "jpeg_pipe")):
        raise UnreadableVideo(
            f"no video stream (format {fmt.get('format_name', 'unknown')!r}, "
            f"{len(info.get('streams', []))} other streams)"
        )
    stream = moving[0]
    duration = stream.get("duration") or fmt.get("duration")
    return VideoProbe(
        duration_s=float(duration) if duration else None,
        fps=_fraction(stream.get("avg_frame_rate")) or _fraction(stream.get("r_frame_rate")),
        width=int(stream.get("width", 0)),
        height=int(stream.get("height", 0)),
        codec=str(stream.get("codec_name", "unknown")),
        start_time_s=float(fmt.get("start_time") or stream.get("start_time") or 0.0),
        format_tags=dict(fmt.get("tags") or {}),
        stream_tags=dict(stream.get("tags") or {}),
    )

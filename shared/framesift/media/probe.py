"""Probing a video with ffprobe: which video stream is sampled, and its duration, frame rate,
size as displayed, rotation, colour, field order, codec and first presentation time, and
whether it carries a GoPro's telemetry track."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from framesift.errors import UnreadableVideo
from framesift.media.commands import probe_command
from framesift.media.failures import last_lines, source_failure
from framesift.media.telemetry import telemetry_stream
from framesift.media.tools import SYSTEM, Ffmpeg

# ffprobe's color_transfer of the HDR transfers: PQ (HDR10, Dolby Vision's base) and HLG.
HDR_TRANSFERS = frozenset({"smpte2084", "arib-std-b67"})
# ffprobe's field_order of interlaced video: top or bottom field first, coded in either order.
INTERLACED_FIELD_ORDERS = frozenset({"tt", "bb", "tb", "bt"})


@dataclass(frozen=True)
class VideoProbe:
    duration_s: float | None
    fps: float | None
    width: int  # as displayed: the coded size turned by ``rotation``
    height: int
    codec: str
    # The sampled stream's first presentation time from the file's start (which ffmpeg's
    # -copyts -start_at_zero timeline counts from): where its frames' timestamps count from.
    start_time_s: float
    rotation: int = 0  # degrees clockwise a viewer turns the coded picture: 0, 90, 180 or 270
    transfer: str | None = None  # ffprobe's color_transfer, e.g. bt709, smpte2084
    primaries: str | None = None  # ffprobe's color_primaries, e.g. bt709, bt2020
    matrix: str | None = None  # ffprobe's color_space, e.g. bt2020nc
    field_order: str | None = None  # ffprobe's field_order: progressive, tt, bb, ...
    stream_index: int = 0  # the sampled stream's index in the file (ffprobe's "index")
    stream_position: int = 0  # ... and its position among the video streams (ffmpeg's 0:v:N)
    telemetry_stream: int | None = None  # the index of a GoPro's GPMF track (media.telemetry)

    @property
    def interlaced(self) -> bool:
        return self.field_order in INTERLACED_FIELD_ORDERS

    @property
    def hdr(self) -> bool:
        return self.transfer in HDR_TRANSFERS

    # The container's and the video stream's metadata (framesift.capture reads them).
    format_tags: dict[str, str] = field(default_factory=dict)
    stream_tags: dict[str, str] = field(default_factory=dict)


def _fraction(value: str | None) -> float | None:
    try:
        rate = Fraction(value or "")
    except (ValueError, ZeroDivisionError):
        return None
    return float(rate) if rate > 0 else None


def rotation(stream: dict[str, Any]) -> int:
    """Degrees clockwise (0, 90, 180, 270) the stream is turned for display, as ffmpeg's
    autorotation turns it. ffmpeg 5 and later give the display matrix as side data whose
    ``rotation`` is counter-clockwise; ffmpeg up to 4.4 also give the tag ``rotate``, clockwise
    (docs/footage.md, (d))."""
    for side in stream.get("side_data_list") or []:
        if side.get("side_data_type") == "Display Matrix" and "rotation" in side:
            counter_clockwise = float(side["rotation"])
            return round(-counter_clockwise / 90) % 4 * 90
    tag = (stream.get("tags") or {}).get("rotate")
    try:
        return round(float(tag) / 90) % 4 * 90 if tag else 0
    except ValueError:
        return 0


def _chosen(streams: list[dict[str, Any]]) -> dict[str, Any]:
    """The stream a player shows: the one with the default disposition, else the first."""
    defaults = [s for s in streams if s.get("disposition", {}).get("default")]
    return (defaults or streams)[0]


def _seconds(entry: dict[str, Any], key: str) -> float:
    try:
        return float(entry.get(key) or 0.0)
    except ValueError:
        return 0.0


def _tag(stream: dict[str, Any], key: str) -> str | None:
    value = stream.get(key)
    return None if value in (None, "unknown") else str(value)


def read_probe(info: dict[str, Any]) -> VideoProbe:
    """The probe of ffprobe's ``-show_format -show_streams`` JSON."""
    videos = [s for s in info.get("streams", []) if s.get("codec_type") == "video"]
    # A still image (mjpeg/png "video" with one frame, or a cover picture) is not a video.
    moving = [s for s in videos if not s.get("disposition", {}).get("attached_pic")]
    fmt = info.get("format", {})
    if not moving or fmt.get("format_name", "").startswith(("image2", "png_pipe", "jpeg_pipe")):
        raise UnreadableVideo(
            f"no video stream (format {fmt.get('format_name', 'unknown')!r}, "
            f"{len(info.get('streams', []))} other streams)"
        )
    stream = _chosen(moving)
    duration = stream.get("duration") or fmt.get("duration")
    turned = rotation(stream)
    width, height = int(stream.get("width", 0)), int(stream.get("height", 0))
    if turned in (90, 270):
        width, height = height, width
    return VideoProbe(
        duration_s=float(duration) if duration else None,
        fps=_fraction(stream.get("avg_frame_rate")) or _fraction(stream.get("r_frame_rate")),
        width=width,
        height=height,
        codec=str(stream.get("codec_name", "unknown")),
        # The stream's own start: other streams (audio) may start before it.
        start_time_s=max(_seconds(stream, "start_time") - _seconds(fmt, "start_time"), 0.0),
        rotation=turned,
        transfer=_tag(stream, "color_transfer"),
        primaries=_tag(stream, "color_primaries"),
        matrix=_tag(stream, "color_space"),
        field_order=_tag(stream, "field_order"),
        stream_index=int(stream.get("index", 0)),
        stream_position=videos.index(stream),
        telemetry_stream=telemetry_stream(info.get("streams", [])),
        format_tags=dict(fmt.get("tags") or {}),
        stream_tags=dict(stream.get("tags") or {}),
    )


def probe(url: str, tools: Ffmpeg = SYSTEM) -> VideoProbe:
    ran = subprocess.run(probe_command(url, tools, tools.version), capture_output=True)
    if ran.returncode != 0:
        stderr = ran.stderr.decode(errors="replace")
        if failure := source_failure(stderr.splitlines(), UnreadableVideo):
            raise failure
        raise UnreadableVideo(f"ffprobe failed: {last_lines(stderr)}")
    return read_probe(json.loads(ran.stdout.decode("utf-8")))

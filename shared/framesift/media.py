"""ffmpeg plumbing: probe a video and stream sampled JPEG frames out of one ffmpeg process.

ffmpeg reads the video itself from a URL or path, so the video is never copied whole into
memory or /tmp. JPEGs come back on stdout; the presentation time of each comes from the
``showinfo`` filter on stderr, in the same order, so timestamps are the stream's real ones.
"""

from __future__ import annotations

import queue
import re
import subprocess
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import IO, Any

import ffmpeg


class UnreadableVideo(Exception):
    """ffmpeg cannot read the input as a video; retrying will not help."""


class SamplingFailed(Exception):
    """ffmpeg stopped part-way through; frames yielded before this are good."""


@dataclass(frozen=True)
class VideoProbe:
    duration_s: float | None
    fps: float | None
    width: int
    height: int
    codec: str
    start_time_s: float


@dataclass(frozen=True)
class JpegFrame:
    timestamp_ms: int
    data: bytes


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "no output"


def _fraction(value: str | None) -> float | None:
    try:
        rate = Fraction(value or "")
    except (ValueError, ZeroDivisionError):
        return None
    return float(rate) if rate > 0 else None


def probe(url: str) -> VideoProbe:
    try:
        info: dict[str, Any] = ffmpeg.probe(url)
    except ffmpeg.Error as exc:
        stderr = exc.stderr.decode(errors="replace")
        raise UnreadableVideo(f"ffprobe failed: {_last_lines(stderr)}") from exc
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
    )


_PTS_TIME = re.compile(r"Parsed_showinfo.*\bn:\s*\d+.*\bpts_time:\s*(-?[\d.]+(?:e-?\d+)?)")


def _read_stderr(stream: IO[bytes], times: queue.Queue[float | None], tail: deque[str]) -> None:
    for raw in stream:
        line = raw.decode(errors="replace")
        if match := _PTS_TIME.search(line):
            times.put(float(match.group(1)))
        else:
            tail.append(line.strip())
    times.put(None)


def _scan_offset(buffer: bytearray) -> int | None:
    """Offset past the SOS header of the JPEG at the head of ``buffer``; None if not all there."""
    if len(buffer) >= 2 and buffer[:2] != b"\xff\xd8":
        raise SamplingFailed("ffmpeg wrote something that is not a JPEG")
    position = 2
    while position + 4 <= len(buffer):
        if buffer[position] != 0xFF:
            raise SamplingFailed("malformed JPEG segment in ffmpeg's output")
        marker = buffer[position + 1]
        position += 2 + int.from_bytes(buffer[position + 2 : position + 4], "big")
        if marker == 0xDA:  # start of scan
            return position if position <= len(buffer) else None
    return None


def _iter_jpegs(stream: IO[bytes]) -> Iterator[bytes]:
    """Split ffmpeg's image2pipe MJPEG output into single JPEG files.

    After the SOS header the entropy-coded data escapes every 0xFF byte (0xFF00 or RSTn), so the
    first 0xFFD9 after it is the end of the image.
    """
    buffer = bytearray()
    searched: int | None = None  # how far the head image's scan data was searched for its end
    while chunk := stream.read(1 << 16):
        buffer += chunk
        while True:
            if searched is None:
                searched = _scan_offset(buffer)
                if searched is None:
                    break
            end = buffer.find(b"\xff\xd9", searched)
            if end < 0:
                searched = max(searched, len(buffer) - 1)
                break
            yield bytes(buffer[: end + 2])
            del buffer[: end + 2]
            searched = None


def sample_every(
    url: str, every_seconds: float, start_time_s: float, quality: int
) -> Iterator[JpegFrame]:
    """Yield the first frame of every ``every_seconds`` window of the stream, as a JPEG.

    Windows are fixed (``floor(t / N)``), so timestamps never drift at 29.97 fps or with a
    variable frame rate.
    """
    window = f"floor(t/{every_seconds!r})"
    select = f"isnan(prev_selected_t)+gt({window},floor(prev_selected_t/{every_seconds!r}))"
    command = (
        ffmpeg.input(url, nostdin=None)
        .video.filter("select", select)
        .filter("showinfo")
        .output(
            "pipe:", format="image2pipe", vcodec="mjpeg", fps_mode="passthrough", **{"q:v": quality}
        )
        .global_args("-hide_banner", "-loglevel", "info")
        .compile()
    )
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if process.stdout is None or process.stderr is None:
        raise SamplingFailed("could not open pipes to ffmpeg")
    times: queue.Queue[float | None] = queue.Queue()
    tail: deque[str] = deque(maxlen=20)
    reader = threading.Thread(target=_read_stderr, args=(process.stderr, times, tail), daemon=True)
    reader.start()
    try:
        for jpeg in _iter_jpegs(process.stdout):
            pts_time = times.get(timeout=120)
            if pts_time is None:
                raise SamplingFailed("ffmpeg wrote a frame without a showinfo timestamp")
            yield JpegFrame(round((pts_time - start_time_s) * 1000), jpeg)
    finally:
        if process.poll() is None and not process.stdout.closed:
            process.stdout.close()
        returncode = process.wait()
        reader.join(timeout=10)
    if returncode != 0:
        raise SamplingFailed(f"ffmpeg exited with {returncode}: {_last_lines(chr(10).join(tail))}")


def generate_test_video(
    path: str,
    seconds: float = 5.0,
    fps: str = "25",
    size: str = "320x240",
    gop: int = 50,
    faststart: bool = True,
) -> None:
    """Write an H.264 test video from ffmpeg's lavfi sources (a moving pattern with a timer)."""
    stream = ffmpeg.input(f"testsrc2=size={size}:rate={fps}:duration={seconds}", f="lavfi")
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
            f"ffmpeg could not make {path}: {_last_lines(exc.stderr.decode())}"
        ) from exc

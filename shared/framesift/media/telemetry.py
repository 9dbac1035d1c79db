"""Reading a GoPro's ``gpmd`` telemetry track out of a video with ffprobe (the GPMF in it is
parsed by :mod:`framesift.gpmf`)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from framesift.errors import SourceUnavailable, UnreadableVideo
from framesift.gpmf import Payload
from framesift.media.commands import telemetry_command
from framesift.media.failures import last_lines, source_failure
from framesift.media.tools import Ffmpeg

TELEMETRY_TAG = "gpmd"  # the sample description of GPMF in an MP4 (handler "GoPro MET")


def telemetry_stream(streams: list[dict[str, Any]]) -> int | None:
    """The index of the GPMF track among ffprobe's streams (None: the video has none)."""
    for stream in streams:
        if stream.get("codec_tag_string") == TELEMETRY_TAG:
            return int(stream.get("index", 0))
    return None


def hex_dump_bytes(dump: str) -> bytes:
    """The bytes of ffprobe's ``-show_data`` hex dump: lines of an offset, eight groups of two
    bytes in hex and their characters (``00000000: 4445 5643 ...  DEVC...``)."""
    return b"".join(bytes.fromhex(line[10:50]) for line in dump.splitlines() if line.strip())


def read_payloads(said: dict[str, Any], origin_s: float) -> list[Payload]:
    """The payloads in ffprobe's JSON, timed from the video's first frame (``origin_s`` after
    the file's start, as the frames' timestamps are)."""
    start_s = float(said.get("format", {}).get("start_time") or 0.0)
    payloads = []
    for packet in said.get("packets", []):
        if packet.get("pts_time") in (None, "N/A"):
            continue
        time_s = float(packet["pts_time"]) - start_s - origin_s
        duration_s = float(packet.get("duration_time") or 0.0)
        data = hex_dump_bytes(packet.get("data", ""))
        payloads.append(Payload(time_s * 1000, duration_s * 1000, data))
    return payloads


def telemetry_payloads(
    url: str, stream_index: int, tools: Ffmpeg, origin_s: float
) -> list[Payload]:
    """Each payload of the video's GPMF track. Raises :class:`SourceUnavailable` when the
    video could not be read for now (a redelivery retries), :class:`UnreadableVideo` when
    ffprobe cannot read the track (the caller notes it and samples on)."""
    ran = subprocess.run(
        telemetry_command(url, stream_index, tools, tools.version), capture_output=True
    )
    stderr = ran.stderr.decode(errors="replace")
    if ran.returncode != 0:
        failure = source_failure(stderr.splitlines(), UnreadableVideo)
        if isinstance(failure, SourceUnavailable):
            raise failure
        raise UnreadableVideo(f"ffprobe failed: {last_lines(stderr)}")
    try:
        said = json.loads(ran.stdout.decode("utf-8"))
        return read_payloads(said, origin_s)
    except (ValueError, TypeError, KeyError) as exc:
        raise UnreadableVideo(f"ffprobe's packets unreadable: {exc}") from exc

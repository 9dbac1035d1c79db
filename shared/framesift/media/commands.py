"""The ffprobe and ffmpeg command lines, built as argument lists: nothing runs here, and the
version of the binary is given, not asked, so every option is checked without ffmpeg
(tests/unit/test_media_commands.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ffmpeg

from framesift.imagestats import GRAY_SIZE
from framesift.messages import PLAIN_PICTURE, Picture, Segment, ToneMap
from framesift.sampling import DecodeMode, SamplingMode, SamplingPolicy

if TYPE_CHECKING:
    from framesift.media.tools import Ffmpeg

Version = tuple[int, int]  # (major, minor)

# ffmpeg 5.1 added the per-output -fps_mode and deprecated the global -vsync it replaces.
_FPS_MODE_SINCE = (5, 1)
# ffmpeg 4.3 added reconnecting after a failed connect and after an HTTP error status.
_RECONNECT_ON_ERRORS_SINCE = (4, 3)
# A read that stalls this long fails (and is reconnected), rather than running into the
# function's timeout, which Pub/Sub would redeliver into the same wait.
_READ_TIMEOUT_US = 30_000_000
# The decoder's -skip_frame for each decode mode (an option since before ffmpeg 4).
_SKIP_FRAME = {DecodeMode.REFERENCE: "noref", DecodeMode.KEYFRAMES: "nokey"}
_INT_MAX = 2**31 - 1
# Deinterlacing: one frame out per frame in (every-N-frames keeps its meaning), and only the
# frames the decoder marks interlaced are touched (docs/footage.md, (c)).
_DEINTERLACE = {"mode": "send_frame", "parity": "auto", "deint": "interlaced"}
# The filters turning a frame clockwise by each rotation (a display matrix's), as ffmpeg's
# autorotation inserts them: transpose's clock is 90° clockwise, cclock 90° counter-clockwise.
_TURNS: dict[int, list[tuple[str, dict[str, str]]]] = {
    0: [],
    90: [("transpose", {"dir": "clock"})],
    180: [("hflip", {}), ("vflip", {})],
    270: [("transpose", {"dir": "cclock"})],
}
# HDR to SDR: mobius keeps highlights above SDR white apart, at some cost on content below it
# (docs/footage.md, (b): 22 of 255 from an SDR rendering, where hable is 49 and none 70-87).
TONE_MAP_CURVE = "mobius"
# Windows of every-N-seconds start this much before their nominal time, so a frame on a window's
# start is in it whatever the rounding of (t - origin) (a microsecond: far below any frame gap).
_EDGE_S = 1e-6


def window_origin(origin_s: float) -> float:
    """Where every-N-seconds windows (and the segments cut on them) count from, given the
    stream's first presentation time."""
    return origin_s - _EDGE_S if origin_s else 0.0


def takes_fps_mode(version: Version) -> bool:
    return version >= _FPS_MODE_SINCE


def source_options(url: str, version: Version, reconnect_delay_max_s: int) -> dict[str, Any]:
    """Input options for reading ``url``. Over HTTP (deployed, a signed URL) ffmpeg
    reconnects after a connection dropped or stalled before the end, resuming at the byte
    it stopped at, and from 4.3 after a failed connect or a 408, 429 or 5xx answer (what
    Cloud Storage says to retry), waiting 0, 1, 3, 7 ... seconds while the wait is at most
    ``reconnect_delay_max_s``; past that the attempt fails as
    :class:`~framesift.errors.SourceUnavailable` and Pub/Sub's redelivery is the retry."""
    if not url.startswith(("http://", "https://")):
        return {}
    options: dict[str, Any] = {"reconnect": 1, "reconnect_delay_max": reconnect_delay_max_s}
    if version >= _RECONNECT_ON_ERRORS_SINCE:
        options |= {"reconnect_on_http_error": "408,429,5xx", "reconnect_on_network_error": 1}
    return options | {"rw_timeout": _READ_TIMEOUT_US}


def _probe_flags(url: str, tools: Ffmpeg, version: Version) -> list[str]:
    """ffprobe's options for reading ``url`` (as the sampling's)."""
    options = source_options(url, version, tools.reconnect_delay_max_s)
    return [str(part) for name, value in options.items() for part in (f"-{name}", value)]


def probe_command(url: str, tools: Ffmpeg, version: Version) -> list[str]:
    """ffprobe describing ``url``'s format and streams as JSON on stdout."""
    said = ["-show_format", "-show_streams", "-of", "json", "-hide_banner"]
    return [tools.ffprobe, *said, *_probe_flags(url, tools, version), url]


def telemetry_command(url: str, stream_index: int, tools: Ffmpeg, version: Version) -> list[str]:
    """ffprobe giving each packet of stream ``stream_index`` (a GoPro's ``gpmd`` track) with
    its time, duration and bytes (a hex dump), and the file's start time, as JSON on stdout.
    One run, so bytes and times cannot disagree; the demuxer reads only that stream's bytes."""
    said = [
        "-select_streams",
        str(stream_index),
        "-show_data",
        "-show_entries",
        "packet=pts_time,duration_time,data:format=start_time",
        "-of",
        "json",
        "-v",
        "error",
        "-hide_banner",
    ]
    return [tools.ffprobe, *said, *_probe_flags(url, tools, version), url]


def select_expression(policy: SamplingPolicy, segment: Segment, origin_s: float = 0.0) -> str:
    """The ``select`` filter expression for a policy, restricted to one segment; ``t`` is the
    stream's own time (-copyts) and ``origin_s`` its first frame's."""
    if policy.mode is SamplingMode.EVERY_SECONDS:
        # First frame of every fixed window floor((t - origin)/N), counted from the first
        # frame: never drifts at 29.97 fps or with VFR.
        n = repr(policy.every_seconds)
        now, prev = "t", "prev_selected_t"
        if origin := window_origin(origin_s):
            now, prev = f"({now}-{origin!r})", f"({prev}-{origin!r})"
        rule = f"isnan(prev_selected_t)+gt(floor({now}/{n}),floor({prev}/{n}))"
    elif policy.mode is SamplingMode.EVERY_FRAMES:
        rule = f"not(mod(n+{segment.first_frame},{policy.every_frames}))"
    else:
        rule = f"isnan(prev_selected_t)+gt(scene,{policy.scene_threshold!r})"
    bounds = [f"gte(t,{segment.start_s!r})"] if segment.start_s > 0 else []
    if segment.end_s is not None:
        bounds.append(f"lt(t,{segment.end_s!r})")
    # Bounds first, so prev_selected_t only ever sees frames inside the segment.
    return "*".join([*bounds, f"({rule})"]) if bounds else rule


def sampling_command(
    url: str,
    policy: SamplingPolicy,
    segment: Segment,
    decode: DecodeMode,
    tools: Ffmpeg,
    version: Version,
    max_pixels: int | None,
    small_pipe: int,
    picture: Picture = PLAIN_PICTURE,
    origin_s: float = 0.0,
) -> list[str]:
    """ffmpeg selecting a policy's frames of one segment once, then splitting them: raw
    (YUV 4:2:0, cropped to even sides) on stdout, and scaled to a tiny YCbCr image on the file
    descriptor ``small_pipe``; ``showinfo`` on stderr gives each frame's presentation time (the
    stream's own: -copyts) and size as displayed, in the same order. ``decode`` says which
    frames are decoded at all; ``max_pixels``, when given, makes the decoder refuse larger
    frames before it allocates any. ``picture`` says which video stream is read and what is done
    to it: deinterlaced before the selection (bwdif reads the frames around each), tone-mapped
    after it (only kept frames pay). ffmpeg's autorotation turns each frame as displayed before
    the graph, except for an interlaced video, which the graph turns after deinterlacing
    (``picture.turn``); the frames' size in showinfo is the turned one."""
    input_args: dict[str, Any] = {"nostdin": None, "threads": tools.decoder_threads(decode)}
    if max_pixels is not None:
        input_args["max_pixels"] = min(max_pixels, _INT_MAX)  # the option's own range
    if skip := _SKIP_FRAME.get(decode):
        input_args["skip_frame"] = skip
    input_args |= source_options(url, version, tools.reconnect_delay_max_s)
    # One timeline for every segment: the file's own timestamps less its start time. Without
    # -copyts ffmpeg also takes the seek off them, so segments would disagree; -start_at_zero
    # takes off the file's start (an MPEG-TS starts anywhere), which -ss counts from too. The
    # video stream's first frame is on this timeline at the probe's start_time_s (audio can
    # start before it), the origin frames are timed from (both builds, docs/footage.md).
    input_args["copyts"] = None
    input_args["start_at_zero"] = None
    if picture.turn:
        input_args["noautorotate"] = None  # turned below, after deinterlacing
    if segment.start_s > 0:
        # Input seek: ffmpeg jumps to the keyframe before and drops the frames before start_s.
        input_args["ss"] = segment.start_s
    if segment.end_s is not None:
        input_args["t"] = segment.end_s - segment.start_s + 1.0  # the select bounds cut
    decoded = ffmpeg.input(url, **input_args)[f"v:{picture.stream}"]
    if picture.deinterlace:
        decoded = decoded.filter("bwdif", **_DEINTERLACE)
    kept = decoded.filter("select", select_expression(policy, segment, origin_s))
    if picture.tone_map is not None:
        kept = _to_sdr(kept, picture.tone_map)
    for name, options in _TURNS[picture.turn]:
        kept = kept.filter(name, **options)
    selected = (
        kept.filter("crop", "trunc(iw/2)*2", "trunc(ih/2)*2")  # 4:2:0 planes need even sides
        # showinfo without its checksums: they read every pixel of the frame twice on
        # ffmpeg's main thread (an option since ffmpeg 4.2).
        .filter("showinfo", checksum=0)
        .split()
    )
    # Every selected frame out as it is: no frame duplicated or dropped to fit a frame rate.
    passthrough = {"fps_mode": "passthrough"} if takes_fps_mode(version) else {}
    raw_output = selected[0].output("pipe:1", format="rawvideo", pix_fmt="yuv420p", **passthrough)
    small_copy = (
        selected[1]
        .filter("scale", GRAY_SIZE, GRAY_SIZE, flags="area")
        .output(f"pipe:{small_pipe}", format="rawvideo", pix_fmt="yuv420p", **passthrough)
    )
    global_args = ["-hide_banner", "-loglevel", "level+info"]
    if not takes_fps_mode(version):
        global_args += ["-vsync", "passthrough"]
    command: list[str] = (
        ffmpeg.merge_outputs(raw_output, small_copy)
        .global_args(*global_args)
        .compile(cmd=tools.ffmpeg)
    )
    return command


def _to_sdr(stream: Any, source: ToneMap) -> Any:
    """PQ or HLG BT.2020 to BT.709 8-bit: zscale to linear light (SDR white at 100 cd/m²) in
    float, the BT.709 primaries, the tone curve, then BT.709's transfer and matrix, limited
    range (docs/footage.md, (b); tonemap needs linear float input, which only zscale makes)."""
    linear = {"tin": source.transfer, "pin": source.primaries, "min": source.matrix}
    return (
        stream.filter("zscale", t="linear", npl=100, **linear)
        .filter("format", "gbrpf32le")
        .filter("zscale", p="bt709")
        .filter("tonemap", tonemap=TONE_MAP_CURVE, desat=0)
        .filter("zscale", t="bt709", m="bt709", r="tv")
        .filter("format", "yuv420p")
    )

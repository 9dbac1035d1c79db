"""ffmpeg plumbing: probe a video, plan its segments and stream out the frames a policy keeps.

ffmpeg reads the video itself from a URL or path, so the video is never copied whole into
memory or /tmp. The kept frames come back raw on stdout, one at a time, and are encoded to JPEG
here; the presentation time and size of each comes from the ``showinfo`` filter on stderr, in
the same order, so timestamps are the stream's real ones.
"""

from __future__ import annotations

import math
import os
import queue
import re
import subprocess
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import IO, Any

import ffmpeg
import numpy as np
import simplejpeg

from framesift.errors import (
    PermanentError,
    SamplingFailed,
    SourceUnavailable,
    ToolUnavailable,
    UnreadableVideo,
)
from framesift.imagestats import GRAY_SIZE, FrameStats, SmallCopy, frame_stats
from framesift.messages import Segment
from framesift.sampling import DecodeMode, SamplingMode, SamplingPolicy

# ffmpeg 5.1 added the per-output -fps_mode and deprecated the global -vsync it replaces.
_FPS_MODE_SINCE = (5, 1)
_VERSION = re.compile(r"ffmpeg version n?(\d+)\.(\d+)")
# ffmpeg warns that more than 16 decoder threads are not recommended.
_MAX_DECODER_THREADS = 16
# ffmpeg 4.3 added reconnecting after a failed connect and after an HTTP error status.
_RECONNECT_ON_ERRORS_SINCE = (4, 3)
# A read that stalls this long fails (and is reconnected), rather than running into the
# function's timeout, which Pub/Sub would redeliver into the same wait.
_READ_TIMEOUT_US = 30_000_000


@dataclass(frozen=True)
class Ffmpeg:
    """The ffmpeg and ffprobe binaries to run, and the options their version takes.

    Deployed, they are the runtime image's: Cloud Functions' Python runtimes run on Ubuntu 22.04
    (google-22-full), whose ffmpeg is 4.4.2, so every option used here must exist in 4.4; where
    a newer ffmpeg renamed one, the version decides (``-vsync`` before 5.1, ``-fps_mode`` after).
    """

    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    cpus: int = 0  # the CPUs to decode on; 0: those this process may run on
    reconnect_delay_max_s: int = 30  # see :meth:`source_options`

    def decoder_threads(self, decode: DecodeMode) -> int:
        """The decoder's threads. ffmpeg's own choice is its CPU count plus one, and its count
        is the machine's: on Cloud Functions that can be the host's, far more than the
        function's vCPUs. Decoding every frame, one thread per CPU is fastest (on 2 CPUs 0.83x
        to 0.89x the time of ffmpeg's choice; 8 threads are slower too). Skipping frames, the
        decoder's frame threads are slots for packets, skipped ones included, and a reference
        frame waits on rows of the one before it: four threads per CPU keep enough reference
        frames in flight (on 2 CPUs, sampling took 0.89x to 0.91x the time it took on three
        threads, by hand; twelve gained 3 % to 6 % more at 1080p, but each thread holds about
        two frames, some 20 MB at 4K). benchmarks/sample.py shows the decode at these counts."""
        cpus = self.cpus or len(os.sched_getaffinity(0))
        return cpus if decode is DecodeMode.ALL else min(4 * cpus, _MAX_DECODER_THREADS)

    @cached_property
    def version(self) -> tuple[int, int]:
        """(major, minor) from ``ffmpeg -version``; a git build (``N-...``) is the newest."""
        try:
            said = subprocess.run(
                [self.ffmpeg, "-version"], capture_output=True, text=True, check=True, timeout=30
            ).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise ToolUnavailable(f"cannot run {self.ffmpeg}: {exc}") from exc
        found = _VERSION.search(said)
        return (int(found[1]), int(found[2])) if found else (999, 0)

    @property
    def takes_fps_mode(self) -> bool:
        return self.version >= _FPS_MODE_SINCE

    def source_options(self, url: str) -> dict[str, Any]:
        """Input options for reading ``url``. Over HTTP (deployed, a signed URL) ffmpeg
        reconnects after a connection dropped or stalled before the end, resuming at the byte
        it stopped at, and from 4.3 after a failed connect or a 408, 429 or 5xx answer (what
        Cloud Storage says to retry), waiting 0, 1, 3, 7 ... seconds while the wait is at most
        ``reconnect_delay_max_s``; past that the attempt fails as :class:`SourceUnavailable`
        and Pub/Sub's redelivery is the retry."""
        if not url.startswith(("http://", "https://")):
            return {}
        options: dict[str, Any] = {
            "reconnect": 1,
            "reconnect_delay_max": self.reconnect_delay_max_s,
            "rw_timeout": _READ_TIMEOUT_US,
        }
        if self.version >= _RECONNECT_ON_ERRORS_SINCE:
            options |= {"reconnect_on_network_error": 1, "reconnect_on_http_error": "408,429,5xx"}
        return options


SYSTEM = Ffmpeg()


@dataclass(frozen=True)
class VideoProbe:
    duration_s: float | None
    fps: float | None
    width: int
    height: int
    codec: str
    start_time_s: float


@dataclass(frozen=True)
class SampledImage:
    timestamp_ms: int
    jpeg: bytes
    stats: FrameStats


# ffmpeg names its input in its messages, and deployed the input is a signed URL whose query
# string is a credential: no message that is stored or logged may keep a URL or a query.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]*")
_QUERY = re.compile(r"\?[^\s'\"]*")


def scrub(text: str) -> str:
    """``text`` with every URL and query string replaced by a placeholder."""
    return _QUERY.sub("?<query>", _URL.sub("<input>", text))


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in scrub(text).splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "no output"


def _fraction(value: str | None) -> float | None:
    try:
        rate = Fraction(value or "")
    except (ValueError, ZeroDivisionError):
        return None
    return float(rate) if rate > 0 else None


# What ffmpeg says when the network or the video's server failed, not the video: a later
# attempt can read it. An object that is gone (404, 410) is not among these.
_RECONNECTING = re.compile(r"Will reconnect", re.IGNORECASE)
_SOURCE_TROUBLE = re.compile(
    r"HTTP error|Server returned|Connection to \S+ failed|Connection (?:refused|reset|timed out)"
    r"|Failed to resolve|name resolution|Network is unreachable|Stream ends prematurely|"
    + _RECONNECTING.pattern,
    re.IGNORECASE,
)
_GONE = re.compile(r"\b(?:404 Not Found|410 Gone)\b")
# ffmpeg's "[https @ 0x55d...] [warning] " before a message: the component names the scheme.
_LOG_TAGS = re.compile(r"\[[\w-]+ @ 0x[0-9a-f]+\] |\[(?:info|warning|error|fatal|panic)\] ")
GONE = "the video is gone"  # a failure's reason when its version of the object no longer is


def _source_failure(
    lines: list[str], gone: type[PermanentError]
) -> PermanentError | SourceUnavailable | None:
    """The error for a run that failed reading its source, from ffmpeg's lines: ``gone`` when
    the video is, else transient when any line is about the source (None: none is)."""
    lines = [_LOG_TAGS.sub("", line) for line in lines]
    if found := [line for line in lines if _GONE.search(line)]:
        return gone(f"{GONE}: {_last_lines(found[0], 1)}")
    if found := [line for line in lines if _SOURCE_TROUBLE.search(line)]:
        said = list(dict.fromkeys(line for line in found if not _RECONNECTING.search(line)))
        said = said or found
        return SourceUnavailable(f"could not read the video: {_last_lines(chr(10).join(said))}")
    return None


def probe(url: str, tools: Ffmpeg = SYSTEM) -> VideoProbe:
    try:
        info: dict[str, Any] = ffmpeg.probe(
            url, cmd=tools.ffprobe, hide_banner=None, **tools.source_options(url)
        )
    except ffmpeg.Error as exc:
        stderr = exc.stderr.decode(errors="replace")
        if failure := _source_failure(stderr.splitlines(), UnreadableVideo):
            raise failure from exc
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


# showinfo's line is written by several log calls, and a decoder thread's message can land
# between them or swallow its "[Parsed_showinfo @ ...]" prefix (ffmpeg's prefix state is global),
# so only the part written in one call is matched, wherever it is in the line.
_SHOWINFO = re.compile(
    r"\bn:\s*\d+\s+pts:\s*\S+\s+pts_time:\s*(-?[\d.]+(?:e-?\d+)?)\s.*?\bs:(\d+)x(\d+)"
)


@dataclass(frozen=True)
class _FrameInfo:
    pts_time: float
    width: int
    height: int


@dataclass
class _Diagnostics:
    """What ffmpeg said on stderr besides the timestamps: its last lines, its errors, and what
    it said about reading its source (a reconnect that worked is not an error)."""

    tail: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    errors: list[str] = field(default_factory=list)
    source: deque[str] = field(default_factory=lambda: deque(maxlen=20))

    def summary(self) -> str:
        errors = " | ".join(dict.fromkeys(self.errors[:3]))
        return scrub(errors) if errors else _last_lines("\n".join(self.tail))


_ERROR_LEVEL = re.compile(r"\[(error|fatal|panic)\] ")


def _read_stderr(
    stream: IO[bytes], infos: queue.Queue[_FrameInfo | None], said: _Diagnostics
) -> None:
    # -loglevel level+info tags each line with its level, e.g. "[h264 @ 0x..] [error] ...".
    for raw in stream:
        line = raw.decode(errors="replace").strip()
        if match := _SHOWINFO.search(line):
            infos.put(_FrameInfo(float(match[1]), int(match[2]), int(match[3])))
            continue
        said.tail.append(line)
        if _SOURCE_TROUBLE.search(line) or _GONE.search(line):
            said.source.append(line)
        elif (level := _ERROR_LEVEL.search(line)) and len(said.errors) < 20:
            said.errors.append(
                re.sub(r" @ 0x[0-9a-f]+", "", line[: level.start()]).strip()
                + " "
                + line[level.end() :]
            )
    infos.put(None)


WHOLE = Segment()
# The decoder's -skip_frame for each decode mode (an option since before ffmpeg 4).
_SKIP_FRAME = {DecodeMode.REFERENCE: "noref", DecodeMode.KEYFRAMES: "nokey"}
_INT_MAX = 2**31 - 1


def plan_segments(
    probe: VideoProbe, policy: SamplingPolicy, segment_seconds: float
) -> list[Segment]:
    """Cut a long video into segments whose boundaries keep every policy exact.

    For every-N-seconds the boundaries fall on window starts; for every-N-frames on multiples of
    N frames (half a frame early, so rounding never loses the boundary frame); a scene-change
    segment starts with a kept frame, as the video's first frame is.
    """
    duration = probe.duration_s
    if duration is None or duration <= segment_seconds:
        return [WHOLE]
    start, end = probe.start_time_s, probe.start_time_s + duration
    if policy.mode is SamplingMode.EVERY_FRAMES and probe.fps:
        frames = (
            max(1, round(segment_seconds * probe.fps / policy.every_frames)) * policy.every_frames
        )
        count = math.ceil(duration * probe.fps / frames)
        return [
            Segment(
                start_s=max(start + (k * frames - 0.5) / probe.fps, 0.0) if k else 0.0,
                end_s=start + ((k + 1) * frames - 0.5) / probe.fps if k + 1 < count else None,
                first_frame=k * frames,
            )
            for k in range(count)
        ]
    if policy.mode is SamplingMode.EVERY_SECONDS:
        step = max(1, round(segment_seconds / policy.every_seconds)) * policy.every_seconds
    else:
        step = segment_seconds
    first = math.floor(start / step) + 1  # boundaries at absolute multiples of step
    cuts = [k * step for k in range(first, math.ceil(end / step))]
    bounds = [0.0, *cuts]
    return [Segment(start_s=lo, end_s=hi) for lo, hi in zip(bounds, [*cuts, None], strict=True)]


def select_expression(policy: SamplingPolicy, segment: Segment) -> str:
    """The ``select`` filter expression for a policy, restricted to one segment."""
    if policy.mode is SamplingMode.EVERY_SECONDS:
        # First frame of every fixed window floor(t/N): never drifts at 29.97 fps or with VFR.
        n = repr(policy.every_seconds)
        rule = f"isnan(prev_selected_t)+gt(floor(t/{n}),floor(prev_selected_t/{n}))"
    elif policy.mode is SamplingMode.EVERY_FRAMES:
        rule = f"not(mod(n+{segment.first_frame},{policy.every_frames}))"
    else:
        rule = f"isnan(prev_selected_t)+gt(scene,{policy.scene_threshold!r})"
    bounds = [f"gte(t,{segment.start_s!r})"] if segment.start_s > 0 else []
    if segment.end_s is not None:
        bounds.append(f"lt(t,{segment.end_s!r})")
    # Bounds first, so prev_selected_t only ever sees frames inside the segment.
    return "*".join([*bounds, f"({rule})"]) if bounds else rule


def _read_frames(
    stream: IO[bytes],
    infos: queue.Queue[_FrameInfo | None],
    frames: queue.Queue[tuple[_FrameInfo, bytes] | None],
) -> None:
    """Raw frames from stdout, each as long as showinfo said its picture is."""
    while (info := infos.get()) is not None:
        raw = stream.read(info.width * info.height * 3 // 2)
        frames.put((info, raw))
        if not raw:
            break
    frames.put(None)


def _read_small(stream: IO[bytes], frames: queue.Queue[SmallCopy | None]) -> None:
    """The small YCbCr 4:2:0 copies: luma, then the two chroma planes at half the side."""
    luma, half = GRAY_SIZE * GRAY_SIZE, (GRAY_SIZE // 2) ** 2
    while len(data := stream.read(luma + 2 * half)) == luma + 2 * half:
        planes = np.frombuffer(data, dtype=np.uint8)
        frames.put(
            SmallCopy(
                planes[:luma].reshape(GRAY_SIZE, GRAY_SIZE),
                planes[luma : luma + half].reshape(GRAY_SIZE // 2, GRAY_SIZE // 2),
                planes[luma + half :].reshape(GRAY_SIZE // 2, GRAY_SIZE // 2),
            )
        )
    frames.put(None)


class Sampling:
    """One ffmpeg run sampling a video, started when made: :meth:`images` reads its frames,
    :meth:`cancel` stops it unread. Started before the probe's answer, it decodes while the
    probe runs (the sampler takes it if the probe agrees with its guesses).

    The filter graph selects frames once, then splits them: one branch goes out raw (YUV 4:2:0,
    cropped to even sides) on stdout and is encoded here with libjpeg-turbo (simplejpeg), several
    times cheaper than ffmpeg's own MJPEG encoder; the other is scaled to a tiny YCbCr image on a
    second pipe for pHash, sharpness, brightness and the colour layout. ``showinfo`` on stderr
    gives each frame's presentation time and size, in the same order. ``decode`` says which
    frames are decoded at all (every one, reference frames, keyframes: the policy's own choice
    when not given); ``max_pixels``, when given, makes the decoder refuse larger frames before
    it allocates any.
    """

    def __init__(
        self,
        url: str,
        policy: SamplingPolicy,
        quality: int,
        segment: Segment = WHOLE,
        tools: Ffmpeg = SYSTEM,
        decode: DecodeMode | None = None,
        max_pixels: int | None = None,
    ) -> None:
        self.decode = decode or policy.decode_mode(None, 0)
        self._quality = quality
        input_args: dict[str, Any] = {
            "nostdin": None,
            "threads": tools.decoder_threads(self.decode),
        }
        if max_pixels is not None:
            input_args["max_pixels"] = min(max_pixels, _INT_MAX)  # the option's own range
        if skip := _SKIP_FRAME.get(self.decode):
            input_args["skip_frame"] = skip
        input_args |= tools.source_options(url)
        if segment.start_s > 0:
            # Input seek: ffmpeg jumps to the keyframe before and drops the frames before
            # start_s; -copyts keeps absolute timestamps so windows and bounds line up across
            # segments.
            input_args["ss"] = segment.start_s
            input_args["copyts"] = None
        if segment.end_s is not None:
            input_args["t"] = segment.end_s - segment.start_s + 1.0  # the select bounds cut
        selected = (
            ffmpeg.input(url, **input_args)
            .video.filter("select", select_expression(policy, segment))
            .filter("crop", "trunc(iw/2)*2", "trunc(ih/2)*2")  # 4:2:0 planes need even sides
            # showinfo without its checksums: they read every pixel of the frame twice on
            # ffmpeg's main thread (an option since ffmpeg 4.2).
            .filter("showinfo", checksum=0)
            .split()
        )
        small_read, small_write = os.pipe()
        # Every selected frame out as it is: no frame duplicated or dropped to fit a frame rate.
        passthrough = {"fps_mode": "passthrough"} if tools.takes_fps_mode else {}
        raw_output = selected[0].output(
            "pipe:1", format="rawvideo", pix_fmt="yuv420p", **passthrough
        )
        small_copy = (
            selected[1]
            .filter("scale", GRAY_SIZE, GRAY_SIZE, flags="area")
            .output(f"pipe:{small_write}", format="rawvideo", pix_fmt="yuv420p", **passthrough)
        )
        global_args = ["-hide_banner", "-loglevel", "level+info"]
        if not tools.takes_fps_mode:
            global_args += ["-vsync", "passthrough"]
        command = (
            ffmpeg.merge_outputs(raw_output, small_copy)
            .global_args(*global_args)
            .compile(cmd=tools.ffmpeg)
        )
        try:
            self._process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(small_write,)
            )
        except BaseException:
            os.close(small_read)
            raise
        finally:
            os.close(small_write)
        process = self._process
        if process.stdout is None or process.stderr is None:
            raise SamplingFailed("could not open pipes to ffmpeg")
        infos: queue.Queue[_FrameInfo | None] = queue.Queue()
        # A few frames of slack: ffmpeg may write a frame's raw output before the previous
        # frame's small one, so both pipes are read all the time, never one waiting for the
        # other.
        self._frames: queue.Queue[tuple[_FrameInfo, bytes] | None] = queue.Queue(maxsize=4)
        self._smalls: queue.Queue[SmallCopy | None] = queue.Queue()
        self._said = _Diagnostics()
        self._small_stream = os.fdopen(small_read, "rb")
        self._readers = [
            threading.Thread(
                target=_read_stderr, args=(process.stderr, infos, self._said), daemon=True
            ),
            threading.Thread(
                target=_read_frames, args=(process.stdout, infos, self._frames), daemon=True
            ),
            threading.Thread(
                target=_read_small, args=(self._small_stream, self._smalls), daemon=True
            ),
        ]
        for reader in self._readers:
            reader.start()

    def images(self, start_time_s: float) -> Iterator[SampledImage]:
        """The frames, as JPEGs with their timestamps (less the stream's ``start_time_s``) and
        stats; raises SamplingFailed after the last if ffmpeg failed or reported decode errors."""
        finished = False
        try:
            while (item := self._frames.get(timeout=600)) is not None:
                info, raw = item
                small = self._smalls.get(timeout=600)
                if len(raw) != info.width * info.height * 3 // 2 or small is None:
                    raise SamplingFailed("ffmpeg's outputs disagree on the frames")
                yield SampledImage(
                    round((info.pts_time - start_time_s) * 1000),
                    _encode_jpeg(raw, info.width, info.height, self._quality),
                    frame_stats(small),
                )
            finished = True
        finally:
            returncode = self._stop(kill=not finished)
        failed = returncode != 0 or bool(self._said.errors)
        if failed and (failure := _source_failure(list(self._said.source), SamplingFailed)):
            raise failure  # frames read before it stand; a redelivery reads them again
        if returncode != 0:
            raise SamplingFailed(f"ffmpeg exited with {returncode}: {self._said.summary()}")
        if self._said.errors:
            # ffmpeg decodes on past a corrupt or truncated part; the frames it gave are kept,
            # and the video is reported, not passed as whole.
            raise SamplingFailed(f"decode errors: {self._said.summary()}")

    def cancel(self) -> None:
        """Stop ffmpeg, its frames unread (idempotent)."""
        self._stop(kill=True)

    def _stop(self, kill: bool) -> int:
        process = self._process
        if kill and process.poll() is None:
            process.kill()  # nobody reads on: do not leave ffmpeg decoding
        returncode = process.wait()
        while not self._frames.empty():  # unblock the frame reader, waiting to put one more
            self._frames.get_nowait()
        for reader in self._readers:
            reader.join(timeout=10)
        self._small_stream.close()
        return returncode


def _encode_jpeg(raw: bytes, width: int, height: int, quality: int) -> bytes:
    planes = np.frombuffer(raw, dtype=np.uint8)
    luma = width * height
    y = planes[:luma].reshape(height, width)
    u = planes[luma : luma + luma // 4].reshape(height // 2, width // 2)
    v = planes[luma + luma // 4 :].reshape(height // 2, width // 2)
    return bytes(simplejpeg.encode_jpeg_yuv_planes(y, u, v, quality=quality))


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

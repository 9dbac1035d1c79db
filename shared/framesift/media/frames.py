"""One ffmpeg run streaming out the frames a policy keeps, read from its pipes.

The kept frames come back raw on stdout, one at a time, and are encoded to JPEG here; the
presentation time and size of each comes from the ``showinfo`` filter on stderr, in the same
order, so timestamps are the stream's real ones (counted from its first frame) and sizes the
frames' own, as displayed.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import numpy as np
import simplejpeg

from framesift.errors import SamplingFailed
from framesift.imagestats import GRAY_SIZE, FrameStats, SmallCopy, frame_stats
from framesift.media.commands import sampling_command
from framesift.media.failures import Diagnostics
from framesift.media.segments import WHOLE
from framesift.media.tools import SYSTEM, Ffmpeg
from framesift.messages import PLAIN_PICTURE, Picture, Segment
from framesift.sampling import DecodeMode, SamplingPolicy


@dataclass(frozen=True)
class SampledImage:
    timestamp_ms: int  # from the stream's first frame
    jpeg: bytes
    stats: FrameStats
    width: int  # the JPEG's, as displayed (turned by the source's rotation)
    height: int


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


def _read_stderr(
    stream: IO[bytes], infos: queue.Queue[_FrameInfo | None], said: Diagnostics
) -> None:
    for raw in stream:
        line = raw.decode(errors="replace").strip()
        if match := _SHOWINFO.search(line):
            infos.put(_FrameInfo(float(match[1]), int(match[2]), int(match[3])))
        else:
            said.hear(line)
    infos.put(None)


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

    The command (:func:`~framesift.media.commands.sampling_command`) selects frames once, then
    splits them: one branch goes out raw on stdout and is encoded here with libjpeg-turbo
    (simplejpeg), several times cheaper than ffmpeg's own MJPEG encoder; the other is scaled to a
    tiny YCbCr image on a second pipe for pHash, sharpness, brightness and the colour layout.
    ``decode`` says which frames are decoded at all (every one, reference frames, keyframes: the
    policy's own choice when not given); ``max_pixels``, when given, makes the decoder refuse
    larger frames before it allocates any. ``picture`` names the stream and the filters that make
    its frames what a person sees; ``origin_s`` is the stream's first presentation time, which
    timestamps count from.
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
        picture: Picture = PLAIN_PICTURE,
        origin_s: float = 0.0,
    ) -> None:
        self.decode = decode or policy.decode_mode(None, 0)
        self.picture = picture
        self.origin_s = origin_s
        self._quality = quality
        small_read, small_write = os.pipe()
        try:
            command = sampling_command(
                url,
                policy,
                segment,
                self.decode,
                tools,
                tools.version,
                max_pixels,
                small_write,
                picture,
                origin_s,
            )
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
        self._said = Diagnostics()
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

    def images(self) -> Iterator[SampledImage]:
        """The frames, as JPEGs with their timestamps (from the stream's first frame), stats and
        size; raises SamplingFailed after the last if ffmpeg failed or reported decode errors."""
        finished = False
        try:
            while (item := self._frames.get(timeout=600)) is not None:
                info, raw = item
                small = self._smalls.get(timeout=600)
                if len(raw) != info.width * info.height * 3 // 2 or small is None:
                    raise SamplingFailed("ffmpeg's outputs disagree on the frames")
                yield SampledImage(
                    # Never before the first frame: a probe's start time within a millisecond of
                    # it must not make a name with a minus sign.
                    max(0, round((info.pts_time - self.origin_s) * 1000)),
                    _encode_jpeg(raw, info.width, info.height, self._quality),
                    frame_stats(small),
                    info.width,
                    info.height,
                )
            finished = True
        finally:
            returncode = self._stop(kill=not finished)
        if failure := self._said.failure(returncode):
            raise failure

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

"""ffmpeg plumbing: exact timestamps, the JPEG stream splitter, and what is not a video."""

from __future__ import annotations

import io
import math
import subprocess

import pytest

from framesift import media as ff


def test_ntsc_timestamps_are_exact_not_floor_fps(media):
    probe = ff.probe(str(media["clip_4s_ntsc"]))
    assert probe.fps == pytest.approx(30000 / 1001)

    frames = list(ff.sample_every(str(media["clip_4s_ntsc"]), 1.0, probe.start_time_s, 3))

    # Frame k is at k * 1001/30000 s: the first frame of each 1 s window is 0, 30, 60, 90.
    assert [f.timestamp_ms for f in frames] == [0, 1001, 2002, 3003]


def test_fractional_interval_keeps_the_first_frame_of_each_window(media):
    probe = ff.probe(str(media["clip_5s_25fps"]))
    frames = list(ff.sample_every(str(media["clip_5s_25fps"]), 0.5, probe.start_time_s, 3))
    # 25 fps: frames every 40 ms, so the window starting at 500 ms begins with the frame at 520.
    assert [f.timestamp_ms for f in frames] == [math.ceil(i * 500 / 40) * 40 for i in range(10)]


class Dribble(io.RawIOBase):
    """A pipe that hands out a few bytes per read, to put every boundary inside a read."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._sizes = [1, 7, 3, 64, 2, 5000, 11]
        self._reads = 0

    def read(self, size: int = -1) -> bytes:
        take = self._sizes[self._reads % len(self._sizes)]
        self._reads += 1
        chunk, self._data = self._data[:take], self._data[take:]
        return bytes(chunk)


def test_jpeg_splitter_finds_every_image_whatever_the_read_sizes(media, tmp_path):
    stream = subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-i",
            str(media["clip_5s_25fps"]),
            "-vf",
            "fps=2",
            "-f",
            "image2pipe",
            "-c:v",
            "mjpeg",
            "pipe:1",
        ],
        check=True,
        capture_output=True,
    ).stdout
    expected = stream.count(b"\xff\xd8\xff")

    images = list(ff._iter_jpegs(Dribble(stream)))

    assert len(images) == expected == 10
    assert b"".join(images) == stream
    assert all(i[:2] == b"\xff\xd8" and i[-2:] == b"\xff\xd9" for i in images)


def test_jpeg_splitter_rejects_a_stream_that_is_not_jpeg():
    with pytest.raises(ff.SamplingFailed, match="not a JPEG"):
        list(ff._iter_jpegs(io.BytesIO(b"GIF89a....")))


def test_a_still_image_is_not_a_video(tmp_path):
    image = tmp_path / "photo.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x48",
            "-frames:v",
            "1",
            "-f",
            "image2",
            "-c:v",
            "mjpeg",
            str(image),
        ],
        check=True,
    )
    with pytest.raises(ff.UnreadableVideo, match="no video stream"):
        ff.probe(str(image))


def test_audio_only_is_not_a_video(tmp_path):
    audio = tmp_path / "voice.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-c:a",
            "aac",
            str(audio),
        ],
        check=True,
    )
    with pytest.raises(ff.UnreadableVideo, match="no video stream"):
        ff.probe(str(audio))

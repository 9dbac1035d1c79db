"""Which options the sampler gives ffmpeg, by the version the binary reports."""

from __future__ import annotations

import stat

import pytest

from framesift.errors import ToolUnavailable
from framesift.media import Ffmpeg


def _fake_ffmpeg(tmp_path, banner: str) -> str:
    path = tmp_path / "ffmpeg"
    path.write_text(f"#!/bin/sh\necho '{banner}'\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.mark.parametrize(
    ("banner", "version", "fps_mode"),
    [
        # Cloud Functions' Ubuntu 22.04 image (google-22-full).
        ("ffmpeg version 4.4.2-0ubuntu0.22.04.1+esm10 Copyright (c) 2000-2021", (4, 4), False),
        ("ffmpeg version 4.2.2-static https://johnvansickle.com/ffmpeg/", (4, 2), False),
        ("ffmpeg version n5.0.1 Copyright (c) 2000-2022", (5, 0), False),
        ("ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2025", (5, 1), True),
        ("ffmpeg version 7.1 Copyright (c) 2000-2024", (7, 1), True),
        ("ffmpeg version N-118000-g0123456789 Copyright (c) 2000-2025", (999, 0), True),
    ],
)
def test_fps_mode_is_given_only_to_an_ffmpeg_that_takes_it(tmp_path, banner, version, fps_mode):
    tools = Ffmpeg(ffmpeg=_fake_ffmpeg(tmp_path, banner))
    assert tools.version == version
    assert tools.takes_fps_mode is fps_mode


def test_a_missing_ffmpeg_is_a_clear_error(tmp_path):
    with pytest.raises(ToolUnavailable, match="cannot run"):
        _ = Ffmpeg(ffmpeg=str(tmp_path / "no-ffmpeg")).version


def test_the_decoder_gets_one_thread_per_cpu_decoding_all_and_four_skipping():
    import os

    from framesift.media import Ffmpeg
    from framesift.sampling import DecodeMode

    deployed = Ffmpeg(cpus=2)
    assert deployed.decoder_threads(DecodeMode.ALL) == 2
    assert deployed.decoder_threads(DecodeMode.REFERENCE) == 8
    assert deployed.decoder_threads(DecodeMode.KEYFRAMES) == 8
    assert Ffmpeg(cpus=8).decoder_threads(DecodeMode.REFERENCE) == 16  # ffmpeg's advised most
    assert Ffmpeg().decoder_threads(DecodeMode.ALL) == len(os.sched_getaffinity(0))

"""The ffmpeg and ffprobe binaries a sampler runs, and the version the installed ffmpeg says."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from functools import cached_property

from framesift.errors import ToolUnavailable
from framesift.media.commands import Version, takes_fps_mode
from framesift.sampling import DecodeMode

_VERSION = re.compile(r"ffmpeg version n?(\d+)\.(\d+)")
# ffmpeg warns that more than 16 decoder threads are not recommended.
_MAX_DECODER_THREADS = 16


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
    # See framesift.media.commands.source_options.
    reconnect_delay_max_s: int = 30

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
    def version(self) -> Version:
        """(major, minor) from ``ffmpeg -version``; a git build (``N-...``) is the newest."""
        try:
            said = subprocess.run(
                [self.ffmpeg, "-version"], capture_output=True, text=True, check=True, timeout=30
            ).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise ToolUnavailable(f"cannot run {self.ffmpeg}: {exc}") from exc
        found = _VERSION.search(said)
        return (int(found[1]), int(found[2])) if found else (999, 0)

    @cached_property
    def filters(self) -> frozenset[str]:
        """The filters this ffmpeg has (``ffmpeg -filters``): ``zscale`` only when it was built
        with libzimg, which a custom image may not be."""
        try:
            said = subprocess.run(
                [self.ffmpeg, "-hide_banner", "-filters"],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise ToolUnavailable(f"cannot run {self.ffmpeg}: {exc}") from exc
        return listed_filters(said)

    @property
    def takes_fps_mode(self) -> bool:
        return takes_fps_mode(self.version)


def listed_filters(said: str) -> frozenset[str]:
    """The filter names in ``ffmpeg -filters``' table: a line of flags, the name, then the
    pads, e.g. `` TSC zscale            V->V       Apply resizing...``."""
    rows = (line.split() for line in said.splitlines())
    return frozenset(row[1] for row in rows if len(row) > 2 and "->" in row[2])


SYSTEM = Ffmpeg()

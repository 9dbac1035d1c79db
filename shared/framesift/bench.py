"""The benchmarks by name: scripts of ``benchmarks/`` run from a clone of the repository, and
modules of the installed package (``framesift_dev``) run anywhere framesift is installed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

# A name ending in .py is a script of the clone; any other, a module run with ``python -m``.
BENCHMARKS = {
    "sample": ["benchmarks/sample.py"],
    "dedup": ["benchmarks/dedup_quality.py", "benchmarks/dedup_lookup.py"],
    "index": ["framesift_dev.indexbench"],
    "false-matches": ["framesift_dev.falsematches"],
    "export": ["benchmarks/export.py"],
    "cold-start": ["benchmarks/cold_start.py"],
    "inference": ["benchmarks/inference.py"],
    "edge": ["benchmarks/edge.py"],
}
# shared/framesift/bench.py in a clone: the repository is two folders up.
REPOSITORY = Path(__file__).resolve().parents[2]


def command(entry: str) -> list[str]:
    """The command line of one benchmark entry (before its arguments)."""
    if entry.endswith(".py"):
        return [sys.executable, str(REPOSITORY / entry)]
    return [sys.executable, "-m", entry]


def run_benchmarks(names: Sequence[str], args: Sequence[str]) -> None:
    """Run each named benchmark's entries in turn, with ``args`` (from the repository when
    there is one)."""
    if unknown := [name for name in names if name not in BENCHMARKS]:
        raise ValueError(f"no benchmark {unknown[0]!r}: choose {', '.join(BENCHMARKS)}")
    entries = [entry for name in names for entry in BENCHMARKS[name]]
    scripts = [REPOSITORY / entry for entry in entries if entry.endswith(".py")]
    if missing := [script for script in scripts if not script.exists()]:
        raise FileNotFoundError(missing[0])
    where = REPOSITORY if REPOSITORY.joinpath("pyproject.toml").exists() else None
    for entry in entries:
        subprocess.run([*command(entry), *args], check=True, cwd=where)

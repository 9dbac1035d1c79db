"""The benchmarks of ``benchmarks/`` by name, run from a clone of the repository."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

BENCHMARKS = {
    "sample": ["benchmarks/sample.py"],
    "dedup": ["benchmarks/dedup_quality.py", "benchmarks/dedup_lookup.py"],
    "export": ["benchmarks/export.py"],
    "cold-start": ["benchmarks/cold_start.py"],
    "inference": ["benchmarks/inference.py"],
    "edge": ["benchmarks/edge.py"],
}
# shared/framesift/bench.py in a clone: the repository is two folders up.
REPOSITORY = Path(__file__).resolve().parents[2]


def run_benchmarks(names: Sequence[str], args: Sequence[str]) -> None:
    """Run each named benchmark's scripts in turn, with ``args``, from the repository."""
    if unknown := [name for name in names if name not in BENCHMARKS]:
        raise ValueError(f"no benchmark {unknown[0]!r}: choose {', '.join(BENCHMARKS)}")
    scripts = [REPOSITORY / script for name in names for script in BENCHMARKS[name]]
    if missing := [script for script in scripts if not script.exists()]:
        raise FileNotFoundError(missing[0])
    for script in scripts:
        subprocess.run([sys.executable, str(script), *args], check=True, cwd=REPOSITORY)

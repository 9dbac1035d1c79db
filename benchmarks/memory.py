"""Memory of a process group, from Linux's /proc: what the benchmarks report per function
(functions-framework's gunicorn master and workers share the function's process group)."""

from __future__ import annotations

import os
from pathlib import Path


def group_kib(group: int, field: str) -> int:
    """The sum of ``field`` (``VmRSS``: resident now; ``VmHWM``: its high-water mark), in KiB,
    over the processes of process group ``group``."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != group:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith(f"{field}:"):
                    total += int(line.split()[1])
        except (ProcessLookupError, FileNotFoundError, PermissionError):
            continue
    return total

"""A small run of `framesift bench index` for its tests: the fields the issue asks of each row,
and the options and geometry that make every design split at small sizes."""

from __future__ import annotations

from framesift import tailindex
from framesift_dev import indexbench

REQUIRED = {
    "design",
    "n",
    "bytes_read_per_lookup",
    "docs_read_per_lookup",
    "docs_written_per_kept",
    "kept_per_s",
    "recall",
    "p99_ms",
    "simulated",
}
SMALL = ["--sizes", "1500", "--simulate", "15000", "--queries", "20", "--cap", "32"]
SMALL += ["--tables", "4", "--tail-cap", "32", "--first-bits", "4", "--split-bits", "2"]
SMALL += ["--window", "5000", "--tail-pairs", "300"]
# A small tail whose leaves split at these sizes (4 first bits: 16 nodes a table).
TAIL = tailindex.TailGeometry(tables=4, cap=32, first_bits=4, split_bits=2)


def run_small() -> list[dict]:
    return list(
        indexbench.run(
            [1500], [15000], cap=32, queries=20, seed=3, tail=TAIL, window=5000, tail_pairs=300
        )
    )

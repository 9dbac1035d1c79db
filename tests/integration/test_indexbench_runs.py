"""`framesift bench index` run whole, small: its JSON and markdown through the command line, and
two runs giving the same rows (no wall time is asserted). Integration, not unit: each run is the
benchmark end to end, about ten seconds."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from framesift import cli
from framesift_dev import indexbench
from tests.support.indexbench import REQUIRED, SMALL, run_small


def test_a_second_run_gives_the_same_rows_the_compute_time_is_modelled():
    def modelled(row: dict) -> dict:
        return {k: v for k, v in row.items() if k != "compute_ms_measured"}

    rows = run_small()
    assert [modelled(r) for r in run_small()] == [modelled(r) for r in rows]
    real = [r for r in rows if not r["simulated"]]
    assert all(r["compute_ms_measured"] > 0 for r in real)
    assert all(r["compute_ms_measured"] is None for r in rows if r["simulated"])


def test_framesift_bench_index_json_prints_one_object_per_line(capfd):
    result = CliRunner().invoke(cli.app, ["bench", "index", "--json", *SMALL])
    assert result.exit_code == 0, result.output
    lines = capfd.readouterr().out.splitlines()
    printed = [json.loads(line) for line in lines]
    assert len(printed) == 16 and all(row.keys() >= REQUIRED for row in printed)


def test_without_json_it_prints_the_markdown_table(capfd):
    indexbench.main(SMALL)
    lines = capfd.readouterr().out.splitlines()
    assert lines[0].startswith("| design | data | n |") and len(lines) == 2 + 16

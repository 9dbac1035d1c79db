"""`framesift bench index`: one JSON object per design, data set and size, with sane numbers that
repeat from run to run (no wall time is asserted)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from framesift import cli, dedupindex
from framesift_dev import firestore_limits as fl
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
SMALL = ["--sizes", "1500", "--simulate", "15000", "--queries", "40", "--cap", "32"]


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return list(indexbench.run([1500], [15000], cap=32, queries=40, seed=3))


def test_a_row_per_design_data_set_and_size_with_the_issues_fields(rows):
    assert [(r["design"], r["dataset"], r["n"], r["simulated"]) for r in rows] == [
        (design, dataset, n, n == 15000)
        for dataset in ("uniform", "clustered")
        for n in (1500, 15000)
        for design in ("buckets", "chains")
    ]
    for row in rows:
        assert row.keys() >= REQUIRED
        json.dumps(row)  # plain JSON values


def test_the_numbers_are_sane(rows):
    for row in rows:
        assert row["recall"] == 1.0, row  # both designs are exact
        assert row["exact_errors"] == 0
        assert row["bytes_read_per_lookup"] > 0
        assert row["kept_per_s"] > 0 and row["p99_ms"] > 0
        # t + 1 = 11 index documents and the owner, at least, per kept frame.
        assert row["docs_written_per_kept"] >= 12
        assert 0 <= row["false_match_rate"] <= 1
    buckets = [r for r in rows if r["design"] == "buckets"]
    chains = [r for r in rows if r["design"] == "chains"]
    assert {r["docs_read_per_lookup"] for r in buckets} == {11.0}
    # A chain's leaf holds at most ``cap`` entries whatever n: the largest document is bounded.
    deepest = dedupindex.node_id(indexbench.SCOPE, dedupindex.Node(0, (63,) * 11))
    bound = indexbench.leaf_bytes(deepest, 32)
    assert all(r["max_doc_bytes"] <= bound for r in chains)
    # Ten times the hashes: the buckets read about ten times the bytes, the chains far less.
    for dataset in ("uniform", "clustered"):
        small, large = (r for r in buckets if r["dataset"] == dataset)
        assert 8 < large["bytes_read_per_lookup"] / small["bytes_read_per_lookup"] < 12
        small, large = (r for r in chains if r["dataset"] == dataset)
        assert large["bytes_read_per_lookup"] / small["bytes_read_per_lookup"] < 8


def test_a_second_run_gives_the_same_rows_the_compute_time_is_modelled(rows):
    again = list(indexbench.run([1500], [15000], cap=32, queries=40, seed=3))

    def modelled(row: dict) -> dict:
        return {k: v for k, v in row.items() if k != "compute_ms_measured"}

    assert [modelled(r) for r in again] == [modelled(r) for r in rows]
    real = [r for r in rows if not r["simulated"]]
    assert all(r["compute_ms_measured"] > 0 for r in real)
    assert all(r["compute_ms_measured"] is None for r in rows if r["simulated"])


def test_framesift_bench_index_json_prints_one_object_per_line(capfd):
    result = CliRunner().invoke(cli.app, ["bench", "index", "--json", *SMALL])
    assert result.exit_code == 0, result.output
    lines = capfd.readouterr().out.splitlines()
    printed = [json.loads(line) for line in lines]
    assert len(printed) == 8 and all(row.keys() >= REQUIRED for row in printed)


def test_without_json_it_prints_the_markdown_table(capfd):
    indexbench.main(SMALL)
    lines = capfd.readouterr().out.splitlines()
    assert lines[0].startswith("| design | data | n |") and len(lines) == 2 + 8


def test_the_chains_through_a_store_with_firestores_limits_decide_as_a_numpy_scan():
    # The check `--firestore` runs on the emulator, here through the limits' simulator.
    store = fl.LimitedStore()
    g = dedupindex.Geometry(cap=4)
    checked = indexbench.through_store(store, "limited", 150, g, seed=7, scope="collector:x")
    assert checked["exact_errors"] == 0 and checked["decisions"] == 225
    assert any(dedupindex.is_split(doc) for doc in store.docs.values())
    stored = sum(dedupindex.entries([doc]) for doc in store.docs.values())
    assert stored == checked["kept"] * g.chains


def test_the_store_check_counts_a_decision_that_differs_from_the_scan(monkeypatch):
    monkeypatch.setattr(dedupindex, "nearest", lambda *args, **kwargs: None)  # finds nothing
    g = dedupindex.Geometry(cap=4)
    checked = indexbench.through_store(fl.LimitedStore(), "limited", 60, g, seed=7, scope="s")
    assert checked["exact_errors"] > 0

"""`framesift bench index`'s rows from one small run: one JSON object per design, data set and
size, with sane numbers. Integration, not unit: the run is the benchmark end to end (about ten
seconds; no wall time is asserted)."""

from __future__ import annotations

import json

import pytest

from framesift import dedupindex
from framesift_dev import firestore_limits as fl
from framesift_dev import indexbench
from tests.support.indexbench import REQUIRED, TAIL, run_small

DESIGNS = ("buckets", "chains", "tail", "tiered")


def _by(rows: list[dict], design: str, dataset: str, n: int) -> dict:
    return next(r for r in rows if (r["design"], r["dataset"], r["n"]) == (design, dataset, n))


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return run_small()


def test_a_row_per_design_data_set_and_size_with_the_issues_fields(rows):
    assert [(r["design"], r["dataset"], r["n"], r["simulated"]) for r in rows] == [
        (design, dataset, n, n == 15000)
        for dataset in ("uniform", "clustered")
        for n in (1500, 15000)
        for design in DESIGNS
    ]
    for row in rows:
        assert row.keys() >= REQUIRED | {"recall_by_distance"}
        json.dumps(row)  # plain JSON values


def test_the_numbers_are_sane(rows):
    for row in rows:
        if row["design"] in ("buckets", "chains"):
            assert row["recall"] == 1.0, row  # both designs are exact
        assert row["exact_errors"] == 0
        assert row["bytes_read_per_lookup"] > 0
        assert row["kept_per_s"] > 0 and row["p99_ms"] > 0
        # t + 1 = 11 index documents (the tail: a leaf a table) and the owner, at least.
        least = {"tail": TAIL.tables + 1, "tiered": 11 + TAIL.tables + 1}.get(row["design"], 12)
        assert row["docs_written_per_kept"] >= least
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


def test_the_tail_reads_a_leaf_a_table_and_misses_some_far_near_duplicates(rows):
    for row in (r for r in rows if r["design"] == "tail"):
        assert set(row["recall_by_distance"]) == {str(d) for d in range(1, 11)}
        # A document a table, and more per split level on the path (its node, the probes).
        assert row["docs_read_per_lookup"] >= TAIL.tables
        assert row["docs_written_per_kept"] >= TAIL.tables + 1
        assert row["recall_by_distance"]["1"] >= row["recall_by_distance"]["10"]
        assert row["recall"] < 1.0  # 4 tables miss some pairs at 10 bits
    simulated = _by(rows, "tail", "uniform", 15000)
    assert simulated["rounds"] > _by(rows, "tail", "uniform", 1500)["rounds"]  # a deeper trie


def test_the_tiered_row_adds_the_window_and_the_tail(rows):
    for dataset in ("uniform", "clustered"):
        for n in (1500, 15000):
            tiered, tail = _by(rows, "tiered", dataset, n), _by(rows, "tail", dataset, n)
            if n <= 5000:  # the window holds every frame: exact, and both read and written
                window = _by(rows, "chains", dataset, n)
                assert tiered["recall"] == 1.0
                assert tiered["docs_read_per_lookup"] == pytest.approx(
                    window["docs_read_per_lookup"] + tail["docs_read_per_lookup"], abs=0.2
                )
                assert tiered["docs_written_per_kept"] == pytest.approx(
                    window["docs_written_per_kept"] + tail["docs_written_per_kept"] - 1, abs=0.02
                )
                # A keep reads the window again (the attempt with the tail) and, appending, its
                # own leaves; a design of one transaction reads nothing more.
                assert tiered["docs_read_per_kept"] == pytest.approx(
                    tiered["docs_read_per_lookup"] + window["docs_read_per_lookup"] + TAIL.tables,
                    abs=0.2,
                )
                for alone in (window, tail):
                    assert alone["docs_read_per_kept"] == alone["docs_read_per_lookup"]
            else:  # a third of the planted duplicates' frames are the window's
                expected = 5000 / n + (1 - 5000 / n) * tail["recall"]
                assert tiered["recall"] == pytest.approx(expected, abs=1e-3)
                assert tiered["docs_read_per_lookup"] > tail["docs_read_per_lookup"] + 11


def test_the_rows_kept_rate_uses_rate_splits_and_says_what_a_lookup_reads_at_it(rows):
    for row in rows:
        if row["design"] == "buckets":
            assert row["rate_splits"] is None
            assert row["kept_per_s"] == row["kept_per_s_size_splits"]
        else:
            assert row["rate_splits"] == ("scaled" if row["simulated"] else "sample")
            assert row["kept_per_s"] in fl.RATE_LADDER
        assert row["docs_read_at_kept_per_s"] >= row["docs_read_per_lookup"] - 0.1
    # The tiered decision reads the tail before its transaction: its p99 counts those reads.
    for row in rows:
        assert (row["plain_read_p99_ms"] > 0) == (row["design"] == "tiered")

"""`framesift bench index`: one JSON object per design, data set and size, with sane numbers that
repeat from run to run (no wall time is asserted)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from framesift import dedupindex, tailindex
from framesift_dev import firestore_limits as fl
from framesift_dev import hotleaves, indexbench
from tests.support.indexbench import REQUIRED, TAIL, run_small

DESIGNS = ("buckets", "chains", "tail", "tiered")


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


def _by(rows: list[dict], design: str, dataset: str, n: int) -> dict:
    return next(r for r in rows if (r["design"], r["dataset"], r["n"]) == (design, dataset, n))


def test_the_tail_reads_one_leaf_a_table_and_misses_some_far_near_duplicates(rows):
    for row in (r for r in rows if r["design"] == "tail"):
        assert set(row["recall_by_distance"]) == {str(d) for d in range(1, 11)}
        # One document a table, and one more per split level on the path.
        assert row["docs_read_per_lookup"] >= TAIL.tables
        assert row["docs_written_per_kept"] >= TAIL.tables + 1
        assert row["recall_by_distance"]["1"] >= row["recall_by_distance"]["10"]
        assert row["recall"] < 1.0  # 12 tables miss some pairs at 10 bits
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
            else:  # a third of the planted duplicates' frames are the window's
                expected = 5000 / n + (1 - 5000 / n) * tail["recall"]
                assert tiered["recall"] == pytest.approx(expected, abs=1e-3)
                assert tiered["docs_read_per_lookup"] > tail["docs_read_per_lookup"] + 11


def test_the_vectorised_recall_walks_the_tail_as_tailindex_plan_does():
    rng = np.random.default_rng(5)
    sample = rng.integers(0, 2**64, 3000, dtype=np.uint64)
    keys = indexbench.sorted_keys(sample, TAIL)
    stored, queries, _ = indexbench.near_pairs(sample, 30, rng)
    for scale in (1.0, 10.0):
        docs = indexbench.TailDocs(keys, scale, TAIL)
        found = indexbench.tail_found(docs, stored, queries)
        for s, q, met in zip(stored.tolist(), queries.tolist(), found.tolist(), strict=True):
            own = indexbench.tail_lookup(f"{s:016x}", docs, TAIL)[0].leaves
            read = indexbench.tail_lookup(f"{q:016x}", docs, TAIL)[0].leaves
            assert met == bool(set(own) & set(read))
        assert 0 < found.mean() < 1


def test_a_real_tail_node_holds_the_hashes_on_its_path():
    rng = np.random.default_rng(6)
    sample = rng.integers(0, 2**64, 2000, dtype=np.uint64)
    docs = indexbench.TailDocs(indexbench.sorted_keys(sample, TAIL), 1.0, TAIL)
    for value in sample[:20].tolist():
        query = f"{value:016x}"
        plan, read, _ = indexbench.tail_lookup(query, docs, TAIL)
        for leaf in plan.leaves:
            table, depth = int(leaf.split("~")[1][1:]), int(leaf.split("~")[2])
            held = np.frombuffer(read[leaf]["hashes"], ">u8").tolist()
            assert value in held
            assert all(
                tailindex.key(h, table, depth, TAIL) == tailindex.key(value, table, depth, TAIL)
                for h in held
            )
            assert len(held) <= TAIL.cap or depth == TAIL.max_depth


def test_the_tables_needed_follow_the_hypergeometric_estimate():
    # One table keyed by k of 64 bits meets a pair d bits apart with C(64 - d, k) / C(64, k).
    first = indexbench.first_meetings(17, pairs=20_000, most=300)
    for d in (1, 5, 10):
        p = math.comb(64 - d, 17) / math.comb(64, 17)
        for tables in (10, 50):
            assert (first[d - 1] < tables).mean() == pytest.approx(1 - (1 - p) ** tables, abs=0.02)


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


def test_sustained_is_the_highest_ladder_rate_before_the_first_that_does_not_hold():
    look = indexbench.Lookups(docs_read=[80, 90])
    look.decisions = [
        fl.Decision(frozenset({f"{i}"}), frozenset({f"{i}"}), 0.01) for i in range(50)
    ]

    def at(rate: float) -> indexbench.AtRate:
        return indexbench.AtRate(look, 1 / 150)  # the hottest document: 150 kept/s at most

    kept = indexbench.sustained(at, "sample", rates=(50, 100, 200, 20))
    assert kept == indexbench.Kept(100, 85.0, "sample")
    assert indexbench.sustained(at, "x", rates=(200, 100)).kept_per_s == 0


def test_the_tiered_decision_reads_and_writes_the_window_only_and_the_tail_appends_apart():
    g = dedupindex.Geometry(cap=32, min_depth=1)
    rng = np.random.default_rng(8)
    sample = rng.integers(0, 2**64, 1500, dtype=np.uint64)
    fresh = rng.integers(0, 2**64, 30, dtype=np.uint64)
    keys = indexbench.sorted_keys(sample, TAIL)
    window = indexbench.ChainsAt(sample, 1500, fresh, g)
    tail = indexbench.TailAt(sample, keys, 1500, fresh, TAIL)
    state = indexbench.tiered_at(window, tail)(100)
    tail_ids = {i for d in tail(100).look.decisions for i in d.reads}
    assert all(i.split("~")[-3].startswith("t") for i in tail_ids)
    for decided, appended in zip(state.look.decisions, state.look.appends, strict=True):
        assert not decided.reads & tail_ids and not decided.writes & tail_ids
        assert appended.reads == appended.writes and len(appended.writes) == TAIL.tables
        assert appended.writes <= tail_ids
    # Documents read per lookup still add: the window's and the tail's.
    assert np.mean(state.look.docs_read) == pytest.approx(
        np.mean(window(100).look.docs_read) + np.mean(tail(100).look.docs_read)
    )
    assert len(state.look.plain_read_s) == len(fresh)
    assert state.hottest_share == max(window(100).hottest_share, tail(100).hottest_share)


def test_the_chains_at_a_rate_split_hot_leaves_built_or_scaled():
    g = dedupindex.Geometry(cap=64, min_depth=1)
    hot = np.random.default_rng(9).integers(0, 2**64, 2000, dtype=np.uint64)
    hot[:1000] = (hot[:1000] & np.uint64(2**40 - 1)) | np.uint64(0xABCDEF << 40)
    fresh = hot[np.random.default_rng(10).integers(0, 2000, 40)]
    built = indexbench.ChainsAt(hot, 2000, fresh, g)
    assert built(0).hottest_share * 400 > g.split_rate  # hot under the cap
    assert built(400).hottest_share < built(0).hottest_share
    assert np.mean(built(400).look.docs_read) > np.mean(built(0).look.docs_read)
    # Simulated (ten times the sample): nothing splits by rate while the rate's entries pass
    # the cap (the same shape: the same state), and hot leaves split above.
    scaled = indexbench.ChainsAt(hot, 20000, fresh, g)
    most = hotleaves.most_entries(20000, 100, g.split_rate)
    assert most > g.cap and scaled(100) is scaled(0)
    assert np.mean(scaled(2000).look.docs_read) > np.mean(scaled(0).look.docs_read)
    assert scaled(2000).hottest_share < scaled(0).hottest_share

"""`framesift bench index`'s pieces: the lookups, the contention rule, the tail's recall walk,
the tiered model and the rate splits, each on a few hashes (its rows from a whole run:
tests/integration/test_indexbench_rows.py; no wall time is asserted)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from framesift import dedupindex, tailindex
from framesift_dev import firestore_limits as fl
from framesift_dev import hotleaves, indexbench
from tests.support.indexbench import TAIL


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


@pytest.mark.parametrize("flips", [0, 1, 2])
def test_the_vectorised_recall_walks_the_tail_as_tailindex_plan_does(flips):
    # Few tables, so that some pairs are missed with the probes too.
    g = dataclasses.replace(TAIL, tables=3, flips=flips)
    rng = np.random.default_rng(5)
    sample = rng.integers(0, 2**64, 3000, dtype=np.uint64)
    keys = indexbench.sorted_keys(sample, g)
    stored, queries, _ = indexbench.near_pairs(sample, 30, rng)
    for scale in (1.0, 10.0):
        docs = indexbench.TailDocs(keys, scale, g)
        found = indexbench.tail_found(docs, stored, queries)
        for s, q, met in zip(stored.tolist(), queries.tolist(), found.tolist(), strict=True):
            own = tailindex.own_plan(indexbench.SCOPE, f"{s:016x}", docs, g).leaves
            read = indexbench.tail_lookup(f"{q:016x}", docs, g)[0].leaves
            assert met == bool(set(own) & set(read))
        assert 0 < found.mean() < 1


def test_a_real_tail_node_holds_the_hashes_on_its_path():
    rng = np.random.default_rng(6)
    sample = rng.integers(0, 2**64, 2000, dtype=np.uint64)
    docs = indexbench.TailDocs(indexbench.sorted_keys(sample, TAIL), 1.0, TAIL)
    for value in sample[:20].tolist():
        query = f"{value:016x}"
        plan = tailindex.own_plan(indexbench.SCOPE, query, docs, TAIL)
        for leaf in plan.leaves:
            table, depth = int(leaf.split("~")[1][1:]), int(leaf.split("~")[2])
            held = np.frombuffer(docs[leaf]["hashes"], ">u8").tolist()
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


def test_sustained_is_the_highest_ladder_rate_before_the_first_that_does_not_hold():
    look = indexbench.Lookups(docs_read=[80, 90])
    look.decisions = [
        fl.Decision(frozenset({f"{i}"}), frozenset({f"{i}"}), 0.01) for i in range(50)
    ]

    def at(rate: float) -> indexbench.AtRate:
        return indexbench.AtRate(look, 1 / 150)  # the hottest document: 150 kept/s at most

    kept = indexbench.sustained(at, "sample", rates=(50, 100, 200, 20))
    # No two decisions share a document: no aborts, at 100 nor at 200 (where the hottest
    # document fails the rule).
    assert kept == indexbench.Kept(100, 85.0, "sample", aborts=0.0, aborts_past=0.0)
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
    assert np.mean(scaled(400).look.docs_read) > np.mean(scaled(0).look.docs_read)
    assert scaled(400).hottest_share < scaled(0).hottest_share

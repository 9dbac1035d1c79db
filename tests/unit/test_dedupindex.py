"""The size-bounded chain index: exact within t whatever its splits, leaves never over the cap,
and two near duplicates' decisions always touch a common document."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from framesift import dedupindex as di
from framesift import phashindex
from framesift.errors import CorruptIndex
from framesift.imagestats import hamming
from tests.support.dedupframes import clustered_hashes, exhaustive

Docs = dict[str, dict[str, Any] | None]


def _read(scope: str, phash: str, docs: Docs, g: di.Geometry) -> tuple[di.Plan, set[str]]:
    """Plan a lookup as a transaction would, reading (missing documents read as None) until
    nothing is missing; returns the plan and every document id read."""
    view: Docs = {}
    read: set[str] = set()
    while True:
        found = di.plan(scope, phash, view, g)
        if not found.missing:
            return found, read
        for doc_id in found.missing:
            view[doc_id] = docs.get(doc_id)
            read.add(doc_id)


def _keep(
    scope: str, phash: str, docs: Docs, g: di.Geometry, now: datetime | None = None
) -> set[str]:
    """Add a hash as dedup would after its lookup (decided at ``now``); returns the ids
    written."""
    _, read = _read(scope, phash, docs, g)
    writes = di.added(scope, phash, {i: docs.get(i) for i in read}, g, now=now)
    docs.update(writes)
    return set(writes)


def _flip(value: int, bits: list[int]) -> str:
    for bit in bits:
        value ^= 1 << bit
    return f"{value:016x}"


def _lookup(phash: str, docs: Docs, g: di.Geometry) -> phashindex.Neighbour | None:
    found, read = _read("s", phash, docs, g)
    return di.nearest(phash, {i: docs.get(i) for i in read}, found, g)


@pytest.fixture(scope="module")
def crowded() -> tuple[Docs, list[str], di.Geometry]:
    """800 random hashes and 300 near one another (a hot region), in leaves of at most 4:
    the tries split several levels deep."""
    g = di.Geometry(threshold=10, cap=4, min_depth=1)
    rng = random.Random(7)
    docs: Docs = {}
    centre = rng.getrandbits(64)
    stored = [f"{rng.getrandbits(64):016x}" for _ in range(800)]
    stored += [_flip(centre, rng.sample(range(64), rng.randint(11, 20))) for _ in range(300)]
    kept = []
    for phash in stored:
        if _lookup(phash, docs, g) is None:
            _keep("s", phash, docs, g)
            kept.append(phash)
    return docs, kept, g


def test_recall_is_exact_within_t_on_random_queries(crowded):
    docs, kept, g = crowded
    rng = random.Random(1)
    for _ in range(300):
        query = _flip(int(rng.choice(kept), 16), rng.sample(range(64), rng.randint(0, 13)))
        brute = min((hamming(query, phash), int(phash, 16)) for phash in kept)
        found = _lookup(query, docs, g)
        if brute[0] <= g.threshold:
            assert found is not None, f"missed a hash at {brute[0]} bits"
            assert (found.distance, int(found.phash, 16)) == brute
        else:
            assert found is None


def _adversarial(g: di.Geometry, rng: random.Random) -> list[list[int]]:
    """Sets of exactly t bit positions spread over the bands so that every chain's budget is
    stretched: one or two bits in each band but one, the bits on band boundaries."""
    bands = g.bands
    cases = []
    for exact in range(g.chains):  # the one band left unchanged
        others = [b for b in range(g.chains) if b != exact]
        bits = []
        for b in others:
            shift, width = bands[b]
            bits.append(shift + (width - 1 if rng.random() < 0.5 else 0))  # a band's edge
        cases.append(bits[: g.threshold])
    for _ in range(200):  # t bits crowded into a few adjacent bands (the ring's hard cases)
        first = rng.randrange(g.chains)
        span = [(first + j) % g.chains for j in range(rng.randint(2, 4))]
        pool = [s + w for b in span for s, width in [bands[b]] for w in range(width)]
        if len(pool) >= g.threshold:
            cases.append(rng.sample(pool, g.threshold))
    return cases


def test_hashes_differing_in_exactly_t_bits_across_band_boundaries_are_found(crowded):
    docs, kept, g = crowded
    rng = random.Random(2)
    for bits in _adversarial(g, rng):
        target = rng.choice(kept)
        query = _flip(int(target, 16), bits)
        assert hamming(query, target) == g.threshold
        found = _lookup(query, docs, g)
        assert found is not None and found.distance <= g.threshold, bits


def test_every_kept_hash_is_in_exactly_one_leaf_of_each_chain_and_leaves_stay_under_the_cap(
    crowded,
):
    docs, kept, g = crowded
    assert any(di.is_split(doc) for doc in docs.values()), "the fixture must split"
    depths = {doc_id.count(".") for doc_id, doc in docs.items() if di.is_split(doc)}
    assert max(depths) >= 2, "splits must go deeper than the first split level"
    for doc in docs.values():
        assert di.entries([doc]) <= g.cap
        if di.is_split(doc):
            assert di.entries([doc]) == 0
    holders: dict[str, int] = {}
    for doc in docs.values():
        hashes = bytes((doc or {}).get("hashes") or b"")
        for i in range(0, len(hashes), 8):
            key = hashes[i : i + 8].hex()
            holders[key] = holders.get(key, 0) + 1
    assert holders == dict.fromkeys(kept, g.chains)
    for phash in kept[:200]:
        for start in range(g.chains):
            leaf = docs[di.leaf_of("s", phash, start, docs, g)]
            assert bytes.fromhex(phash) in [
                leaf["hashes"][i : i + 8] for i in range(0, len(leaf["hashes"]), 8)
            ]


def test_a_leaf_at_the_cap_splits_in_the_transaction_of_the_hash_that_overflows_it():
    g = di.Geometry(threshold=10, cap=3, min_depth=0)
    docs: Docs = {}
    same_root = [f"{(0b101101 << 58) | (i << 40):016x}" for i in range(1, 5)]
    for phash in same_root[:3]:
        _keep("s", phash, docs, g)
    root = di.node_id("s", di.own_path(same_root[0], 0, 0, g))
    assert di.entries([docs[root]]) == 3 and not di.is_split(docs[root])
    written = _keep("s", same_root[3], docs, g)
    assert root in written and di.is_split(docs[root])
    assert di.entries([docs[root]]) == 0
    children = [i for i in written if i.startswith(root + ".")]
    assert di.entries(docs[i] for i in children) == 4
    for phash in same_root:
        assert _lookup(phash, docs, g) is not None


def test_split_documents_clear_their_entries_as_merged_writes_need():
    g = di.Geometry(threshold=10, cap=1, min_depth=0)
    docs: Docs = {}
    for phash in ("0000000000000001", "0000000000000100"):
        _keep("s", phash, docs, g)
    split = [doc for doc in docs.values() if di.is_split(doc)]
    assert split and all(doc == {"hashes": b"", "layouts": b"", "split": True} for doc in split)


@pytest.mark.parametrize("seed", range(40))
def test_two_near_duplicates_decisions_touch_a_common_document(seed, crowded):
    """Whatever the order: the second decider's reads include a document the first one's
    keep wrote, so their transactions conflict (the model of today's guarantee)."""
    base_docs, _, g = crowded
    rng = random.Random(seed)
    a = f"{rng.getrandbits(64):016x}"
    b = _flip(int(a, 16), rng.sample(range(64), rng.randint(1, g.threshold)))
    for first, second in ((a, b), (b, a)):
        docs = dict(base_docs)
        _, read_by_second_before = _read("s", second, docs, g)
        written = _keep("s", first, docs, g)
        _, read_by_second_after = _read("s", second, docs, g)
        # Concurrent: the second began before the first committed ...
        assert read_by_second_before & written, "no common document: both could be kept"
        # ... or after: it sees the first.
        found = _lookup(second, docs, g)
        assert found is not None and found.phash == first
        assert read_by_second_after & written


def test_unrelated_hashes_rarely_share_a_document(crowded):
    base_docs, _, g = crowded
    rng = random.Random(3)
    shared = 0
    for _ in range(200):
        docs = dict(base_docs)
        a, b = (f"{rng.getrandbits(64):016x}" for _ in range(2))
        _, read = _read("s", b, docs, g)
        shared += bool(read & _keep("s", a, docs, g))
    assert shared <= 10  # today's buckets: about 1 in 5 (40 of 200)


def test_a_lookup_asks_for_what_it_has_not_read():
    g = di.Geometry()
    first = di.plan("s", "0123456789abcdef", {}, g)
    assert first.leaves == [] and sorted(first.missing) == sorted(
        di.first_reads("s", "0123456789abcdef", g)
    )
    assert len(first.missing) == sum(1 + w for _, w in g.bands[1:]) + 1 + g.bands[0][1]
    with pytest.raises(ValueError, match="missing"):
        di.nearest("0123456789abcdef", {}, first, g)
    with pytest.raises(ValueError, match="not read"):
        di.added("s", "0123456789abcdef", {}, g)


# --- hot leaves: split by write rate ---------------------------------------------------------

T0 = datetime(2026, 12, 6, tzinfo=UTC)


def test_the_write_rate_is_an_exponentially_weighted_count():
    tau = di.RATE_TAU_S
    assert di.write_rate({}, None) is None  # the migration's writes update no rate
    first = di.write_rate(None, T0)
    assert first == di.Rate(1 / tau, T0.timestamp())
    later = T0 + timedelta(seconds=30)
    second = di.write_rate(di.leaf_doc(b"", b"", first), later)
    assert second is not None and second.at == later.timestamp()
    assert math.isclose(second.per_s, math.exp(-30 / tau) / tau + 1 / tau)
    # A clock behind the last writer's decays nothing (it never inflates the rate either).
    behind = di.write_rate(di.leaf_doc(b"", b"", second), T0)
    assert behind is not None and math.isclose(behind.per_s, second.per_s + 1 / tau)
    # A steady stream of writes at 2/s: the estimate converges to 2/s within a few tau.
    doc: dict[str, Any] = {}
    for i in range(2000):
        rate = di.write_rate(doc, T0 + timedelta(seconds=i / 2))
        doc = di.leaf_doc(b"", b"", rate)
    assert math.isclose(doc["rate"], 2.0, rel_tol=0.01)


def _one_hot_leaf(count: int) -> list[str]:
    """Hashes far apart (none a near duplicate of another) on one leaf of chain 0 at depth 1."""
    g = di.Geometry()
    rng = random.Random(11)
    (shift0, width0), (shift1, width1) = g.bands[0], g.bands[1]
    fixed = ((1 << width0) - 1) << shift0 | ((1 << width1) - 1) << shift1
    made: list[str] = []
    while len(made) < count:
        value = (rng.getrandbits(64) & ~fixed) | (0b10101 << shift0) | (0b1101 << shift1)
        if all(hamming(f"{value:016x}", other) > g.threshold for other in made):
            made.append(f"{value:016x}")
    return made


@pytest.mark.parametrize(("seconds_apart", "splits"), [(0.01, True), (10.0, False)])
def test_a_leaf_written_fast_splits_under_the_cap_and_one_written_slowly_does_not(
    seconds_apart, splits
):
    g = di.Geometry()
    hashes = _one_hot_leaf(60)
    leaf = di.node_id("s", di.own_path(hashes[0], 0, 1, g))
    docs: Docs = {}
    for i, phash in enumerate(hashes):
        _keep("s", phash, docs, g, T0 + timedelta(seconds=i * seconds_apart))
    assert di.is_split(docs[leaf]) is splits
    if splits:  # at 0.5/s: the 31st write (rate = 31/60), far under the cap of 2048
        children = [i for i, doc in docs.items() if i.startswith(leaf + ".")]
        rates = [docs[i]["rate"] for i in children]
        assert di.entries(docs[i] for i in children) == len(hashes)
        assert all(rate < g.split_rate for rate in rates)
    else:  # 0.1 writes/s: one leaf holding all, its estimate just after a write under
        # 1 / (tau (1 - exp(-10 / tau))) = 0.108
        assert di.entries([docs[leaf]]) == len(hashes) and docs[leaf]["rate"] < 0.11
    for phash in hashes:
        assert _lookup(phash, docs, g) is not None


def test_a_rate_split_gives_the_children_their_share_of_the_parents_rate():
    g = di.Geometry(split_rate=0.1)
    hashes = _one_hot_leaf(8)
    leaf = di.node_id("s", di.own_path(hashes[0], 0, 1, g))
    docs: Docs = {}
    for i, phash in enumerate(hashes):
        written = _keep("s", phash, docs, g, T0 + timedelta(milliseconds=i))
    # The 7th write took the rate past 0.1 (7/60): the split; the 8th went to its child.
    assert di.is_split(docs[leaf]) and leaf not in written
    children = {i: docs[i] for i in docs if i.startswith(leaf + ".")}
    untouched = [doc for i, doc in children.items() if i not in written]
    # The leaf's rate after its 7th write (6 ms of decay: negligible), shared by entries.
    at_split = 7 / di.RATE_TAU_S
    assert len(untouched) >= 4
    for doc in untouched:
        assert math.isclose(doc["rate"], at_split * di.entries([doc]) / 7, rel_tol=1e-3)


def test_a_rate_split_that_would_pass_max_writes_is_put_off_and_the_rate_still_counted():
    g = di.Geometry(split_rate=0.04)  # the 3rd write is past it (3/60): deferred, counted
    hashes = _one_hot_leaf(4)
    leaf = di.node_id("s", di.own_path(hashes[0], 0, 1, g))
    docs: Docs = {}
    for i, phash in enumerate(hashes[:3]):
        _, read = _read("s", phash, docs, g)
        now = T0 + timedelta(milliseconds=i)
        docs.update(di.added("s", phash, {j: docs.get(j) for j in read}, g, max_writes=11, now=now))
    assert not di.is_split(docs[leaf]) and math.isclose(docs[leaf]["rate"], 3 / 60, rel_tol=1e-3)
    _keep("s", hashes[3], docs, g, T0 + timedelta(milliseconds=3))
    assert di.is_split(docs[leaf])


def test_decisions_through_rate_splits_are_the_exhaustive_searchs():
    """A hot cluster decided 10 ms apart: its leaves split by rate (never by the cap of 2048)
    and every decision is the one comparing with every kept hash."""
    g = di.Geometry()
    hashes = clustered_hashes(seed=3, count=400)
    docs: Docs = {}
    decided: list[str | None] = []
    for i, phash in enumerate(hashes):
        found = _lookup(phash, docs, g)
        decided.append(found.phash if found else None)
        if found is None:
            _keep("s", phash, docs, g, T0 + timedelta(milliseconds=10 * i))
    assert decided == exhaustive(hashes, g.threshold)
    assert sum(di.is_split(doc) for doc in docs.values()) >= 3
    assert max(di.entries([doc]) for doc in docs.values()) < g.cap


@pytest.mark.parametrize(
    "rate",
    [{"rate": -1.0, "rate_at": 0.0}, {"rate": float("nan"), "rate_at": 0.0},
     {"rate": 1.0, "rate_at": float("inf")}, {"rate": "1", "rate_at": 0.0},
     {"rate": True, "rate_at": 0.0}, {"rate": 1.0}, {"rate_at": 0.0}],
)  # fmt: skip
def test_a_corrupt_write_rate_is_a_corrupt_index(rate):
    doc = {**di.leaf_doc(b"\x00" * 8, b""), **rate}
    with pytest.raises(CorruptIndex, match="write rate"):
        phashindex.check("s~r0~1.2", doc)


def test_leaves_written_with_and_without_a_rate_are_valid():
    phashindex.check("s~r0~1.2", di.leaf_doc(b"\x00" * 8, b""))  # an earlier release's leaf
    phashindex.check("s~r0~1.2", di.leaf_doc(b"\x00" * 8, b"", di.Rate(0.2, 1.7e9)))
    phashindex.check("s~r0~1.2", {**di.SPLIT_DOC, "rate": 0, "rate_at": 1_700_000_000})


def test_known_splits_keep_split_nodes_only_and_forget_the_oldest_past_their_bound():
    known = di.KnownSplits(most=2)
    leaf = di.leaf_doc(b"\0" * 8, b"")
    known.learn({"a": dict(di.SPLIT_DOC), "leaf": leaf, "absent": None, "b": dict(di.SPLIT_DOC)})
    assert set(known) == {"a", "b"} and known.over({})["a"] == di.SPLIT_DOC
    known.learn({"c": dict(di.SPLIT_DOC)})
    assert set(known) == {"b", "c"}
    # What was read wins over what is known (a document read as a leaf is planned as one).
    assert known.over({"b": leaf})["b"] == leaf and known.over({})["c"] == di.SPLIT_DOC

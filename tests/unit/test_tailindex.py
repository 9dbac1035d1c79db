"""The tail (bit-sampling LSH with size-bounded leaves): ids the same everywhere, leaves never
over the cap, a near hash found exactly when some table's leaf bits agree, splits put off under
a write budget, and its documents checked as the chains' are."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from framesift import dedupindex, phashindex
from framesift import tailindex as ti
from framesift.errors import CorruptIndex

Docs = dict[str, dict[str, Any] | None]
SCOPE = "collector:x"
# Tiny leaves and short keys, so that a few hundred hashes split several levels deep.
TINY = ti.TailGeometry(tables=3, cap=3, first_bits=2, split_bits=2)


def _read(phash: str, docs: Docs, g: ti.TailGeometry) -> tuple[Any, Docs]:
    """Plan a lookup as a transaction would, reading (an absent document read as None) until
    nothing is missing: the plan and what it read."""
    view: Docs = {}
    while True:
        found = ti.plan(SCOPE, phash, view, g)
        if not found.missing:
            return found, view
        for doc_id in found.missing:
            view[doc_id] = docs.get(doc_id)


def _keep(phash: str, docs: Docs, g: ti.TailGeometry, **kwargs: Any) -> dict[str, Any]:
    _, view = _read(phash, docs, g)
    writes = ti.added(SCOPE, phash, view, g, **kwargs)
    docs.update(writes)
    return writes


def _flip(value: int, bits: list[int]) -> str:
    for bit in bits:
        value ^= 1 << bit
    return f"{value:016x}"


def _permuted_by_definition(value: int, table: int) -> int:
    """The hash's bits in the table's order, its first position on top, bit by bit."""
    return sum(((value >> pos) & 1) << (63 - i) for i, pos in enumerate(ti.order(table)))


def test_table_orders_are_pinned_and_ids_are_the_same_everywhere():
    # A changed derivation would move every hash of every deployed tail: this must fail then.
    assert ti.order(0)[:12] == (62, 51, 23, 22, 7, 61, 45, 60, 21, 18, 56, 8)
    assert ti.order(135)[:12] == (27, 7, 45, 1, 41, 38, 3, 57, 32, 60, 50, 54)
    every = repr([ti.order(j) for j in range(136)]).encode()
    digest = "cea7df0d5553f33e6356ef4c9959d9c34b0836ab39c772886ebc5d2950caaacc"
    assert hashlib.sha256(every).hexdigest() == digest
    assert all(sorted(ti.order(j)) == list(range(64)) for j in range(136))
    first = ti.first_reads(SCOPE, "0123456789abcdef", ti.TailGeometry())
    assert first[:2] == ["collector:x~t0~0~516d", "collector:x~t1~0~bb6b"]
    assert len(first) == ti.TailGeometry().tables == len(set(first))
    # Never a chain's node (~r), a generation's (~g) or a bucket (~b).
    assert all(doc_id.startswith(f"{SCOPE}~t") for doc_id in first)


def test_the_byte_tables_permute_as_the_order_says():
    rng = random.Random(1)
    for table in (0, 7, 135):
        for _ in range(50):
            value = rng.getrandbits(64)
            assert ti.permuted(value, table) == _permuted_by_definition(value, table)


@pytest.mark.parametrize(
    "kwargs",
    [{"tables": 0}, {"cap": 0}, {"first_bits": 0}, {"first_bits": 65}, {"split_bits": 0},
     {"threshold": 64}, {"flips": -1}, {"flips": 4}],
)  # fmt: skip
def test_a_geometry_out_of_range_is_refused(kwargs):
    with pytest.raises(ValueError):
        ti.TailGeometry(**kwargs)


def test_added_hashes_are_found_after_splits_several_levels_deep_and_leaves_stay_under_cap():
    rng = random.Random(4)
    docs: Docs = {}
    kept = [f"{rng.getrandbits(64):016x}" for _ in range(300)]
    for phash in kept:
        _keep(phash, docs, TINY)
    for doc_id, doc in docs.items():
        phashindex.check(doc_id, doc)
        if not (doc or {}).get("split"):
            assert len((doc or {})["hashes"]) // 8 <= TINY.cap, doc_id
    depths = {int(doc_id.split("~")[2]) for doc_id in docs}
    assert max(depths) >= 3  # splits several levels deep
    # Every hash is in exactly one leaf per table.
    stored = sorted(
        (doc or {}).get("hashes", b"")[i : i + 8]
        for doc in docs.values()
        for i in range(0, len((doc or {}).get("hashes", b"")), 8)
    )
    assert stored == sorted(int(p, 16).to_bytes(8, "big") for p in kept for _ in range(3))
    for phash in kept:
        found, view = _read(phash, docs, TINY)
        assert len(ti.own_plan(SCOPE, phash, view, TINY).leaves) == TINY.tables
        match = ti.nearest(phash, view, found, TINY)
        assert match is not None and match.distance == 0


def _leaf_depth(stored: int, table: int, docs: Docs, g: ti.TailGeometry) -> int:
    """The depth of the leaf that holds ``stored`` in ``table`` (walking the documents)."""
    depth = 0
    while (docs.get(ti.path_id(SCOPE, stored, table, depth, g)) or {}).get("split"):
        depth += 1
    return depth


def _leaf_bits(stored: int, table: int, docs: Docs, g: ti.TailGeometry) -> int:
    """How many bits key the leaf that holds ``stored`` in ``table``."""
    return g.bits(_leaf_depth(stored, table, docs, g))


def _meets(query: int, stored: int, table: int, docs: Docs, g: ti.TailGeometry) -> bool:
    """Whether a lookup of ``query`` reads the leaf of ``stored`` in ``table``, by the
    definition: their first bits agree and at most ``flips`` of the split bits keying that
    leaf differ."""
    bits = _leaf_bits(stored, table, docs, g)
    differ = (_permuted_by_definition(query, table) ^ _permuted_by_definition(stored, table)) >> (
        64 - bits
    )
    return differ >> (bits - g.first_bits) == 0 and differ.bit_count() <= g.flips


@pytest.mark.parametrize("flips", [0, 1, 2])
def test_a_near_hash_is_found_iff_some_tables_leaf_bits_agree_but_the_probed_ones(flips):
    g = ti.TailGeometry(tables=3, cap=4, first_bits=3, split_bits=2, flips=flips)
    rng = random.Random(9)
    docs: Docs = {}
    kept = [rng.getrandbits(64) for _ in range(120)]
    for value in kept:
        _keep(f"{value:016x}", docs, g)
    outcomes = set()
    for _ in range(300):
        source = rng.choice(kept)
        query = _flip(source, rng.sample(range(64), rng.randint(1, g.threshold)))
        q = int(query, 16)
        met = [
            (q ^ s).bit_count()
            for s in kept
            if (q ^ s).bit_count() <= g.threshold
            and any(_meets(q, s, j, docs, g) for j in range(g.tables))
        ]
        found, view = _read(query, docs, g)
        # Each leaf once, and every node the walk counts is one it read.
        assert len(set(found.leaves)) == len(found.leaves) and found.nodes == len(view)
        match = ti.nearest(query, view, found, g)
        assert (match.distance if match else None) == (min(met) if met else None)
        outcomes.add(bool(met))
        # The rule the benchmarks' models use is the definition too (the query's source is near).
        for s in [source, *kept[:20]]:
            for j in range(g.tables):
                depth = _leaf_depth(s, j, docs, g)
                assert ti.meets(q, s, j, depth, g) == _meets(q, s, j, docs, g)
    assert outcomes == {True, False}  # both found and missed near hashes were compared


def test_a_split_that_would_pass_max_writes_is_put_off():
    g = ti.TailGeometry(tables=2, cap=2, first_bits=1, split_bits=1)
    docs: Docs = {}
    # Three hashes on the same depth-0 path in every table (they differ in one bit only, which
    # no table keys its depth-0 node by... chosen so: same first bit in both tables' orders).
    low = {ti.order(0)[0], ti.order(1)[0]}
    free = [bit for bit in range(64) if bit not in low]
    hashes = [_flip(0, []), _flip(0, [free[0]]), _flip(0, [free[1]])]
    for phash in hashes[:2]:
        _keep(phash, docs, g)
    with pytest.raises(ValueError, match="at least 2"):
        ti.added(SCOPE, hashes[2], _read(hashes[2], docs, g)[1], g, max_writes=1)
    writes = _keep(hashes[2], docs, g, max_writes=2)
    assert len(writes) == 2 and not any(doc["split"] for doc in writes.values())
    assert all(len(doc["hashes"]) == 3 * 8 for doc in writes.values())  # over the cap by one
    fourth = _flip(0, [free[2]])
    view = _read(fourth, docs, g)[1]
    unbounded = ti.added(SCOPE, fourth, view, g)
    # A budget of exactly the writes the splits need lets them happen; one less puts one off.
    assert ti.added(SCOPE, fourth, view, g, max_writes=len(unbounded)) == unbounded
    assert ti.added(SCOPE, fourth, view, g, max_writes=len(unbounded) - 1) != unbounded
    writes = _keep(fourth, docs, g)  # no budget: both tables split now
    assert sum(doc["split"] for doc in writes.values()) >= 2
    for phash in [*hashes, fourth]:
        found, view = _read(phash, docs, g)
        match = ti.nearest(phash, view, found, g)
        assert match is not None and match.distance == 0


def test_unread_documents_are_refused():
    g = ti.TailGeometry(tables=2)
    with pytest.raises(ValueError, match="missing"):
        found = ti.plan(SCOPE, "00" * 8, {}, g)
        ti.nearest("00" * 8, {}, found, g)
    with pytest.raises(ValueError, match="was not read"):
        ti.added(SCOPE, "00" * 8, {}, g)


@pytest.mark.parametrize(
    "corrupt",
    [{"hashes": b"\x00" * 7, "layouts": b"", "split": False},
     {"hashes": "00", "layouts": b"", "split": False},
     {"hashes": b"\x00" * 8, "layouts": b"", "split": True}],
)  # fmt: skip
def test_a_corrupt_node_raises_corrupt_index_when_the_caller_checks_it(corrupt):
    docs: Docs = {}
    _keep("0123456789abcdef", docs, TINY)
    doc_id = ti.first_reads(SCOPE, "0123456789abcdef", TINY)[1]
    docs[doc_id] = corrupt
    _, view = _read("0123456789abcdef", docs, TINY)
    with pytest.raises(CorruptIndex, match=doc_id):
        for read_id, doc in view.items():
            phashindex.check(read_id, doc)


@pytest.mark.parametrize(("seconds_apart", "splits"), [(0.01, True), (10.0, False)])
def test_a_tail_leaf_written_fast_splits_under_the_cap_and_one_written_slowly_does_not(
    seconds_apart, splits
):
    g = ti.TailGeometry(tables=2, first_bits=4)  # cap 2048: only the rate can split a leaf
    rng = random.Random(5)
    top = set(ti.order(0)[:4])  # table 0's first documents are keyed by these bits
    hashes = [f"{rng.getrandbits(64) & ~sum(1 << b for b in top):016x}" for _ in range(60)]
    root = ti.path_id(SCOPE, int(hashes[0], 16), 0, 0, g)
    docs: Docs = {}
    start = datetime(2026, 12, 6, tzinfo=UTC)
    for i, phash in enumerate(hashes):
        _keep(phash, docs, g, now=start + timedelta(seconds=i * seconds_apart))
    root_doc = docs[root] or {}
    assert dedupindex.is_split(root_doc) is splits
    if splits:  # its children took their shares of its rate (0.5/s at the 31st write)
        children = [doc or {} for i, doc in docs.items() if i.startswith(f"{SCOPE}~t0~1~")]
        assert sum(doc["rate"] for doc in children) > g.split_rate
        assert all(doc["rate"] <= g.split_rate for doc in children)
    for phash in hashes:
        found, view = _read(phash, docs, g)
        match = ti.nearest(phash, view, found, g)
        assert match is not None and match.distance == 0

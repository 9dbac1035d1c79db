"""The tiered index's generations (framesift.datasetindex.Window): any two deciders whose clocks
are less than the grace apart share a generation they both read and write; and a lookup over
the split nodes its instance knows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from framesift import datasetindex, dedupindex, dedupmigration, tailindex
from framesift.bookkeeping import BucketsRetired, LegacyChains
from framesift.config import Settings
from framesift.datasetindex import GRACE, LEGACY_KEY, Window
from framesift.errors import BackendUnavailable, ReadMore
from framesift.imagestats import LAYOUT_UNKNOWN
from framesift.ports import DocKey
from framesift.topology import Collections
from tests.support.dedupframes import clustered_hashes, one_frame_batch, stage
from tests.support.fakes import InMemoryDocumentStore, RecordingPublisher

DAY = datetime(2026, 12, 6, tzinfo=UTC)


@pytest.mark.parametrize("hours", [1, 24])
def test_a_decision_is_in_its_generation_and_in_its_last_minutes_the_next_ones_too(hours):
    window = Window(hours=hours)
    period = timedelta(hours=hours)
    (this,) = window.generations(DAY + period / 2)
    assert window.generations(DAY) == (this,)
    assert window.generations(DAY + period - GRACE - timedelta(seconds=1)) == (this,)
    assert window.generations(DAY + period - GRACE) == (this, this + 1)
    assert window.generations(DAY + period) == (this + 1,)
    assert Window(hours=7 * hours).generations(DAY)[0] == window.generations(DAY)[0] // 7


@pytest.mark.parametrize("hours", [1, 24, 72, 720])
def test_any_two_clocks_less_than_the_grace_apart_share_a_generation(hours):
    window = Window(hours=hours)
    rng = random.Random(hours)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    edge = epoch + window.period * ((DAY - epoch) // window.period + 1)
    for _ in range(2000):
        first = edge + timedelta(seconds=rng.uniform(-2, 2) * GRACE.total_seconds())
        second = first + timedelta(seconds=rng.uniform(0, 0.999) * GRACE.total_seconds())
        assert set(window.generations(first)) & set(window.generations(second)), (first, second)


def test_a_generation_lasts_at_least_an_hour():
    with pytest.raises(ValueError, match="at least an hour"):
        Window(hours=0)


def test_a_new_tiered_store_stops_reading_generation_less_chains_at_once():
    """Nothing kept before the switch: the migration leaves no window of extra reads."""
    documents = InMemoryDocumentStore()
    shape = datasetindex.shape(Settings().model_copy(update={"dedup_window_hours": 1}))
    before = datetime.now(UTC)
    dedupmigration.ensure_migrated(documents, shape)
    state = {LEGACY_KEY: documents.get(*LEGACY_KEY)}
    assert before <= LegacyChains.model_validate(state[LEGACY_KEY]).read_until
    assert not datasetindex.legacy_read(state, datetime.now(UTC))


def _looked_up(
    lookup: datasetindex.Lookup, documents: InMemoryDocumentStore
) -> tuple[int, list[DocKey], datasetindex.Found]:
    """A lookup's read rounds, the keys it read, and what it found (as in a transaction)."""
    docs: dict[DocKey, Any] = {}
    wanted = lookup.first_keys()
    rounds = 0
    while True:
        rounds += 1
        docs.update({key: documents.get(*key) for key in wanted})
        try:
            return rounds, list(docs), lookup.read(docs)
        except ReadMore as more:
            wanted = more.keys


def test_an_instance_that_knows_the_splits_reads_the_leaves_alone_in_one_round():
    """Leaves of one hash split a cluster's chains deep: a cold lookup walks them a level a
    round; the instance's next lookup of the same neighbourhood reads only the same leaves, at
    once, and finds the same neighbour."""
    documents = InMemoryDocumentStore()
    shape = datasetindex.shape(Settings().model_copy(update={"dedup_leaf_cap": 1}))
    dedupmigration.ensure_migrated(documents, shape)  # no buckets to read (another round)
    dedup = stage(documents, RecordingPublisher(), dedup_leaf_cap=1)
    hashes = clustered_hashes(seed=9, count=100)
    for index, phash in enumerate(hashes):
        batch = one_frame_batch(f"v{index:03d}", "cam", phash)
        dedup.decide(batch.frames[0], batch)
    known = dedupindex.KnownSplits()
    query = f"{int(hashes[0], 16) ^ 0b1001:016x}"  # in the cluster (not one of its outliers)

    def lookup() -> datasetindex.Lookup:
        return datasetindex.Lookup("collector:cam", query, shape, DAY, known)

    def splits(keys: list[DocKey]) -> int:
        return sum(dedupindex.is_split(documents.get(*key)) for key in keys)

    cold_rounds, cold_keys, cold = _looked_up(lookup(), documents)
    warm_rounds, warm_keys, warm = _looked_up(lookup(), documents)

    assert cold_rounds > 3 and warm_rounds == 1 and splits(cold_keys) > 20
    assert warm.leaves == cold.leaves and splits(warm_keys) == 0
    assert len(warm_keys) == len(cold_keys) - splits(cold_keys)
    assert warm.nearest(LAYOUT_UNKNOWN, 255.0) == cold.nearest(LAYOUT_UNKNOWN, 255.0) is not None


def test_a_new_generations_nodes_lie_beside_the_last_ones_in_key_order():
    """The generation ends a node's id: in Firestore's key order each node of generation g + 1
    sits next to the same node of g (ranges already split for g's load), never in one new
    range of its own."""
    chains = datasetindex.geometry(10, 2048)
    rng = random.Random(7)
    phashes = [f"{rng.getrandbits(64):016x}" for _ in range(20)]
    ids = sorted(
        {
            doc_id
            for generation in (490000, 490001)
            for phash in phashes
            for doc_id in dedupindex.first_reads(
                datasetindex.generation_scope("collector:cam", generation), phash, chains
            )
        }
    )
    nodes = [doc_id.rpartition("~g")[0] for doc_id in ids]
    assert nodes[0::2] == nodes[1::2] and len(set(nodes)) == len(ids) // 2
    assert all(doc_id.endswith(("~g490000", "~g490001")) for doc_id in ids)


def test_a_tiered_keep_whose_clock_reading_grew_stale_is_refused_and_decided_again():
    """Between a decision's clock reading and its writes more than half the grace: it writes
    nothing and raises BackendUnavailable (redelivered); decided again, it keeps the frame."""
    documents = InMemoryDocumentStore()
    documents.merge(*datasetindex.RETIRED_KEY, BucketsRetired(retired=True).stored())
    documents.merge(*LEGACY_KEY, LegacyChains(in_tail=True, read_until=DAY).stored())
    readings = iter([DAY, DAY + GRACE / 2 + timedelta(seconds=1)])
    slow = stage(
        documents,
        RecordingPublisher(),
        lambda: next(readings),
        dedup_window_hours=24,
        dedup_tail_tables=4,
    )
    batch = one_frame_batch("v", "cam", "0123456789abcdef")
    with pytest.raises(BackendUnavailable, match="fresh clock"):
        slow.decide(batch.frames[0], batch)
    assert documents.get(Collections.FRAMES, batch.frames[0].frame_id) is None
    again = stage(
        documents, RecordingPublisher(), lambda: DAY, dedup_window_hours=24, dedup_tail_tables=4
    )
    assert again.decide(batch.frames[0], batch).status == "kept"


# A tail whose tables split several levels under a few dozen hashes.
SPLITTING_TAIL = tailindex.TailGeometry(tables=2, cap=2, first_bits=2, split_bits=2)
NOON = datetime(2026, 12, 6, 12, tzinfo=UTC)


def _appended(documents: InMemoryDocumentStore, kept: list[str]) -> dedupindex.KnownSplits:
    known = dedupindex.KnownSplits()
    for phash in kept:
        datasetindex.append_to_tail(
            documents, "collector:x", phash, LAYOUT_UNKNOWN, SPLITTING_TAIL, NOON, known
        )
    return known


def _tail_docs(documents: InMemoryDocumentStore) -> dict[str, dict[str, Any]]:
    return {
        doc["_id"]: doc
        for doc in documents.changed_since(Collections.PHASH_BUCKETS, None)
        if "~t" in doc["_id"]
    }


def _tail_entries(documents: InMemoryDocumentStore) -> list[bytes]:
    """Every entry of every tail leaf (a hash once a table when none is doubled)."""
    return sorted(
        doc["hashes"][i : i + 8]
        for doc in _tail_docs(documents).values()
        if doc.get("hashes")
        for i in range(0, len(doc["hashes"]), 8)
    )


def _hashes(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.getrandbits(64):016x}" for _ in range(count)]


def test_a_keep_appended_again_to_a_split_tail_finds_itself_in_its_own_leaves_and_writes_nothing():
    """The append reads and writes the hash's own path: delivered again once the tables split
    (a lookup would probe their siblings too, which never hold it), it writes nothing."""
    documents = InMemoryDocumentStore()
    kept = _hashes(40, seed=8)
    known = _appended(documents, kept)
    assert len(known)  # the tables split
    once = _tail_entries(documents)
    assert once == sorted(int(p, 16).to_bytes(8, "big") for p in kept for _ in range(2))
    _appended(documents, kept)
    assert _tail_entries(documents) == once


class _EveryNode(dict[str, Any]):
    """The whole tail, read: a node never written reads as an empty leaf."""

    def __contains__(self, doc_id: object) -> bool:
        return True

    def __missing__(self, doc_id: str) -> None:
        return None


def test_the_migration_offers_a_hash_to_its_own_leaves_in_a_split_tail():
    """What the migration checks and adds to is one leaf a table, on the hash's own path, where
    the tables split (not a lookup's probes, which would take a copied hash for a new one)."""
    documents = InMemoryDocumentStore()
    _appended(documents, _hashes(40, seed=9))
    nodes = _EveryNode(_tail_docs(documents))
    tail = dedupmigration._Tail("collector:x", SPLITTING_TAIL)
    for phash in _hashes(20, seed=10):
        probed = tailindex.plan("collector:x", phash, nodes, SPLITTING_TAIL).leaves
        own = tail.own_leaves(phash, nodes)
        assert own == tailindex.own_plan("collector:x", phash, nodes, SPLITTING_TAIL).leaves
        assert len(own) == SPLITTING_TAIL.tables < len(probed)

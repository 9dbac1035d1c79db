"""The tiered dataset index (framesift.datasetindex: exact generations and the tail) under the
dedup stage, on SQLite and on the Firestore emulator: a generation is searched exactly, an older
frame through the tail, two instances deciding at once on either side of a generation's edge keep
one frame, a scope switched to tiered decides as before until a window after its migration, and
a corrupt tail leaf fails the decision that reads it. Each decision is delivered twice."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from framesift import datasetindex, dedupindex, dedupmigration, tailindex
from framesift.adapters.gcp.firestore import FirestoreDocumentStore
from framesift.bookkeeping import BucketsRetired, GenerationNode, LegacyChains
from framesift.config import Settings
from framesift.documents import DedupDecision
from framesift.errors import CorruptIndex
from framesift.ports import DocumentStore
from framesift.stages.dedup import Dedup
from framesift.topology import Collections, Topics
from tests.integration.test_dedup_index import assert_exhaustive, decide_at_once
from tests.support.dedupframes import hashes_near_one_another, one_frame_batch, stage
from tests.support.fakes import RecordingPublisher

SETTINGS = Settings()
THRESHOLD = SETTINGS.dedup_threshold
WINDOW = datasetindex.Window(hours=24)
# Noon of a day: far from a generation's edge.
NOON = datetime(2026, 12, 6, 12, tzinfo=UTC)
EDGE = datetime(2026, 12, 7, tzinfo=UTC)


@pytest.fixture
def switching(index_documents: DocumentStore, unique: str) -> DocumentStore:
    """A store of its own (the index's migration states are the store's, not a scope's): the
    test's SQLite file, or the Firestore emulator under a project of its own."""
    if isinstance(index_documents, FirestoreDocumentStore):
        return FirestoreDocumentStore(f"tiered-{unique}")
    return index_documents


@pytest.fixture
def migrated(switching: DocumentStore) -> DocumentStore:
    """A store whose tiered index was migrated long before the tests' clocks: decisions search
    the generations and the tail only."""
    switching.merge(*datasetindex.RETIRED_KEY, BucketsRetired(retired=True).stored())
    state = LegacyChains(in_tail=True, read_until=NOON - timedelta(days=30))
    switching.merge(*datasetindex.LEGACY_KEY, state.stored())
    return switching


def tiered(
    documents: DocumentStore, at: datetime | Callable[[], datetime], **settings: object
) -> Dedup:
    clock = at if callable(at) else (lambda: at)
    return stage(
        documents, RecordingPublisher(), clock, dedup_window_hours=WINDOW.hours, **settings
    )


def decide_twice(dedup: Dedup, video: str, collector: str, phash: str) -> DedupDecision:
    batch = one_frame_batch(video, collector, phash)
    first = dedup.decide(batch.frames[0], batch)
    assert dedup.decide(batch.frames[0], batch) == first  # redelivered: the same decision
    return first


def missed_by_one_table(rng: random.Random) -> tuple[str, str]:
    """Two hashes exactly t bits apart that a one-table tail does not join (its first
    documents are keyed by 17 bits of table 0's order: one of them differs)."""
    g = tailindex.TailGeometry(threshold=THRESHOLD, tables=1)
    while True:
        base = rng.getrandbits(64)
        other = base
        for bit in rng.sample(range(64), THRESHOLD):
            other ^= 1 << bit
        a, b = f"{base:016x}", f"{other:016x}"
        if tailindex.first_reads("s", a, g) != tailindex.first_reads("s", b, g):
            return a, b


def keep_one_of_near_twins(documents: DocumentStore, instances: list[Dedup], unique: str) -> None:
    """Three rounds of two videos' frames t bits apart that a one-table tail misses, each batch
    delivered to every instance at once: one of each pair is kept."""
    collector = f"cam-{unique}"
    rng = random.Random(unique)
    for round_ in range(3):
        a, b = missed_by_one_table(rng)
        twins = [
            one_frame_batch(f"{unique}a{round_}", collector, a),
            one_frame_batch(f"{unique}b{round_}", collector, b),
        ]
        decide_at_once(
            [
                lambda instance=instance, batch=batch: instance.handle_batch(batch)
                for instance in instances
                for batch in twins
            ]
        )
        statuses = sorted(
            (documents.get(Collections.FRAMES, batch.frames[0].frame_id) or {})["dedup_status"]
            for batch in twins
        )
        assert statuses == ["dropped", "kept"], round_


def test_a_generation_is_searched_exactly(migrated, unique):
    """Within one generation, leaves of one hash split deep, and a one-table tail beside: each
    decision is the exhaustive search's."""
    dedup = tiered(migrated, NOON, dedup_leaf_cap=1, dedup_tail_tables=1)
    hashes = hashes_near_one_another(seed=7, count=60)
    videos = {phash: f"{unique}v{index:03d}" for index, phash in enumerate(hashes)}
    decisions = [decide_twice(dedup, videos[phash], f"cam-{unique}", phash) for phash in hashes]
    assert 10 < assert_exhaustive(hashes, decisions, videos) < 50


def test_an_older_frames_near_duplicate_is_found_in_the_tail(migrated, unique):
    """Kept five days ago, then a near duplicate: its generation is gone, the tail finds it."""
    collector = f"cam-{unique}"
    base = random.Random(unique).getrandbits(64)
    kept = decide_twice(tiered(migrated, NOON), f"{unique}a", collector, f"{base:016x}")
    later = tiered(migrated, NOON + timedelta(days=5))
    near = decide_twice(later, f"{unique}b", collector, f"{base ^ 0b1011:016x}")
    assert kept.status == "kept"
    # Its generation's leaves carry when Firestore's TTL policy may delete them.
    (generation,) = WINDOW.generations(NOON)
    chains = datasetindex.geometry(THRESHOLD, SETTINGS.dedup_leaf_cap)
    leaf = dedupindex.node_id(
        datasetindex.generation_scope(f"collector:{collector}", generation),
        dedupindex.own_path(f"{base:016x}", 0, chains.min_depth, chains),
    )
    stored = GenerationNode.model_validate(migrated.get(Collections.PHASH_BUCKETS, leaf))
    assert stored.expire_at == WINDOW.expires(generation) == EDGE + timedelta(days=1)
    assert (near.status, near.scope, near.duplicate_of, near.distance) == (
        "dropped",
        "dataset",
        f"{unique}a_0000000000",
        3,
    )


def test_a_pair_the_tail_misses_is_found_in_its_generation_only(migrated, unique):
    """What the tail's recall means: a near duplicate a one-table tail misses is dropped within
    the generation and kept once the generation is past (labeled twice, never lost)."""
    rng = random.Random(unique)
    collector = f"cam-{unique}"
    for name, start, gap, expected in (
        ("same", NOON, timedelta(hours=1), "dropped"),
        ("later", NOON + timedelta(days=10), timedelta(days=3), "kept"),
    ):
        a, b = missed_by_one_table(rng)
        first = tiered(migrated, start, dedup_tail_tables=1)
        assert decide_twice(first, f"{unique}{name}a", collector, a).status == "kept"
        then = tiered(migrated, start + gap, dedup_tail_tables=1)
        assert decide_twice(then, f"{unique}{name}b", collector, b).status == expected


@pytest.mark.parametrize(
    "clocks",
    [
        (EDGE - timedelta(seconds=60), EDGE + timedelta(seconds=50)),
        (EDGE - timedelta(seconds=115), EDGE + timedelta(seconds=1)),
    ],
    ids=["60-s-before-and-50-after", "115-s-before-and-1-after"],
)
def test_two_instances_at_a_generation_edge_keep_one(migrated, unique, clocks):
    """Two instances whose clocks, less than the grace apart, put them in two generations decide
    two videos' frames t bits apart at once, each batch delivered to both: one is kept. The tail
    has one table and misses the pair: only the generations join them."""
    documents = migrated
    instances = [tiered(documents, clock, dedup_tail_tables=1) for clock in clocks]
    keep_one_of_near_twins(documents, instances, unique)


def test_a_scope_switched_to_tiered_decides_as_before_until_a_window_after_its_migration(
    switching, unique
):
    """Kept before the switch (generation-less chains): its near duplicate is dropped before
    the migration, and until a window after it; then the one-table tail decides (and misses
    this pair: kept)."""
    documents = switching
    collector = f"cam-{unique}"
    rng = random.Random(unique)
    pairs = [missed_by_one_table(rng) for _ in range(3)]
    before = stage(documents, RecordingPublisher(), lambda: NOON, dedup_leaf_cap=1)
    for index, (a, _) in enumerate(pairs):
        assert decide_twice(before, f"{unique}k{index}", collector, a).status == "kept"

    switched = tiered(documents, NOON, dedup_tail_tables=1)
    assert decide_twice(switched, f"{unique}n0", collector, pairs[0][1]).status == "dropped"
    shape = datasetindex.shape(
        SETTINGS.model_copy(update={"dedup_window_hours": WINDOW.hours, "dedup_tail_tables": 1})
    )
    done = dedupmigration.migrate(documents, shape)
    assert done.legacy_read_until is not None
    assert f"collector:{collector}" in done.tail_scopes and done.tail_entries >= len(pairs)
    again = dedupmigration.migrate(documents, shape)
    assert (again.legacy_migrated, again.tail_entries) == (0, 0)  # re-run: nothing to do
    assert again.legacy_read_until == done.legacy_read_until  # and no window of reads more

    within = tiered(documents, done.legacy_read_until - timedelta(minutes=1), dedup_tail_tables=1)
    assert decide_twice(within, f"{unique}n1", collector, pairs[1][1]).status == "dropped"
    after = tiered(documents, done.legacy_read_until + timedelta(minutes=1), dedup_tail_tables=1)
    assert decide_twice(after, f"{unique}n2", collector, pairs[2][1]).status == "kept"
    # The earlier hashes are in the tail: an exact repeat of one is found there.
    repeat = decide_twice(after, f"{unique}n3", collector, pairs[1][0])
    assert (repeat.status, repeat.duplicate_of) == ("dropped", f"{unique}k1_0000000000")


def test_a_corrupt_tail_leaf_fails_the_decision_naming_it(migrated, unique):
    documents = migrated
    collector = f"cam-{unique}"
    base = random.Random(unique).getrandbits(64)
    phash = f"{base:016x}"
    g = tailindex.TailGeometry(threshold=THRESHOLD, tables=SETTINGS.dedup_tail_tables)
    leaf = tailindex.first_reads(f"collector:{collector}", phash, g)[5]
    documents.merge(Collections.PHASH_BUCKETS, leaf, {"hashes": b"1234567", "layouts": b""})
    dedup = tiered(documents, NOON)
    batch = one_frame_batch(f"{unique}a", collector, phash)
    with pytest.raises(CorruptIndex, match=leaf):
        dedup.decide(batch.frames[0], batch)


class StopsBeforeTheAppend:
    """A document store whose instance stops once, when a decision's tail append begins."""

    def __init__(self, documents: DocumentStore) -> None:
        self._documents = documents
        self.stopped = False

    def __getattr__(self, name: str) -> object:
        return getattr(self._documents, name)

    def transact(self, keys, change):
        if not self.stopped and all("~t" in doc_id for _, doc_id in keys):
            self.stopped = True
            raise RuntimeError("the instance stopped")
        return self._documents.transact(keys, change)


def test_a_kept_frame_stopped_before_its_tail_append_is_appended_when_delivered_again(
    migrated, unique
):
    collector = f"cam-{unique}"
    scope = f"collector:{collector}"
    phash = f"{random.Random(unique).getrandbits(64):016x}"
    store = StopsBeforeTheAppend(migrated)
    dedup = tiered(store, NOON)  # type: ignore[arg-type]
    batch = one_frame_batch(f"{unique}a", collector, phash)
    with pytest.raises(RuntimeError, match="stopped"):
        dedup.decide(batch.frames[0], batch)
    tail = datasetindex.shape(SETTINGS.model_copy(update={"dedup_window_hours": WINDOW.hours})).tail
    assert tail is not None

    def in_tail() -> list[bool]:
        read = datasetindex.read_tail(migrated, scope, phash, tail, dedupindex.KnownSplits())
        return [dedupindex.holds(leaf, phash, batch.frames[0].layout) for leaf in read.leaves]

    assert not any(in_tail())  # decided kept, not yet in the tail
    again = decide_twice(dedup, f"{unique}a", collector, phash)
    assert again.status == "kept"
    assert all(in_tail())


def test_an_instance_not_yet_tiered_and_a_tiered_one_keep_one_of_near_twins(switching, unique):
    """A rolling deploy switching to tiered: one instance still searches the generation-less
    chains only, the other is tiered (not migrated yet). Whichever decides first, the other
    drops its near twin (the tail has one table and misses the pair): they share the
    generation-less chains, so deciding at once they conflict on them too."""
    collector = f"cam-{unique}"
    rng = random.Random(unique)
    old = stage(switching, RecordingPublisher(), lambda: NOON)
    new = tiered(switching, NOON, dedup_tail_tables=1)
    for round_, (first, second) in enumerate([(new, old), (old, new), (new, old)]):
        a, b = missed_by_one_table(rng)
        assert decide_twice(first, f"{unique}a{round_}", collector, a).status == "kept"
        near = decide_twice(second, f"{unique}b{round_}", collector, b)
        assert (near.status, near.duplicate_of) == ("dropped", f"{unique}a{round_}_0000000000")


class CorruptsTheAppend:
    """A document store that, once, finds a tail leaf corrupt when a tail append begins."""

    def __init__(self, documents: DocumentStore) -> None:
        self._documents = documents
        self.corrupted: str | None = None

    def __getattr__(self, name: str) -> object:
        return getattr(self._documents, name)

    def transact(self, keys, change):
        if self.corrupted is None and all("~t" in doc_id for _, doc_id in keys):
            self.corrupted = keys[3][1]
            self._documents.merge(Collections.PHASH_BUCKETS, self.corrupted, {"hashes": b"1234"})
        return self._documents.transact(keys, change)


def test_a_kept_frame_its_tail_append_fails_is_dead_lettered_and_appended_on_replay(
    migrated, unique
):
    collector = f"cam-{unique}"
    phash = f"{random.Random(unique).getrandbits(64):016x}"
    store = CorruptsTheAppend(migrated)
    publisher = RecordingPublisher()
    dedup = stage(store, publisher, lambda: NOON, dedup_window_hours=WINDOW.hours)  # type: ignore[arg-type]
    batch = one_frame_batch(f"{unique}a", collector, phash)
    with pytest.raises(CorruptIndex, match="1 of 1 frames not decided"):
        dedup.handle_batch(batch)
    frame = migrated.get(Collections.FRAMES, batch.frames[0].frame_id) or {}
    assert frame["dedup_status"] == "kept"  # the decision stands
    assert (migrated.get(Collections.DEDUP_BATCHES, batch.batch_id) or {})["status"] == "failed"
    assert not publisher.published.get(Topics.FRAMES_KEPT)  # not sent on without the tail

    assert store.corrupted is not None
    migrated.merge(Collections.PHASH_BUCKETS, store.corrupted, {"hashes": b"", "layouts": b""})
    result = dedup.handle_batch(batch)  # the replay, after the repair
    assert result.kept == 1 and publisher.published[Topics.FRAMES_KEPT]
    tail = datasetindex.shape(SETTINGS.model_copy(update={"dedup_window_hours": 24})).tail
    assert tail is not None
    read = datasetindex.read_tail(
        migrated, f"collector:{collector}", phash, tail, dedupindex.KnownSplits()
    )
    assert all(dedupindex.holds(leaf, phash, batch.frames[0].layout) for leaf in read.leaves)

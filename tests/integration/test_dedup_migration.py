"""``framesift migrate-dedup-index`` on SQLite and on the Firestore emulator: a scope indexed by
the earlier release's buckets is decided the same before, during (stopped half-way) and after the
migration, as the buckets alone would decide it; re-running it changes nothing."""

from __future__ import annotations

import random
from typing import Any

import pytest

from framesift import bootstrap, datasetindex, dedupmigration, phashindex
from framesift.bookkeeping import BucketsRetired, PhashBucket, PhashOwner
from framesift.config import Settings
from framesift.datasetindex import RETIRED_KEY
from framesift.documents import DedupDecision
from framesift.embedded import EmbeddedPipeline
from framesift.ports import DocKey, DocumentStore
from framesift.topology import Collections
from tests.support.dedupframes import flipped, one_frame_batch, stage
from tests.support.fakes import RecordingPublisher

SETTINGS = Settings()
THRESHOLD = SETTINGS.dedup_threshold
# Leaves of one hash: the migrated chains split at every entry.
SHAPE = datasetindex.Shape(datasetindex.geometry(THRESHOLD, 1))


def layout(rng: random.Random) -> str:
    return bytes(rng.randrange(256) for _ in range(12)).hex()


class OldIndex:
    """The earlier release's dataset index, as its dedup stage kept it: bucket documents per
    band value (phashindex) and an owner per hash, written to the store and mirrored here to
    know what it would decide."""

    def __init__(self, documents: DocumentStore, scope: str) -> None:
        self.documents = documents
        self.scope = scope
        self.buckets: dict[str, dict[str, Any] | None] = {}

    def decide(self, phash: str, frame_layout: str) -> tuple[str, int] | None:
        ids = phashindex.bucket_ids(self.scope, phash, THRESHOLD)
        match = phashindex.nearest(
            phash,
            (self.buckets.get(i) for i in ids),
            THRESHOLD,
            frame_layout,
            SETTINGS.dedup_layout_threshold,
        )
        return None if match is None else (match.phash, match.distance)

    def keep(self, frame_id: str, phash: str, frame_layout: str) -> None:
        ids = phashindex.bucket_ids(self.scope, phash, THRESHOLD)
        writes = phashindex.added({i: self.buckets.get(i) for i in ids}, phash, frame_layout)
        self.buckets.update(writes)
        stored: dict[DocKey, dict[str, Any]] = {
            (Collections.PHASH_BUCKETS, i): PhashBucket(**data).stored()
            for i, data in writes.items()
        }
        stored[(Collections.PHASH_OWNERS, phashindex.owner_id(self.scope, phash))] = PhashOwner(
            frame_id=frame_id
        ).stored()
        self.documents.transact(list(stored), lambda _: (stored, None))


class Stop(Exception):
    """The migration stopped half-way (a crash, an operator's ^C)."""


def test_a_migrated_scope_decides_as_its_buckets_did(index_documents, unique):
    documents = index_documents
    documents.merge(*RETIRED_KEY, BucketsRetired(retired=False).stored())
    collector = f"cam-{unique}"
    old = OldIndex(documents, f"collector:{collector}")
    rng = random.Random(11)
    stored: list[tuple[str, str]] = []
    owners: dict[str, str] = {}
    for index in range(150):
        phash, frame_layout = f"{rng.getrandbits(64):016x}", layout(rng)
        if old.decide(phash, frame_layout) is None:
            owners[phash] = f"{unique}old{index}_0000000000"
            old.keep(owners[phash], phash, frame_layout)
            stored.append((phash, frame_layout))
    dedup = stage(documents, RecordingPublisher(), dedup_leaf_cap=1)
    decided = 0

    def decide_some(count: int) -> None:
        """New frames near stored ones (same layout: dropped; another: kept) and far from all,
        decided by the stage and by the buckets alone."""
        nonlocal decided
        for _ in range(count):
            source, source_layout = rng.choice(stored)
            phash = flipped(int(source, 16), rng, rng.randint(0, 14))
            frame_layout = source_layout if rng.random() < 0.7 else layout(rng)
            if rng.random() < 0.2:
                phash = f"{rng.getrandbits(64):016x}"
            batch = one_frame_batch(f"{unique}new{decided}", collector, phash)
            frame = batch.frames[0].model_copy(update={"layout": frame_layout})
            decided += 1
            expected = old.decide(phash, frame_layout)
            decision = dedup.decide(frame, batch)
            assert _outcome(decision, owners) == expected, (phash, decided)
            if expected is None:
                owners[phash] = frame.frame_id
                old.keep(frame.frame_id, phash, frame_layout)  # its decision, in the mirror
                stored.append((phash, frame_layout))

    decide_some(40)  # before: the buckets are read beside the (empty) chains
    calls = 0

    def stop_after_some(_: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 10:
            raise Stop

    with pytest.raises(Stop):
        dedupmigration.migrate(documents, SHAPE, stop_after_some)
    assert not (documents.get(*RETIRED_KEY) or {}).get("retired")
    decide_some(40)  # half-way

    first = dedupmigration.migrate(documents, SHAPE)
    assert first.retired and f"collector:{collector}" in first.scopes
    assert 0 < first.migrated < first.buckets  # resumed: the first run's 10 were not redone
    again = dedupmigration.migrate(documents, SHAPE)
    assert (again.migrated, again.entries, again.retired) == (0, 0, True)
    for record in documents.changed_since(Collections.DEDUP_INDEX_STATE, None):
        if record["_id"].startswith("migrated~"):  # as if its record were lost
            documents.merge(Collections.DEDUP_INDEX_STATE, record["_id"], {"entries": -1})
    redone = dedupmigration.migrate(documents, SHAPE)
    assert (redone.migrated, redone.entries) == (redone.buckets, 0)  # found in place
    decide_some(80)  # after: the chains alone


def _outcome(decision: DedupDecision, owners: dict[str, str]) -> tuple[str, int] | None:
    if decision.status == "kept":
        return None
    assert decision.scope == "dataset"
    assert decision.distance is not None
    [phash] = [h for h, frame_id in owners.items() if frame_id == decision.duplicate_of]
    return phash, decision.distance


def test_an_embedded_pipeline_migrates_an_earlier_releases_workdir_before_any_decision(
    embedded_settings,
):
    """A run, the edge's sifter and Beam into a workdir all build an embedded pipeline."""
    old = OldIndex(bootstrap.build_adapters(embedded_settings).documents, "collector:cam")
    old.keep("old_0000000000", KEPT_EARLIER, layout(random.Random(1)))

    pipeline = EmbeddedPipeline(embedded_settings)

    documents = pipeline.adapters.documents

    assert (documents.get(*RETIRED_KEY) or {}).get("retired") is True
    near = one_frame_batch("vnew", "cam", f"{int(KEPT_EARLIER, 16) ^ 0b1011:016x}")
    decision = bootstrap.dedup(pipeline.adapters, embedded_settings).decide(near.frames[0], near)
    assert (decision.status, decision.duplicate_of) == ("dropped", "old_0000000000")
    assert decision.index_reads == 1 + 11 + 1 + 75 + 1  # no bucket of the scope read


KEPT_EARLIER = "5a5a0f0f3c3cc3c3"


def test_a_bucket_an_older_instance_writes_during_the_migration_is_migrated_again(
    index_documents, unique
):
    """An instance of the earlier release still running keeps a frame into a bucket the
    migration has just done: the migration finds it changed and migrates it again before it
    retires the buckets, so the frame's near duplicate is dropped afterwards."""
    documents = index_documents
    documents.merge(*RETIRED_KEY, BucketsRetired(retired=False).stored())
    collector = f"cam-{unique}"
    old = OldIndex(documents, f"collector:{collector}")
    rng = random.Random(3)
    for index in range(20):
        old.keep(f"{unique}old{index}_0000000000", f"{rng.getrandbits(64):016x}", layout(rng))
    straggler: list[str] = []
    migrated: list[str] = []

    def meanwhile(said: str) -> None:
        bucket = said.rpartition(":")[0]
        if not bucket.startswith(old.scope):
            return  # another test's scope (the emulator's store is the session's)
        migrated.append(bucket)
        if not straggler:
            value = int(bucket.rpartition("~b0~")[2], 16)  # the bucket just done
            straggler.append(f"{value << 58 | rng.getrandbits(58):016x}")
            old.keep(f"{unique}late_0000000000", straggler[0], layout(rng))

    done = dedupmigration.migrate(documents, datasetindex.shape(SETTINGS), meanwhile)

    assert done.retired
    assert migrated.count(migrated[0]) == 2  # the straggler's bucket: again, after it changed
    near = one_frame_batch(
        f"{unique}near", collector, f"{int(straggler[0], 16) ^ 0b100000001:016x}"
    )
    decision = stage(documents, RecordingPublisher()).decide(near.frames[0], near)
    assert (decision.status, decision.duplicate_of) == ("dropped", f"{unique}late_0000000000")

"""What a dedup decision records it read and wrote in the indexes: the documents its committed
transaction read and wrote (the frame's own apart), the same however often it is delivered."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from framesift import dedupindex, tailindex
from framesift.bookkeeping import BucketsRetired, LegacyChains
from framesift.datasetindex import LEGACY_KEY, RETIRED_KEY
from framesift.ports import Change, DocKey, T
from framesift.stages.dedup import Dedup
from framesift.topology import Collections
from tests.support.dedupframes import one_frame_batch, stage
from tests.support.fakes import InMemoryDocumentStore, RecordingPublisher

KEPT = "0f3c5a9966e1b27d"
NEAR = "0f3c5a9966e1b27a"  # 2 bits away
FAR = "f0c3a56699e14d82"  # every bit flipped
NOON = datetime(2026, 12, 6, 12, tzinfo=UTC)


class CountingStore(InMemoryDocumentStore):
    """Remembers what the last transaction read (ReadMore rounds included) and wrote."""

    read: int = 0
    written: int = 0

    def transact(self, keys: Sequence[DocKey], change: Change[T]) -> T:
        def counted(docs: dict[DocKey, dict[str, Any] | None]) -> tuple[dict, T]:
            writes, result = change(docs)
            self.read, self.written = len(docs), len(writes)
            return writes, result

        return super().transact(keys, counted)


Store = TypeVar("Store", bound=InMemoryDocumentStore)


def migrated(documents: Store) -> Store:
    """A store whose index was migrated long before NOON: tiered decisions search the
    generations and the tail only."""
    documents.merge(*RETIRED_KEY, BucketsRetired(retired=True).stored())
    documents.merge(*LEGACY_KEY, LegacyChains(in_tail=True, read_until=NOON).stored())
    return documents


def tiered(documents: InMemoryDocumentStore, at: datetime, tables: int) -> Dedup:
    """A dedup stage whose index is tiered (a day's generations, ``tables`` tables), at ``at``."""
    return stage(
        documents, RecordingPublisher(), lambda: at, dedup_window_hours=24, dedup_tail_tables=tables
    )


def test_a_decision_records_the_index_documents_its_transaction_read_and_wrote():
    documents = CountingStore()
    dedup = stage(documents, RecordingPublisher())
    first = one_frame_batch("va", "cam", KEPT)

    kept = dedup.decide(first.frames[0], first)

    # The content hash, the video's 11 buckets, the migration state, the chains' 75 first
    # documents and, not migrated yet, the scope's 11 buckets; a keep writes the content hash,
    # the 11 buckets and the owner of the video, and the scope's owner and 11 leaves.
    assert (kept.index_reads, kept.index_writes) == (1 + 11 + 1 + 75 + 11, 1 + 11 + 1 + 1 + 11)
    assert (kept.index_reads, kept.index_writes) == (documents.read - 1, documents.written - 1)
    documents.merge(*RETIRED_KEY, BucketsRetired(retired=True).stored())
    near = one_frame_batch("vb", "cam", NEAR)
    dropped = dedup.decide(near.frames[0], near)
    # Buckets retired: no scope buckets; a match reads its owner; a drop writes the content hash.
    assert dropped.status == "dropped"
    assert (dropped.index_reads, dropped.index_writes) == (1 + 11 + 1 + 75 + 1, 1)
    stored = documents.get(Collections.FRAMES, near.frames[0].frame_id) or {}
    assert (stored["dedup_index_reads"], stored["dedup_index_writes"]) == (89, 1)
    again = first.model_copy(
        update={
            "frames": [near.frames[0].model_copy(update={"frame_id": "va_1", "sha256": "c" * 64})]
        }
    )
    repeat = dedup.decide(again.frames[0], again)
    # Found within its video: the dataset scope's documents are not read (its owner is).
    assert (repeat.scope, repeat.index_reads, repeat.index_writes) == ("video", 1 + 11 + 1, 1)


def test_a_redelivered_batch_counts_nothing_twice():
    documents = InMemoryDocumentStore()
    dedup = stage(documents, RecordingPublisher())
    batch = one_frame_batch("va", "cam", KEPT)
    dedup.handle_batch(batch)
    before = documents.get(Collections.FRAMES, batch.frames[0].frame_id)

    documents.merge(Collections.DEDUP_BATCHES, batch.batch_id, {"status": "processing"})
    dedup.handle_batch(batch)  # as if it crashed before recording the batch sent

    assert documents.get(Collections.FRAMES, batch.frames[0].frame_id) == before


def test_a_tiered_decision_reads_its_generation_and_the_tail_whatever_the_scope():
    """Tiered, migrated: a keep reads its generation's 75 first chain documents (twice: the first
    attempt finds no near duplicate there and asks for the tail), the tail's own-path leaf of
    each table (twice: before the decision, where no table has split and so nothing is probed,
    and by the append after it), and writes a leaf per
    chain and per table; in the last minutes of a generation, the next one's chains as well. A
    near duplicate found in the generation never reads the tail."""
    documents = migrated(CountingStore())
    tables = 16
    noon = tiered(documents, NOON, tables)
    first = one_frame_batch("va", "cam", KEPT)
    kept = noon.decide(first.frames[0], first)
    # Beside the content hash, the video's 11 buckets and the two migration states.
    assert (kept.index_reads, kept.index_writes) == (
        2 * (1 + 11 + 2 + 75) + 2 * tables,
        1 + 11 + 1 + 1 + 11 + tables,
    )
    assert documents.written == tables  # the last transaction: the tail's append
    near = one_frame_batch("vn", "cam", NEAR)
    dropped = noon.decide(near.frames[0], near)
    assert (dropped.status, dropped.index_reads) == ("dropped", 1 + 11 + 2 + 75 + 1)
    late = tiered(documents, NOON + timedelta(hours=11, minutes=59), tables)
    other = one_frame_batch("vb", "cam", FAR)
    at_the_end = late.decide(other.frames[0], other)
    assert (at_the_end.index_reads, at_the_end.index_writes) == (
        2 * (1 + 11 + 2 + 2 * 75) + 2 * tables,
        1 + 11 + 1 + 1 + 2 * 11 + tables,
    )


class EveryRead(InMemoryDocumentStore):
    """Counts every document read, by transactions (ReadMore rounds and abandoned attempts
    included) and by plain reads."""

    reads: int = 0

    def transact(self, keys: Sequence[DocKey], change: Change[T]) -> T:
        seen = 0

        def counted(docs: dict[DocKey, dict[str, Any] | None]) -> tuple[dict, T]:
            nonlocal seen
            seen = len(docs)
            return change(docs)

        try:
            return super().transact(keys, counted)
        finally:
            self.reads += seen

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        self.reads += len(doc_ids)
        return super().get_many(collection, doc_ids)


def test_a_tiered_keep_records_every_index_document_it_read_a_split_tail_path_included():
    """One table's path through the tail splits below its first node: the keep reads that node
    and the children within one bit of its path before the decision (its own and the probes),
    the append its own leaves alone (the split is known by then); what it records is what it
    read, the frame's own document in its two attempts apart."""
    documents = migrated(EveryRead())
    tables = 4
    tail = tailindex.TailGeometry(tables=tables)
    split = tailindex.path_id("collector:cam", int(KEPT, 16), 0, 0, tail)
    documents.merge(Collections.PHASH_BUCKETS, split, dict(dedupindex.SPLIT_DOC))
    dedup = tiered(documents, NOON, tables)
    batch = one_frame_batch("va", "cam", KEPT)
    before = documents.reads

    kept = dedup.decide(batch.frames[0], batch)

    assert kept.status == "kept"
    assert kept.index_reads == documents.reads - before - 2
    # The window twice (75 first nodes, the content hash, 11 buckets, 2 states), the tail's
    # 4 first nodes and the split one's own child and its probes (one flip of each split bit),
    # and the append's 4 leaves.
    probes = tail.split_bits
    assert kept.index_reads == 2 * (1 + 11 + 2 + 75) + (tables + 1 + probes) + tables

"""Dedup stage: the sampler's frame batches in, a decision on every frame, kept frames out.

Photos uploaded to the raw bucket's images prefix come in too (as the bucket's notification):
each is read, rejected as ``unreadable`` if Pillow cannot decode all of it, and otherwise hashed
here and decided like a one-frame video.

For each frame, in one document-store transaction (see :mod:`framesift.phashindex` for a video's
index, :mod:`framesift.datasetindex` and :mod:`framesift.dedupindex` for a dataset scope's, and
what the transaction guarantees):

1. the frame document: a frame already decided keeps its decision (redelivery changes nothing);
2. exact duplicates: the SHA-256 of the JPEG bytes, across the whole dataset
   (``content_hashes/{sha256}`` names the first kept frame with those bytes);
3. near duplicates within the video: the pHash against every frame kept so far in the same
   video, so a parked car filmed for ten minutes keeps one frame; a frame is a near duplicate
   only of one whose colour layout is close too (a scene of the same layout in another colour
   is new: :mod:`framesift.imagestats`);
4. near duplicates across the dataset: the same against the frames kept in the configured
   scope (the collector, or everything), so the same road driven twice is not labeled twice.

A kept frame's hash goes into both indexes in the same transaction. Every decided frame's content
hash is claimed, kept or dropped, naming the kept frame that stands for those bytes: a frame
dropped as a near duplicate in one collector's video must not be kept when the same bytes come
again under another collector (where its near original is not in the scope). A frame of a segment
that did not decode cleanly (a corrupt copy) goes into its video's index only and claims no
content hash, so it never becomes the original a clean source's frame is dropped against (the
clean copy then keeps its frames; both are labeled, which costs less than losing them).

A frame whose lookup reads a corrupt index document (or a match without its owner) is not
decided: it is recorded ``failed`` with the reason, the batch's other frames go on, and the batch
is dead-lettered (:class:`~framesift.errors.CorruptIndex`) to be replayed after the repair.

The kept frames of a batch go on to the labeler as one message; a batch already sent is not
sent again (``dedup_batches/{batch id}``); after a crash between sending and
recording that, the batch may be sent twice and the labeler's per-frame idempotency absorbs it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from framesift import datasetindex, dedupindex, phashindex, samescene
from framesift.bookkeeping import (
    ContentHash,
    DedupBatch,
    DedupBatchStatus,
    PhashBucket,
    PhashOwner,
)
from framesift.capture import photo_capture
from framesift.config import DedupScope
from framesift.documents import (
    DedupDecision,
    DedupStatus,
    DropReason,
    FrameRecord,
    FrameSource,
    UnreadableFrame,
    create_or_get,
    utcnow,
)
from framesift.errors import CorruptIndex, InvalidName, ReadMore, UnreadableImage
from framesift.events import OBJECT_FINALIZE, GcsNotification, PubSubMessage
from framesift.imagestats import image_stats
from framesift.logs import bind_context, get_logger
from framesift.messages import FrameBatch, KeptFrames, SampledFrame
from framesift.naming import (
    IMAGE_EXTENSIONS,
    collector_refusal,
    is_photo,
    parse_upload_name,
    photo_id,
)
from framesift.parts import MAX_COMMIT_WRITES
from framesift.ports import BlobStore, DocKey, DocumentStore, Publisher
from framesift.stages.uploads import record_ignored
from framesift.topology import DEDUP, Collections, Topics

log = get_logger(__name__)


class BatchOutcome(StrEnum):
    DONE = "done"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


@dataclass(frozen=True)
class BatchResult:
    outcome: BatchOutcome
    kept: int = 0
    dropped_by_reason: Mapping[str, int] = field(default_factory=dict)

    source: str = ""  # a photo's object name (frame batches name their video elsewhere)

    @property
    def dropped(self) -> int:
        return sum(self.dropped_by_reason.values())


@dataclass(frozen=True)
class DedupConfig:
    """The settings dedup reads (each named as in :class:`~framesift.config.Settings`)."""

    raw_bucket: str
    images_prefix: str
    dedup_threshold: int
    dedup_layout_threshold: float
    dedup_scope: DedupScope
    dedup_leaf_cap: int
    dedup_window_hours: int | None
    dedup_tail_tables: int


class Dedup:
    def __init__(
        self,
        blobs: BlobStore,
        documents: DocumentStore,
        publisher: Publisher,
        config: DedupConfig,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._blobs = blobs
        self._documents = documents
        self._publisher = publisher
        self._config = config
        # A tiered dataset index searches the generation of the decision's time.
        self._clock = clock
        self._index = datasetindex.shape(config)
        # The dataset index's split nodes this instance has read: its lookups skip them.
        self._known = dedupindex.KnownSplits()

    def handle_message(self, message: PubSubMessage) -> BatchResult:
        """Either a frame batch from the sampler or a raw bucket notification (for images)."""
        if GcsNotification.is_one(message):
            notification = GcsNotification.from_message(message)
            return replace(self.handle_image(notification), source=notification.object.name)
        return self.handle_batch(FrameBatch.from_message(message))

    def handle_image(self, notification: GcsNotification) -> BatchResult:
        """A photo uploaded to the images prefix: read, hash and decide it like a frame."""
        obj = notification.object
        prefix = self._config.images_prefix
        if notification.event_type != OBJECT_FINALIZE or obj.bucket != self._config.raw_bucket:
            return BatchResult(BatchOutcome.IGNORED)
        if not is_photo(obj.name, prefix):
            return BatchResult(BatchOutcome.IGNORED)  # a video or other upload: the sampler's
        name = parse_upload_name(obj.name, prefix, IMAGE_EXTENSIONS, "an image")
        if isinstance(name, str):
            record_ignored(self._documents, obj, name, DEDUP.name)
            return BatchResult(BatchOutcome.IGNORED)
        image_id = photo_id(obj.bucket, obj.name, obj.generation)
        bind_context(image_id=image_id, object=obj.name)
        data = self._blobs.get(obj.bucket, obj.name)
        sha256 = hashlib.sha256(data).hexdigest()
        source = FrameSource(
            id=image_id,
            source="image",
            video_doc_id=image_id,  # an image is its own one-frame source
            collector=name.collector,
            video_id=name.stem,
            source_generation=obj.generation,
            timestamp_ms=0,
            bucket=obj.bucket,
            object_name=obj.name,
            size_bytes=len(data),
            sha256=sha256,
        ).stored()
        try:
            info = image_stats(data)
        except UnreadableImage as exc:
            decision = DedupDecision(status=DedupStatus.DROPPED, drop_reason=DropReason.UNREADABLE)
            unreadable = UnreadableFrame(**source, error=str(exc))
            created = self._documents.create(
                Collections.FRAMES, image_id, {**unreadable.stored(), **decision.as_fields()}
            )
            log.warning("unreadable image recorded: %s", exc)
            return BatchResult(
                BatchOutcome.DONE if created else BatchOutcome.DUPLICATE,
                dropped_by_reason={DropReason.UNREADABLE.value: 1},
            )
        stats = info.stats
        frame = FrameRecord.model_validate(
            {
                **source,
                "width": info.width,
                "height": info.height,
                "orientation": info.orientation,
                "phash": stats.phash,
                "layout": stats.layout,
                "sharpness": stats.sharpness,
                "brightness": stats.brightness,
                **photo_capture(data).model_dump(),
            }
        )
        self._documents.create(Collections.FRAMES, image_id, frame.stored())
        batch = FrameBatch(
            video_doc_id=image_id,
            collector=frame.collector,
            video_id=frame.video_id,
            segment_index=0,
            batch_index=0,
            batch_count=1,
            frames=[SampledFrame.model_validate({**frame.model_dump(), "frame_id": image_id})],
        )
        return self.handle_batch(batch, within_video=False)  # a photo has no video to search

    def handle_batch(self, batch: FrameBatch, within_video: bool = True) -> BatchResult:
        bind_context(video_doc_id=batch.video_doc_id, batch_id=batch.batch_id)
        if reason := collector_refusal(batch.collector):  # the scope's index ids are built of it
            raise InvalidName(f"frame batch {batch.batch_id}: {reason}")
        documents = self._documents
        record = DedupBatch(
            id=batch.batch_id,
            video_doc_id=batch.video_doc_id,
            status=DedupBatchStatus.PROCESSING,
        )
        created, existing = create_or_get(documents, Collections.DEDUP_BATCHES, record.id, record)
        if not created and existing.get("status") == DedupBatchStatus.SENT:
            log.info("duplicate delivery: batch already decided and sent")
            return BatchResult(BatchOutcome.DUPLICATE)

        decisions = [
            (frame, self._decide_or_fail(frame, batch, within_video)) for frame in batch.frames
        ]
        kept = [frame for frame, decision in decisions if decision.status is DedupStatus.KEPT]
        failed = [decision for _, decision in decisions if decision.status is DedupStatus.FAILED]
        if kept:
            message = KeptFrames(
                batch_id=batch.batch_id,
                collector=batch.collector,
                video_doc_id=batch.video_doc_id,
                video_id=batch.video_id,
                frames=kept,
            )
            self._publisher.publish(
                Topics.FRAMES_KEPT,
                message.model_dump_json().encode(),
                {"batch_id": batch.batch_id, "video_doc_id": batch.video_doc_id},
            )
        status = DedupBatchStatus.FAILED if failed else DedupBatchStatus.SENT
        documents.merge(
            Collections.DEDUP_BATCHES,
            batch.batch_id,
            DedupBatch.fields(
                status=status.value, kept=len(kept), frames=len(decisions), failed=len(failed)
            ),
        )
        if failed:
            # The others are decided and sent on; the batch is dead-lettered for these, and its
            # replay decides them (the decided ones keep their decisions).
            raise CorruptIndex(
                f"{len(failed)} of {len(decisions)} frames not decided: {failed[0].error}"
            )
        log.info(
            "batch decided",
            extra={"fields": {"kept": len(kept), "dropped": len(decisions) - len(kept)}},
        )
        reasons = Counter(
            str(decision.drop_reason)
            for _, decision in decisions
            if decision.status is DedupStatus.DROPPED
        )
        return BatchResult(BatchOutcome.DONE, len(kept), dict(reasons))

    def _dataset_scope(self, collector: str) -> str:
        return "all" if self._config.dedup_scope is DedupScope.ALL else f"collector:{collector}"

    def _decide_or_fail(
        self, frame: SampledFrame, batch: FrameBatch, within_video: bool
    ) -> DedupDecision:
        """The frame's decision, or its failure recorded on it (unless it was decided)."""
        try:
            return self.decide(frame, batch, within_video)
        except CorruptIndex as exc:
            log.error("frame not decided: %s", exc, extra={"fields": {"frame_id": frame.frame_id}})
            failure = DedupDecision(status=DedupStatus.FAILED, error=str(exc))
            key: DocKey = (Collections.FRAMES, frame.frame_id)

            def record(docs: dict[DocKey, dict | None]) -> tuple[dict[DocKey, dict], DedupDecision]:
                earlier = DedupDecision.from_fields(docs[key] or {})
                if earlier is not None and earlier.status is not DedupStatus.FAILED:
                    return {}, earlier  # another instance decided it meanwhile
                return {key: failure.as_fields()}, failure

            decided = self._documents.transact([key], record)
            if decided.status is DedupStatus.KEPT:
                # Kept, but not added to the tail (a corrupt tail document on its path): the
                # batch is not sent on for it and is dead-lettered; its replay after the repair
                # appends it and sends it on (the decision stays).
                return failure
            return decided

    def decide(
        self, frame: SampledFrame, batch: FrameBatch, within_video: bool = True
    ) -> DedupDecision:
        """Decide one frame exactly once, atomically with the indexes it reads and extends."""
        threshold = self._config.dedup_threshold
        video = f"video:{batch.video_doc_id}" if within_video else None
        video_buckets = [
            (Collections.PHASH_BUCKETS, bucket_id)
            for bucket_id in (phashindex.bucket_ids(video, frame.phash, threshold) if video else [])
        ]
        dataset = self._dataset_scope(batch.collector)
        lookup = datasetindex.Lookup(dataset, frame.phash, self._index, self._clock(), self._known)
        # Tiered: the documents an attempt that found it needed the tail read (counted).
        abandoned = 0
        # Named first: it refuses a scope that cannot be part of a document id (InvalidName).
        dataset_owner: DocKey = (
            Collections.PHASH_OWNERS,
            phashindex.owner_id(dataset, frame.phash),
        )
        frame_key: DocKey = (Collections.FRAMES, frame.frame_id)
        content_key: DocKey = (Collections.CONTENT_HASHES, frame.sha256)
        # The dataset scope's documents are read only if the frame gets that far: an exact
        # duplicate or a repeat within its video (most of a still scene's frames) reads and
        # writes none of them (one more read round for the others).
        keys = [frame_key, content_key, *video_buckets]

        def change(
            docs: dict[DocKey, dict | None],
        ) -> tuple[dict[DocKey, dict], DedupDecision]:
            earlier = DedupDecision.from_fields(docs[frame_key] or {})
            if earlier is not None and earlier.status is not DedupStatus.FAILED:
                return {}, earlier
            for key in video_buckets:
                phashindex.check(key[1], docs[key])
            nearest = {
                "video": lambda: phashindex.nearest(
                    frame.phash,
                    (docs[key] for key in video_buckets),
                    threshold,
                    frame.layout,
                    self._config.dedup_layout_threshold,
                ),
                # Across videos a false match drops a scene nobody labels: the tighter
                # colour bound of the second check (framesift.samescene).
                "dataset": lambda: lookup.read(docs).nearest(
                    frame.layout,
                    samescene.dataset_layout_threshold(self._config.dedup_layout_threshold),
                ),
            }
            scopes = {"video": video, "dataset": dataset} if video else {"dataset": dataset}
            try:
                decision = self._judge(frame, docs, content_key, scopes, nearest)
            except datasetindex.TailNotRead as more:
                raise datasetindex.TailNotRead(len(docs) - 1) from more
            writes: dict[DocKey, dict] = {frame_key: decision.as_fields()}
            if docs[content_key] is None and not batch.source_damaged:
                writes[content_key] = ContentHash(
                    frame_id=frame.frame_id,
                    sha256=frame.sha256,
                    kept_frame_id=decision.duplicate_of or frame.frame_id,
                ).stored()
            if decision.status is DedupStatus.KEPT:
                owner = PhashOwner(frame_id=frame.frame_id).stored()
                if video:
                    read = {key[1]: docs[key] for key in video_buckets}
                    for bucket_id, data in phashindex.added(
                        read, frame.phash, frame.layout
                    ).items():
                        writes[(Collections.PHASH_BUCKETS, bucket_id)] = PhashBucket(
                            **data
                        ).stored()
                    writes[(Collections.PHASH_OWNERS, phashindex.owner_id(video, frame.phash))] = (
                        owner
                    )
                # A damaged source's frame is an original within its own video only.
                if not batch.source_damaged:
                    writes[dataset_owner] = owner
                    found = lookup.read(docs)  # read: a kept frame was looked up in every scope
                    writes.update(found.added(frame.layout, MAX_COMMIT_WRITES - len(writes)))
                    # Kept into a generation only while its clock reading is current.
                    lookup.check_current(self._clock())
            # Tiered, a kept hash's tail documents: read before the transaction, and by the
            # append after it (its leaves: it knows their splits by then), and written by it.
            tail_reads = tail_writes = 0
            if lookup.tail is not None and lookup.shape.tail is not None:
                tail_reads = lookup.tail.reads
                if decision.status is DedupStatus.KEPT and not batch.source_damaged:
                    tail_reads += lookup.shape.tail.tables  # the append: its leaf in each
                    tail_writes = lookup.read(docs).tail_writes(frame.layout)
            counted = decision.model_copy(
                update={
                    "index_reads": len(docs) - 1 + abandoned + tail_reads,
                    "index_writes": len(writes) - 1 + tail_writes,
                }
            )
            writes[frame_key] = counted.as_fields()
            return writes, counted

        tail = self._index.tail
        try:
            decided = self._documents.transact(keys, change)
        except datasetindex.TailNotRead as needed:
            if tail is None:
                raise
            # The window holds no near duplicate: the tail, read outside the transaction, and
            # the decision again with it.
            abandoned = needed.reads
            lookup = replace(
                lookup,
                tail=datasetindex.read_tail(
                    self._documents, dataset, frame.phash, tail, self._known
                ),
            )
            decided = self._documents.transact(keys, change)
        if tail is not None and decided.status is DedupStatus.KEPT and not batch.source_damaged:
            # After the decision, in its own transaction; again on every delivery of a kept
            # frame (it writes nothing once the tail holds it).
            datasetindex.append_to_tail(
                self._documents, dataset, frame.phash, frame.layout, tail, lookup.now, self._known
            )
        return decided

    def _judge(
        self,
        frame: SampledFrame,
        docs: dict[DocKey, dict | None],
        content_key: DocKey,
        scopes: dict[str, str],
        nearest: Mapping[str, Callable[[], phashindex.Neighbour | None]],
    ) -> DedupDecision:
        content = docs[content_key] or {}
        if content.get("frame_id") not in (None, frame.frame_id):
            return DedupDecision(
                status=DedupStatus.DROPPED,
                drop_reason=DropReason.EXACT_DUPLICATE,
                # Written before dropped frames claimed their bytes, a claim is a kept frame's.
                duplicate_of=content.get("kept_frame_id") or content["frame_id"],
                distance=0,
            )
        for name, scope in scopes.items():
            match = nearest[name]()
            if match is None:
                continue
            owner_key = (Collections.PHASH_OWNERS, phashindex.owner_id(scope, match.phash))
            if owner_key not in docs:
                raise ReadMore([owner_key])
            owner = (docs[owner_key] or {}).get("frame_id")
            if not isinstance(owner, str) or not owner:
                raise CorruptIndex(
                    f"dedup index: hash {match.phash} is kept in {scope} but {owner_key[1]}"
                    " names no frame"
                )
            return DedupDecision(
                status=DedupStatus.DROPPED,
                drop_reason=DropReason.NEAR_DUPLICATE,
                duplicate_of=owner,
                distance=match.distance,
                scope=name,
            )
        return DedupDecision(status=DedupStatus.KEPT)

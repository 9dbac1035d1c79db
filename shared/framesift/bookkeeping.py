"""The stages' bookkeeping documents: what makes a redelivery do nothing twice (dedup's indexes
and batches, a round's budget, a message's failures) and what a stage keeps between runs (a
vendor's setup, the exporter's watermarks and lease). None of them is exported; the documents
that are, are in :mod:`framesift.documents`, and :data:`MODELS` names each collection's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field

from framesift.documents import (
    AnnotationRecord,
    DeadLetterRecord,
    Document,
    FrameRecord,
    IgnoredUpload,
    SegmentRecord,
    UnreadableFrame,
    VideoRecord,
    utcnow,
)
from framesift.parts import DocumentPart
from framesift.ports import UPDATED_AT
from framesift.topology import Collections


class ContentHash(Document):
    """``content_hashes/{sha256}``: the first frame decided with these JPEG bytes, kept or
    dropped, and the kept frame that stands for them (itself, or the one it repeats)."""

    frame_id: str
    sha256: str
    kept_frame_id: str | None = None  # None: written when only kept frames claimed their bytes


class PhashBucket(Document):
    """``phash_buckets/{scope}~b{band}~{value}``: the packed hashes and colour layouts of the
    kept frames with that band value (:mod:`framesift.phashindex`)."""

    hashes: bytes
    layouts: bytes


class DedupNode(Document):
    """``phash_buckets/{scope}~r{chain}~{path}``: a node of a dataset scope's chain
    (:mod:`framesift.dedupindex`), a leaf's packed hashes and colour layouts as a bucket's, or a
    split node (no entries: they moved to its children). A leaf written by a decision also holds
    its write-rate estimate (writes/s at ``rate_at``, Unix seconds); a leaf written without one
    (the migration, an earlier release) keeps what it had."""

    hashes: bytes
    layouts: bytes
    split: bool
    rate: float | None = None
    rate_at: float | None = None

    def stored(self) -> dict[str, Any]:
        return self.model_dump(exclude={UPDATED_AT}, exclude_none=True)


class GenerationNode(DedupNode):
    """``phash_buckets/{scope}~r{chain}~{path}~g{generation}``: a node of one generation of a
    tiered dataset scope's chains (:mod:`framesift.datasetindex`), deleted by Firestore's TTL
    policy on ``expire_at`` (the infra's) once no decision reads it."""

    expire_at: datetime


# The field Firestore's TTL policy on the index's collection deletes documents by.
EXPIRES = "expire_at"


class BucketsRetired(Document):
    """``dedup_index_state/buckets``: every dataset scope's buckets were migrated into chains
    (:mod:`framesift.dedupmigration`); decisions stop reading them."""

    retired: bool


class LegacyChains(Document):
    """``dedup_index_state/legacy_chains``: a tiered index's tail holds every hash of the
    generation-less chains (:mod:`framesift.dedupmigration`); decisions read those chains until
    ``read_until``, a window after (:mod:`framesift.datasetindex`)."""

    in_tail: bool
    read_until: datetime


class BucketMigrated(Document):
    """``dedup_index_state/migrated~{bucket id}``: a bucket whose entries were added to its
    scope's chains, and how many it held then."""

    bucket: str
    entries: int


class PhashOwner(Document):
    """``phash_owners/{scope}~{phash}``: the kept frame that put the hash into the scope."""

    frame_id: str


class DedupBatchStatus(StrEnum):
    PROCESSING = "processing"
    SENT = "sent"  # its kept frames are on their way to the labeler
    # Its decided frames' kept ones were sent on; ``failed`` frames were not decided (their
    # frames say why): the batch was dead-lettered, and is decided again when replayed.
    FAILED = "failed"


class DedupBatch(Document):
    """``dedup_batches/{batch id}``: a frame batch dedup decided, and whether it sent it on."""

    id: str
    video_doc_id: str
    status: DedupBatchStatus
    # Written when it is sent.
    kept: int | None = None
    frames: int | None = None
    failed: int | None = None

    def stored(self) -> dict[str, Any]:
        return self.model_dump(exclude={UPDATED_AT}, exclude_none=True)


class VendorSetup(Document):
    """``labeling_vendors/{vendor}~{name}``: a vendor's one-time setup (the Label Studio
    project a title names)."""

    project_id: int
    title: str


class ReconcileMark(Document):
    """``labeling_vendors/scale~{project}~reconciled``: when the last reconcile began (ISO)."""

    through: str


class RoundBudget(Document):
    """``labeling_rounds/{round id}``: a labeling round's budget and what it spent."""

    round: str
    budget: int
    spent: int


class DeliveryFailures(Document):
    """``deliveries/{subscriber}~{message id}``: how often a message failed."""

    failures: int


class ExportWatermark(Document):
    """``export_state/{dataset}~{collection}``: the newest ``updated_at`` exported."""

    watermark: datetime
    exported_at: datetime


class ExportLease(Document):
    """``export_state/{dataset}~lease``: the exporter run that holds the dataset, until when."""

    holder: str | None
    expires_at: datetime | None


class ExportReject(Document):
    """``export_rejects/{collection}~{id}``: a document that cannot be a row, and why."""

    collection: str
    doc_id: str
    reason: str


class RejectedCallback(Document):
    """``rejected_callbacks/{vendor}~{sha256 of the body}``: an authenticated callback the store
    refused, which no retry would store (:mod:`framesift.rejected_callbacks`)."""

    LISTS: ClassVar[tuple[str, ...]] = ("body",)

    id: str
    vendor: str
    reason: str  # why it was not stored (the answer's error)
    http_status: int  # what the vendor was answered
    body_sha256: str
    body_bytes: int
    body: list[bytes] = Field(default_factory=list)  # the body as received, in chunks
    parts: list[str] = Field(default_factory=list)  # document_parts holding ``body``
    attempts: int = 1
    received_at: datetime = Field(default_factory=utcnow)
    last_received_at: datetime = Field(default_factory=utcnow)
    replayed_at: datetime | None = None


# Each collection's documents, by model (a frames document gains the fields of
# documents.DedupDecision, FramePrediction and FrameLabeling as the stages decide).
MODELS: Mapping[str, tuple[type[Document], ...]] = {
    Collections.VIDEOS: (VideoRecord,),
    Collections.VIDEO_SEGMENTS: (SegmentRecord,),
    Collections.FRAMES: (FrameRecord, UnreadableFrame),
    Collections.ANNOTATIONS: (AnnotationRecord,),
    Collections.DOCUMENT_PARTS: (DocumentPart,),
    Collections.REJECTED_CALLBACKS: (RejectedCallback,),
    Collections.CONTENT_HASHES: (ContentHash,),
    Collections.PHASH_BUCKETS: (PhashBucket, DedupNode),
    Collections.PHASH_OWNERS: (PhashOwner,),
    Collections.DEDUP_INDEX_STATE: (BucketsRetired, BucketMigrated),
    Collections.DEDUP_BATCHES: (DedupBatch,),
    Collections.LABELING_VENDORS: (VendorSetup, ReconcileMark),
    Collections.LABELING_ROUNDS: (RoundBudget,),
    Collections.DELIVERIES: (DeliveryFailures,),
    Collections.DEAD_LETTERS: (DeadLetterRecord,),
    Collections.IGNORED_UPLOADS: (IgnoredUpload,),
    Collections.EXPORT_STATE: (ExportWatermark, ExportLease),
    Collections.EXPORT_REJECTS: (ExportReject,),
}

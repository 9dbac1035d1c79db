"""The documents the stages store, one model per kind, with every field a stage writes and
each status a document can take. Collection names are in :mod:`framesift.topology`.

- ``videos/{id}``: :class:`VideoRecord`, one per object generation;
- ``video_segments/{id}``: :class:`SegmentRecord`;
- ``frames/{id}``: :class:`FrameRecord` as the sampler (or dedup, for a photo; an
  :class:`UnreadableFrame` for one it cannot decode) writes it, then the fields of
  :class:`DedupDecision` (``dedup_*``), :class:`FramePrediction` (``model_*``) and
  :class:`FrameLabeling` (``labeling_*``) merged in by the later stages;
- ``annotations/{vendor}~{annotation id}``: :class:`AnnotationRecord`, a vendor's annotation
  or (vendor ``model``) a model's pre-label;
- ``dead_letters/{subscriber}~{message id}``: :class:`DeadLetterRecord`;
- ``ignored_uploads/{id}``: :class:`IgnoredUpload`, an upload no stage takes, and why.

The other collections (dedup's indexes and batches, labeling rounds, vendors' setup, delivery
counts, the exporter's state) hold the stages' bookkeeping: :mod:`framesift.bookkeeping`.

Every model is a :class:`Document`: a stage writes one whole (:meth:`Document.stored`, or
:func:`create_or_get` for a document made once) or a few of its fields
(:meth:`Document.fields`), never a free dict; ``updated_at`` is the store's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from framesift.capture import CaptureFields
from framesift.geometry import Box
from framesift.naming import source_id
from framesift.ports import UPDATED_AT
from framesift.provenance import Provenance
from framesift.sampling import DecodeMode, SamplingPolicy

if TYPE_CHECKING:
    from framesift.ports import DocumentStore


def utcnow() -> datetime:
    return datetime.now(UTC)


class Document(BaseModel):
    """A stored document. Its ``updated_at`` is the store's: every adapter stamps every write
    with it (:func:`framesift.ports.stamped`), so the exporter reads what changed since its
    watermark whichever stage wrote; a stage reads it back and never sets it."""

    updated_at: datetime | None = None

    def stored(self) -> dict[str, Any]:
        """The whole document as a stage writes it."""
        return self.model_dump(exclude={UPDATED_AT})

    @classmethod
    def fields(cls, **values: Any) -> dict[str, Any]:
        """A partial update of ``values``, each named as a field of the model (the values are
        written as given). Raises TypeError for another name, ``updated_at`` included."""
        wrong = sorted(values.keys() - (cls.model_fields.keys() - {UPDATED_AT}))
        if wrong:
            raise TypeError(f"{cls.__name__} has no field a stage writes named {wrong}")
        return values


def create_or_get(
    documents: DocumentStore, collection: str, doc_id: str, record: Document
) -> tuple[bool, dict[str, Any]]:
    """Create the document from ``record`` unless it exists (the idempotency of a redelivery):
    ``(True, what was written)`` if this call created it, else ``(False, the document that
    exists)``, for the caller to inspect (one deleted meanwhile reads as empty)."""
    data = record.stored()
    if documents.create(collection, doc_id, data):
        return True, data
    return False, documents.get(collection, doc_id) or {}


class VideoStatus(StrEnum):
    PROCESSING = "processing"
    SAMPLED = "sampled"
    FAILED = "failed"


VIDEO_FINISHED = (VideoStatus.SAMPLED, VideoStatus.FAILED)  # its sampling is over


class VideoRecord(Document, CaptureFields, Provenance):
    """A source video, one document per object generation (a re-upload is a new version),
    with its capture metadata (:class:`~framesift.capture.CaptureFields`) and, sampled at the
    edge, its provenance (:class:`~framesift.provenance.Provenance`)."""

    id: str
    collector: str
    video_id: str
    bucket: str
    object_name: str
    generation: int
    status: VideoStatus
    size_bytes: int = 0
    duration_s: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    policy: SamplingPolicy | None = None
    decode_mode: DecodeMode | None = None  # which frames ffmpeg decoded to sample it
    segments_total: int | None = None
    # Set once a long video's segments are on their topic (a redelivery then does nothing).
    segments_sent: bool = False
    frames_sampled: int = 0
    error: str | None = None
    # Failed because its message was dead-lettered: a replay of that message samples it again.
    dead_lettered: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    # The picture (#30): width and height above are as displayed, after ``rotation``.
    rotation: int | None = None  # degrees clockwise the coded picture is turned for display
    transfer: str | None = None  # the source's colour transfer (ffprobe's), e.g. smpte2084
    primaries: str | None = None  # the source's colour primaries, e.g. bt2020
    interlaced: bool | None = None  # sampled through a deinterlacer
    stream_index: int | None = None  # the video stream sampled (ffprobe's index)
    tone_mapped: bool | None = None  # an HDR source's frames made SDR (None: not HDR)
    tone_map_note: str | None = None  # why an HDR source was not tone-mapped

    @staticmethod
    def make_id(bucket: str, object_name: str, generation: int) -> str:
        return source_id("v", bucket, object_name, generation)


class SegmentStatus(StrEnum):
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class SegmentRecord(Document):
    id: str
    video_doc_id: str
    index: int
    count: int
    status: SegmentStatus
    frames: int = 0
    error: str | None = None
    dead_lettered: bool = False  # as a video's


class FrameSource(Document):
    """Where a frame document's image is, and what it came from."""

    id: str
    source: Literal["video", "image"] = "video"
    video_doc_id: str
    collector: str
    video_id: str
    source_generation: int
    timestamp_ms: int
    bucket: str
    object_name: str
    size_bytes: int
    sha256: str


class UnreadableFrame(FrameSource):
    """A photo Pillow cannot decode: its source, why, and dedup's decision (``dedup_*``, merged
    in as written) that drops it; it has no image statistics."""

    error: str


class FrameRecord(FrameSource, CaptureFields, Provenance):
    """A sampled frame stored as a JPEG in the frames bucket, or a photo uploaded as it is,
    with its capture metadata (a video frame's: its video's, at the frame's time) and its
    video's provenance."""

    width: int | None = None
    height: int | None = None
    phash: str
    sharpness: float
    brightness: float
    layout: str | None = None  # the colour layout (framesift.imagestats)
    created_at: datetime = Field(default_factory=utcnow)
    # The picture (#30): width and height above are as displayed, as the JPEG or photo shows.
    rotation: int | None = None  # a video frame: degrees clockwise its source was turned
    orientation: int | None = None  # a photo: its EXIF Orientation (1-8), applied

    @staticmethod
    def make_id(video_doc_id: str, timestamp_ms: int) -> str:
        return f"{video_doc_id}_{timestamp_ms:010d}"


class DedupStatus(StrEnum):
    KEPT = "kept"
    DROPPED = "dropped"
    # Not decided: an index document it reads is corrupt (``dedup_error`` says which); decided
    # when its batch's dead letter is replayed after the repair.
    FAILED = "failed"


class DropReason(StrEnum):
    EXACT_DUPLICATE = "exact_duplicate"
    NEAR_DUPLICATE = "near_duplicate"
    UNREADABLE = "unreadable"


class DedupDecision(BaseModel):
    """What dedup decided for a frame, recorded on the frame document (``dedup_*`` fields)."""

    status: DedupStatus
    drop_reason: DropReason | None = None
    duplicate_of: str | None = None
    distance: int | None = None
    scope: str | None = None  # "video" or "dataset" for a near duplicate
    error: str | None = None  # why it failed
    # The index documents (all but the frame's own) its transaction read and wrote, as it
    # committed: what the decision cost in Firestore operations.
    index_reads: int | None = None
    index_writes: int | None = None
    decided_at: datetime = Field(default_factory=utcnow)

    def as_fields(self) -> dict[str, Any]:
        return {f"dedup_{key}": value for key, value in self.model_dump().items()}

    @classmethod
    def from_fields(cls, doc: dict[str, Any]) -> DedupDecision | None:
        if not doc.get("dedup_status"):
            return None
        return cls.model_validate(
            {
                key.removeprefix("dedup_"): value
                for key, value in doc.items()
                if key.startswith("dedup_")
            }
        )


class LabelingStatus(StrEnum):
    """A kept frame's ``labeling_status``."""

    REQUESTED = "requested"  # a task exists at the vendor
    QUEUED = "queued"  # waiting for the labeling round that spends the budget
    SELECTED = "selected"  # chosen by a round, its task not recorded yet
    SKIPPED = "skipped"  # left out by the selection policy or the budget
    LABELED = "labeled"  # an annotation (with boxes, or none: a negative) came back
    CANCELLED = "labeling_cancelled"  # skipped by the annotator or cancelled at the vendor
    FAILED = "labeling_failed"  # the vendor could not label it, or the request was given up
    # Its task was deleted at the vendor: its labels are tombstoned, snapshots list it as left out.
    TASK_DELETED = "labeling_task_deleted"


class FrameLabeling(BaseModel):
    """The labeling fields of a frame document (``labeling_*``, ``labeled_at``), merged in by
    the labeler and by stored annotations. Only the fields set are written."""

    model_config = ConfigDict(use_enum_values=True)

    labeling_status: LabelingStatus
    labeling_vendor: str | None = None
    labeling_task_id: str | None = None
    labeling_requested_at: datetime | None = None
    labeling_error: str | None = None
    labeling_skip_reason: str | None = None
    # The selection's view of the frame: higher is labeled first (with a model: its
    # uncertainty), and why it was chosen ("priority" or "audit") in which round.
    labeling_priority: float | None = None
    labeling_selected_as: str | None = None
    labeling_round: str | None = None
    # Each annotation the frame has ({"id", "status"}, deleted ones removed): its status follows
    # from them (framesift.annotations), not from whichever callback came last.
    labeling_annotations: list[dict[str, str]] | None = None
    labeled_at: datetime | None = None

    def as_fields(self) -> dict[str, Any]:
        return self.model_dump(mode="python", exclude_unset=True)


class FramePrediction(BaseModel):
    """The pre-label a frame has (``model_*`` fields, set by the labeler with a model): its
    annotation's id, the model's version, how unsure it is and how many boxes it drew."""

    model_prediction_id: str
    model_version: str
    model_uncertainty: float
    model_boxes: int

    def as_fields(self) -> dict[str, Any]:
        return self.model_dump()


class AnnotationStatus(StrEnum):
    SUBMITTED = "submitted"
    EMPTY = "empty"  # submitted with no box: the frame has nothing of the classes
    CANCELLED = "cancelled"  # skipped by the annotator or cancelled at the vendor
    ERROR = "error"  # the vendor could not label it
    DELETED = "deleted"
    PREDICTED = "predicted"  # a model's pre-label, never a frame's label


# A label's statuses (a negative is one): a frame's label is one of these, and only these are
# matched with its pre-label.
LIVE_STATUSES = (AnnotationStatus.SUBMITTED, AnnotationStatus.EMPTY)


class DeletedBy(StrEnum):
    """The evidence of an annotation's deletion."""

    # The vendor's own word (a deletion webhook): final, the vendor never brings it back.
    VENDOR = "vendor"
    TASK_DELETED = "task_deleted"  # its task was deleted at the vendor (a webhook)
    # Missing from the vendor project's whole state (its export) read at ``deleted_at``: it
    # removes only a version older than that, and a later read showing it restores it.
    ABSENT = "absent_from_export"


class AnnotationSource(StrEnum):
    HUMAN = "human"
    MODEL = "model"


class AnnotationRecord(Document):
    # Its lists that may outgrow a document, stored in parts then (framesift.parts).
    LISTS: ClassVar[tuple[str, ...]] = ("boxes", "model_matches")

    id: str
    frame_id: str | None
    vendor: str
    task_id: str | None
    annotation_id: str
    status: AnnotationStatus
    boxes: list[Box] = Field(default_factory=list)
    image_width: int | None = None
    image_height: int | None = None
    annotator: str | None = None
    # The vendor project its task is in (Label Studio's project id, Scale's project name): a
    # reconcile compares only the annotations of the project it read.
    project: str | None = None
    vendor_created_at: datetime | None = None
    # The vendor's time of this version (a deletion keeps the last version's).
    vendor_updated_at: datetime | None = None
    # When a read of the vendor's whole state (a reconcile) showed this version: a read after
    # a deletion by absence (``deleted_at``) that shows it again restores it.
    observed_at: datetime | None = None
    deleted_by: DeletedBy | None = None
    deleted_at: datetime | None = None  # when the deletion's evidence was given or read
    error: str | None = None
    # Regions no export can hold (an ellipse, a line, a text answer), with what they were: a
    # frame whose label has one is left out of snapshots rather than half-labeled.
    unsupported: list[str] = Field(default_factory=list)
    # The most boxes this annotation ever had: the exporter tombstones the slots it lost.
    box_slots: int = 0
    source: AnnotationSource = AnnotationSource.HUMAN
    # A model's pre-label: the model's version, its class names and how unsure it is.
    model_version: str | None = None
    model_classes: list[str] = Field(default_factory=list)
    uncertainty: float | None = None
    # A human label's agreement with the frame's pre-label (framesift.agreement.Match), and the
    # most matches it ever had (the exporter tombstones the rest).
    model_matches: list[dict[str, Any]] = Field(default_factory=list)
    match_slots: int = 0
    # The document_parts holding its LISTS, in order, when too large for one document
    # (framesift.parts); none: they are here.
    parts: list[str] = Field(default_factory=list)
    received_at: datetime = Field(default_factory=utcnow)

    @staticmethod
    def make_id(vendor: str, annotation_id: str) -> str:
        return f"{vendor}~{annotation_id}"


class IgnoredUpload(Document):
    """An object in the raw bucket that no stage processes (outside the prefixes, not a video
    or photo, a name parsing would change), recorded where an operator looks."""

    id: str
    bucket: str
    object_name: str
    generation: int
    size_bytes: int = 0
    reason: str
    ignored_by: str  # the function that would have taken it
    created_at: datetime = Field(default_factory=utcnow)

    @staticmethod
    def make_id(bucket: str, object_name: str, generation: int) -> str:
        return source_id("u", bucket, object_name, generation)


class DeadLetterRecord(Document):
    """A message a function gave up on, kept for operators and for replay."""

    id: str
    subscriber: str
    topic: str
    message_id: str
    attributes: dict[str, str]
    data: str  # the message's data, base64 as Pub/Sub carries it
    error: str
    permanent: bool
    attempts: int
    replayed_at: datetime | None = None

    @staticmethod
    def make_id(subscriber: str, message_id: str) -> str:
        return f"{subscriber}~{message_id or 'no-id'}"

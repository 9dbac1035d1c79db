"""Vendor callbacks in, one annotation schema out, stored so repeats and reorders do no harm.

The vendors' payloads are modelled as they send them:

- Scale (``POST {webhook_url}/scale``): ``{"task_id", "task": {..., "status", "metadata",
  "unique_id", "completed_at"}, "response": {"annotations": [{"uuid", "label", "left", "top",
  "width", "height", "attributes"}]}}``, boxes in pixels; an errored task has
  ``response.error`` instead, a cancelled one ``task.status == "canceled"``.
- Label Studio (``POST {webhook_url}/labelstudio``): ``{"action", "annotation": {"id",
  "result": [{"id", "value": {"x", "y", "width", "height", "rotation", "rectanglelabels"},
  "original_width", "original_height"}], "completed_by", "created_at", "updated_at",
  "was_cancelled"}, "task": {"id", "data"}, "project"}``, boxes in percent of the image;
  ``ANNOTATIONS_DELETED`` carries ``{"annotations": [{"id"}]}``.

Both become :class:`AnnotationRecord` documents in ``annotations/{vendor}~{annotation id}``
(Scale has one response per task, so its annotation id is the task id). A record replaces the
stored one only if its vendor timestamp is not older, in one transaction with the frame, whose
``labeling_status`` becomes ``labeled``; a deletion is kept as a tombstone (``status:
deleted``) and hides the annotation from an older update that arrives after it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from framesift.errors import PermanentError
from framesift.models import utcnow
from framesift.ports import DocKey, DocumentStore
from framesift.stages.sampler import FRAMES

ANNOTATIONS = "annotations"
_EPOCH = "1970-01-01T00:00:00+00:00"


class UnknownFrame(PermanentError, LookupError):
    """The callback names a frame this deployment never sent."""


class AnnotationStatus(StrEnum):
    SUBMITTED = "submitted"
    EMPTY = "empty"  # submitted with no box: the frame has nothing of the classes
    CANCELLED = "cancelled"  # skipped by the annotator or cancelled at the vendor
    ERROR = "error"  # the vendor could not label it
    DELETED = "deleted"


class Box(BaseModel):
    label: str
    left: float  # pixels
    top: float
    width: float
    height: float
    x: float | None = None  # the same, as fractions 0..1 of the image size (when known)
    y: float | None = None
    w: float | None = None
    h: float | None = None
    rotation: float = 0.0
    region_id: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class AnnotationRecord(BaseModel):
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
    vendor_created_at: datetime | None = None
    vendor_updated_at: datetime | None = None
    error: str | None = None
    received_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @staticmethod
    def make_id(vendor: str, annotation_id: str) -> str:
        return f"{vendor}~{annotation_id}"


# --- Scale --------------------------------------------------------------------------------


class ScaleBox(BaseModel):
    model_config = ConfigDict(extra="ignore")

    uuid: str | None = None
    label: str
    left: float
    top: float
    width: float = Field(ge=0)
    height: float = Field(ge=0)
    attributes: dict[str, Any] = Field(default_factory=dict)


class ScaleResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    annotations: list[ScaleBox] = Field(default_factory=list)
    error: str | None = None


class ScaleTask(BaseModel):
    model_config = ConfigDict(extra="ignore")

    task_id: str
    status: str
    unique_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    completed_at: datetime | None = None
    updated_at: datetime | None = None


class ScaleCallback(BaseModel):
    model_config = ConfigDict(extra="ignore")

    task_id: str
    task: ScaleTask
    response: ScaleResponse | None = None

    def records(self) -> list[AnnotationRecord]:
        task = self.task
        frame_id = task.metadata.get("frame_id") or task.unique_id
        response = self.response or ScaleResponse()
        if response.error or task.status == "error":
            status = AnnotationStatus.ERROR
        elif task.status == "canceled":
            status = AnnotationStatus.CANCELLED
        elif response.annotations:
            status = AnnotationStatus.SUBMITTED
        else:
            status = AnnotationStatus.EMPTY
        return [
            AnnotationRecord(
                id=AnnotationRecord.make_id("scale", self.task_id),
                frame_id=str(frame_id) if frame_id else None,
                vendor="scale",
                task_id=self.task_id,
                annotation_id=self.task_id,
                status=status,
                boxes=[
                    Box(
                        label=box.label,
                        left=box.left,
                        top=box.top,
                        width=box.width,
                        height=box.height,
                        region_id=box.uuid,
                        attributes=box.attributes,
                    )
                    for box in response.annotations
                ],
                vendor_created_at=task.created_at,
                vendor_updated_at=task.updated_at or task.completed_at,
                error=response.error,
            )
        ]


# --- Label Studio -------------------------------------------------------------------------


class LabelStudioValue(BaseModel):
    model_config = ConfigDict(extra="ignore")

    x: float = Field(ge=0, le=100)
    y: float = Field(ge=0, le=100)
    width: float = Field(ge=0, le=100)
    height: float = Field(ge=0, le=100)
    rotation: float = 0.0
    rectanglelabels: list[str] = Field(default_factory=list)


class LabelStudioRegion(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    type: str = "rectanglelabels"
    value: dict[str, Any]
    original_width: int | None = None
    original_height: int | None = None


class LabelStudioAnnotation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    result: list[LabelStudioRegion] = Field(default_factory=list)
    completed_by: int | dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    was_cancelled: bool = False
    task: int | None = None


class LabelStudioTask(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    data: dict[str, Any] = Field(default_factory=dict)


class LabelStudioDeleted(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int


class LabelStudioWebhook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: Literal["ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED"]
    annotation: LabelStudioAnnotation | None = None
    annotations: list[LabelStudioDeleted] = Field(default_factory=list)
    task: LabelStudioTask | None = None

    def records(self) -> list[AnnotationRecord]:
        if self.action == "ANNOTATIONS_DELETED":
            return [
                AnnotationRecord(
                    id=AnnotationRecord.make_id("labelstudio", str(deleted.id)),
                    frame_id=None,  # the payload names only the annotation; kept if stored
                    vendor="labelstudio",
                    task_id=None,
                    annotation_id=str(deleted.id),
                    status=AnnotationStatus.DELETED,
                    vendor_updated_at=utcnow(),
                )
                for deleted in self.annotations
            ]
        if self.annotation is None or self.task is None:
            raise ValueError(f"{self.action} needs 'annotation' and 'task'")
        return [labelstudio_record(self.annotation, self.task)]


def labelstudio_record(
    annotation: LabelStudioAnnotation, task: LabelStudioTask
) -> AnnotationRecord:
    boxes, width, height = [], None, None
    for region in annotation.result:
        if region.type != "rectanglelabels":
            continue
        value = LabelStudioValue.model_validate(region.value)
        width = region.original_width or width
        height = region.original_height or height
        scale_x = (region.original_width or 0) / 100
        scale_y = (region.original_height or 0) / 100
        for label in value.rectanglelabels or [""]:
            boxes.append(
                Box(
                    label=label,
                    left=value.x * scale_x,
                    top=value.y * scale_y,
                    width=value.width * scale_x,
                    height=value.height * scale_y,
                    x=value.x / 100,
                    y=value.y / 100,
                    w=value.width / 100,
                    h=value.height / 100,
                    rotation=value.rotation,
                    region_id=region.id,
                )
            )
    if annotation.was_cancelled:
        status = AnnotationStatus.CANCELLED
    else:
        status = AnnotationStatus.SUBMITTED if boxes else AnnotationStatus.EMPTY
    annotator = annotation.completed_by
    if isinstance(annotator, dict):
        annotator = annotator.get("email") or annotator.get("id")
    frame_id = task.data.get("frame_id")
    return AnnotationRecord(
        id=AnnotationRecord.make_id("labelstudio", str(annotation.id)),
        frame_id=str(frame_id) if frame_id else None,
        vendor="labelstudio",
        task_id=str(task.id),
        annotation_id=str(annotation.id),
        status=status,
        boxes=boxes,
        image_width=width,
        image_height=height,
        annotator=str(annotator) if annotator is not None else None,
        vendor_created_at=annotation.created_at,
        vendor_updated_at=annotation.updated_at or annotation.created_at,
    )


# --- Storage ------------------------------------------------------------------------------

# What an annotation makes of its frame's labeling_status (a deletion leaves it as it was).
_FRAME_STATUS = {
    AnnotationStatus.SUBMITTED: "labeled",
    AnnotationStatus.EMPTY: "labeled",
    AnnotationStatus.CANCELLED: "labeling_cancelled",
    AnnotationStatus.ERROR: "labeling_failed",
}


def store(documents: DocumentStore, record: AnnotationRecord) -> bool:
    """Store ``record`` unless the stored version is newer; True if it was written.

    Raises UnknownFrame for a callback about a frame never sent (a deletion of an annotation
    never stored is recorded as a tombstone, in case its creation arrives later).
    """
    key: DocKey = (ANNOTATIONS, record.id)
    keys = [key] + ([(FRAMES, record.frame_id)] if record.frame_id else [])

    def change(docs: dict[DocKey, dict | None]) -> tuple[dict[DocKey, dict], bool]:
        stored = docs[key]
        frame_id = record.frame_id or (stored or {}).get("frame_id")
        if record.frame_id and docs[(FRAMES, record.frame_id)] is None:
            raise UnknownFrame(f"unknown frame {record.frame_id!r}")
        if stored and _version(stored) >= _version(record.model_dump()):
            return {}, False  # a repeated callback, or an older one arriving late
        data = _with_frame(record, stored, docs.get((FRAMES, frame_id or "")))
        writes: dict[DocKey, dict] = {key: data}
        frame_status = _FRAME_STATUS.get(record.status)
        if data["frame_id"] and frame_status:
            writes[(FRAMES, data["frame_id"])] = {
                "labeling_status": frame_status,
                "labeled_at": record.received_at,
                "updated_at": record.received_at,
            }
        return writes, True

    return documents.transact(keys, change)


def _with_frame(
    record: AnnotationRecord, stored: dict | None, frame: dict | None
) -> dict[str, Any]:
    """The record with what the frame knows: its image size and normalised Scale boxes."""
    data = record.model_dump()
    data["frame_id"] = record.frame_id or (stored or {}).get("frame_id")
    data["task_id"] = record.task_id or (stored or {}).get("task_id")
    width = record.image_width or (frame or {}).get("width")
    height = record.image_height or (frame or {}).get("height")
    data["image_width"], data["image_height"] = width, height
    # The most boxes this annotation ever had: the exporter tombstones the slots it lost.
    data["box_slots"] = max(len(record.boxes), int((stored or {}).get("box_slots") or 0))
    if width and height:
        for box in data["boxes"]:
            if box["x"] is None:
                box["x"], box["w"] = box["left"] / width, box["width"] / width
                box["y"], box["h"] = box["top"] / height, box["height"] / height
    return data


def _version(doc: dict[str, Any]) -> datetime:
    """The vendor's timestamp of a stored or incoming record (stores give datetimes or text)."""
    value = doc.get("vendor_updated_at") or _EPOCH
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

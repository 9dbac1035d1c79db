"""Annotations stored so repeats and reorders do no harm: one rule for every vendor.

Each vendor's module (:mod:`framesift.vendors`) turns its callbacks into
:class:`~framesift.documents.AnnotationRecord` documents in ``annotations/{vendor}~{annotation
id}`` (Scale has one response per task, so its annotation id is the task id). :func:`store`
replaces the stored record only if its vendor timestamp is not older, in one transaction with
the frame, whose ``labeling_status`` follows the annotation's status; a deletion is kept as a
tombstone (``status: deleted``) and hides the annotation from an older update that arrives
after it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from framesift.documents import AnnotationRecord, AnnotationStatus, FrameLabeling, LabelingStatus
from framesift.errors import UnknownFrame
from framesift.ports import DocKey, DocumentStore
from framesift.topology import Collections

ANNOTATIONS = Collections.ANNOTATIONS
FRAMES = Collections.FRAMES
_EPOCH = "1970-01-01T00:00:00+00:00"

# What an annotation makes of its frame's labeling_status (a deletion leaves it as it was).
_FRAME_STATUS = {
    AnnotationStatus.SUBMITTED: LabelingStatus.LABELED,
    AnnotationStatus.EMPTY: LabelingStatus.LABELED,
    AnnotationStatus.CANCELLED: LabelingStatus.CANCELLED,
    AnnotationStatus.ERROR: LabelingStatus.FAILED,
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
            labeling = FrameLabeling(labeling_status=frame_status, labeled_at=record.received_at)
            writes[(FRAMES, data["frame_id"])] = {
                **labeling.as_fields(),
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

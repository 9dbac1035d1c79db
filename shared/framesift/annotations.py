"""Annotations stored so repeats, reorders and bad values do no harm: one rule for every vendor.

Each vendor's module (:mod:`framesift.vendors`) turns its callbacks into
:class:`~framesift.documents.AnnotationRecord` documents in ``annotations/{vendor}~{annotation
id}`` (Scale has one response per task, so its annotation id is the task id). :func:`store`
checks a record against the frame it names and replaces the stored record only if its vendor
timestamp is not older, in one transaction with the frame:

- **whose it is**: the frame must have been sent to this vendor as this task (the task id the
  labeler recorded on the frame), or listed in a manifest (then any vendor's annotation of it
  is taken: the manifest feeds whichever tool a team uses, e.g. its Label Studio import file);
  a callback naming no frame, a frame never sent (dropped by dedup, skipped by the selection
  policy, unknown) or another task is :class:`UnknownFrame`; one for a frame whose task is not
  recorded yet is :class:`NotYetSent` (retryable);
- **values**: each box's class is one of the configured classes, and the box lies inside the
  image (clipped to the edge within ``annotation_edge_tolerance``; a rotated box is checked by
  its corners and kept as drawn); the vendor's payload models refuse NaN and infinities.
  Anything else is :class:`InvalidAnnotation`. Boxes are stored both in fractions of the
  image (what exports use) and in the vendor image's pixels;
- **which label counts**: the frame keeps the status of each of its annotations
  (``labeling_annotations``). It is ``labeled`` while at least one is live (submitted, or
  empty: a negative), whatever arrives after it; else ``labeling_cancelled`` while one is
  skipped, else ``labeling_failed`` while one errored, else (all deleted) ``requested`` again.
  Exports take the frame's newest live annotation as its label (the exporter's
  ``frame_labels`` view); the other annotators' are kept for agreement figures;
- **agreement**: a live label of a frame the model pre-labeled stores its matches with the
  pre-label (:mod:`framesift.agreement`), for the warehouse's model-quality views;
- **which version wins** (:mod:`framesift.annotation_versions`): the newest vendor time; a
  deletion keeps the stored record (annotator, image size, boxes, the vendor's last time, when
  it was first received) with the status ``deleted`` and its evidence (``deleted_by``,
  ``deleted_at``). The vendor's own deletion is final; one by absence from the project's export
  is undone by a later export showing the annotation. A deletion of an annotation never stored
  writes nothing (``framesift reconcile`` brings the store to the vendor's state, should its
  creation arrive late);
- **deleted tasks** (:func:`delete_task`): every annotation stored for the task is tombstoned
  and its frame marked ``labeling_task_deleted``; snapshots list it as left out, and a later
  annotation of that task is refused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from framesift import parts
from framesift.agreement import match
from framesift.annotation_versions import TaskDeleted, supersedes
from framesift.config import Settings, Vendor
from framesift.documents import (
    LIVE_STATUSES,
    AnnotationRecord,
    AnnotationStatus,
    Box,
    DedupStatus,
    FrameLabeling,
    LabelingStatus,
)
from framesift.errors import InvalidAnnotation, NotYetSent, ReadMore, UnknownFrame
from framesift.geometry import Shape, corners, polygon_area
from framesift.parts import split
from framesift.ports import DocKey, DocumentStore
from framesift.topology import Collections

ANNOTATIONS = Collections.ANNOTATIONS
FRAMES = Collections.FRAMES
# What a deletion changes of the stored record: its status and evidence (the vendor's last
# time, vendor_updated_at, stays the stored version's).
_DELETION_FIELDS = ("status", "deleted_by", "deleted_at")

# A frame's status from the annotations it has (deleted ones gone), the first that applies: one
# live annotation (submitted, or empty: a negative) makes it labeled whatever else it has.
_FRAME_STATUS = (
    (AnnotationStatus.SUBMITTED, LabelingStatus.LABELED),
    (AnnotationStatus.EMPTY, LabelingStatus.LABELED),
    (AnnotationStatus.CANCELLED, LabelingStatus.CANCELLED),
    (AnnotationStatus.ERROR, LabelingStatus.FAILED),
)


@dataclass(frozen=True)
class LabelRules:
    """What a stored label may be: one of ``classes``, inside the image within ``tolerance``."""

    classes: frozenset[str]
    tolerance: float

    @classmethod
    def of(cls, settings: Settings) -> LabelRules:
        return cls(frozenset(settings.labeling_classes), settings.annotation_edge_tolerance)


@dataclass
class Stored:
    """What storing a callback's records did."""

    stored: int = 0
    unchanged: int = 0
    unknown_deletions: int = 0


def store_all(
    documents: DocumentStore,
    records: Sequence[AnnotationRecord | TaskDeleted],
    rules: LabelRules,
) -> Stored:
    """Store a callback's records; a refused record raises (the caller answers for all of it).

    Deletions are looked up in one read first: only the annotations stored are tombstoned, so a
    deletion of thousands of ids the store never saw costs one read, not a write each."""
    result = Stored()
    annotations = [r for r in records if isinstance(r, AnnotationRecord)]
    deletions = [r for r in annotations if r.status is AnnotationStatus.DELETED]
    known = documents.get_many(ANNOTATIONS, [r.id for r in deletions]) if deletions else {}
    for task in (r for r in records if isinstance(r, TaskDeleted)):
        result.stored += delete_task(documents, task, rules)
    for record in annotations:
        if record.status is AnnotationStatus.DELETED and known.get(record.id) is None:
            result.unknown_deletions += 1
        elif store(documents, record, rules):
            result.stored += 1
        else:
            result.unchanged += 1
    return result


def store(documents: DocumentStore, record: AnnotationRecord, rules: LabelRules) -> bool:
    """Store ``record`` unless the stored version is as new; True if it was written.

    Raises UnknownFrame, NotYetSent or InvalidAnnotation (see the module's rules)."""
    if record.status is not AnnotationStatus.DELETED and not record.frame_id:
        raise UnknownFrame(f"{record.vendor} task {record.task_id} names no frame")
    key: DocKey = (ANNOTATIONS, record.id)
    keys = [key] + ([(FRAMES, record.frame_id)] if record.frame_id else [])

    def change(docs: dict[DocKey, dict | None]) -> tuple[dict[DocKey, dict], bool]:
        stored = docs[key]
        if record.status is AnnotationStatus.DELETED and stored is None:
            return {}, False
        frame_id = record.frame_id or (stored or {}).get("frame_id")
        frame_key: DocKey = (FRAMES, frame_id or "")
        if frame_id and frame_key not in docs:
            raise ReadMore([frame_key])  # a deletion: its frame is known from the stored record
        frame = docs.get(frame_key)
        if record.frame_id:
            _check_sent(record, frame)
        if stored and not supersedes(record.model_dump(), stored):
            return {}, False  # a repeated callback, or an older one arriving late
        data = _merged(record, stored, frame, rules)
        prediction_id = (frame or {}).get("model_prediction_id")
        if prediction_id and data["status"] in LIVE_STATUSES:
            prediction_key: DocKey = (ANNOTATIONS, str(prediction_id))
            if prediction_key not in docs:
                raise ReadMore([prediction_key])
            _add_matches(data, docs[prediction_key], stored)
        # Too large for one document: in parts, written first (framesift.parts).
        writes = split(key, data, AnnotationRecord.LISTS, stored)
        frame_fields = _frame_fields(frame, data, record.received_at) if frame is not None else {}
        if frame_fields:
            writes[frame_key] = frame_fields
        return writes, True

    return parts.transact(documents, keys, change)


def delete_task(documents: DocumentStore, deletion: TaskDeleted, rules: LabelRules) -> int:
    """Tombstone every annotation stored for the deleted task and mark its frames
    ``labeling_task_deleted``; how many documents were written."""
    vendor, task_id = deletion.vendor, deletion.task_id
    stored = [
        doc
        for doc in documents.where(ANNOTATIONS, "task_id", task_id)
        if doc.get("vendor") == vendor and doc.get("status") != AnnotationStatus.DELETED
    ]
    written = sum(
        store(
            documents,
            AnnotationRecord(
                id=doc["id"],
                frame_id=None,  # kept from the stored record
                vendor=vendor,
                task_id=task_id,
                annotation_id=str(doc.get("annotation_id")),
                status=AnnotationStatus.DELETED,
                deleted_by=deletion.deleted_by,
                deleted_at=deletion.deleted_at,
            ),
            rules,
        )
        for doc in stored
    )
    marked = FrameLabeling(labeling_status=LabelingStatus.TASK_DELETED).as_fields()
    for frame in documents.where(FRAMES, "labeling_task_id", task_id):
        if frame.get("labeling_vendor") == vendor and frame.get("labeling_status") != (
            LabelingStatus.TASK_DELETED
        ):
            documents.merge(FRAMES, frame["id"], marked)
            written += 1
    return written


def _check_sent(record: AnnotationRecord, frame: dict[str, Any] | None) -> None:
    frame_id = record.frame_id
    if frame is None:
        raise UnknownFrame(f"unknown frame {frame_id!r}")
    task_id = frame.get("labeling_task_id")
    if frame.get("labeling_status") == LabelingStatus.TASK_DELETED:
        raise UnknownFrame(f"the {record.vendor} task {task_id!r} of frame {frame_id!r} is deleted")
    if frame.get("labeling_vendor") == Vendor.MANIFEST and task_id:
        return  # listed in a manifest for whichever tool the team labels with: any vendor's
    if frame.get("labeling_vendor") != record.vendor or not task_id:
        if frame.get("dedup_status") == DedupStatus.KEPT and not frame.get("labeling_status"):
            raise NotYetSent(f"frame {frame_id!r} has no task recorded yet")
        why = (
            "dropped by dedup"
            if frame.get("dedup_status") == DedupStatus.DROPPED
            else f"labeling {frame.get('labeling_status') or 'never requested'}"
        )
        raise UnknownFrame(f"frame {frame_id!r} was never sent to {record.vendor} ({why})")
    if record.task_id and record.task_id != str(task_id):
        raise UnknownFrame(
            f"task {record.task_id!r} is not the task framesift created for frame "
            f"{frame_id!r} ({task_id!r})"
        )


def _merged(
    record: AnnotationRecord,
    stored: dict[str, Any] | None,
    frame: dict[str, Any] | None,
    rules: LabelRules,
) -> dict[str, Any]:
    """The document to write: the record checked and with what the frame and the stored
    version know (a deletion keeps everything stored but its status and the vendor's time)."""
    data = record.stored()
    if stored is not None:
        # When the annotation was first received (its row's created_at in the warehouse): a
        # newer version or a deletion keeps it.
        data["received_at"] = stored.get("received_at") or record.received_at
        if record.status is AnnotationStatus.DELETED:
            return {**stored, **{name: data[name] for name in _DELETION_FIELDS}}
    data["frame_id"] = record.frame_id or (stored or {}).get("frame_id")
    data["task_id"] = record.task_id or (stored or {}).get("task_id")
    width = record.image_width or (frame or {}).get("width")
    height = record.image_height or (frame or {}).get("height")
    data["image_width"], data["image_height"] = width, height
    if record.boxes and not (width and height):
        raise InvalidAnnotation("the image's size is unknown, so its boxes cannot be placed")
    data["boxes"] = [
        checked(box, int(width or 0), int(height or 0), rules).model_dump() for box in record.boxes
    ]
    # The most boxes this annotation ever had: the exporter tombstones the slots it lost.
    data["box_slots"] = max(len(record.boxes), int((stored or {}).get("box_slots") or 0))
    data["match_slots"] = int((stored or {}).get("match_slots") or 0)
    return data


def _add_matches(
    data: dict[str, Any], prediction: dict[str, Any] | None, stored: dict[str, Any] | None
) -> None:
    """The label's agreement with the frame's pre-label (framesift.agreement), on ``data``."""
    if prediction is None:
        return
    matches = match(
        [Box.model_validate(box) for box in prediction.get("boxes") or []],
        [Box.model_validate(box) for box in data["boxes"]],
        prediction.get("model_classes") or [],
    )
    data["model_version"] = prediction.get("model_version")
    data["model_matches"] = [m.as_fields() for m in matches]
    data["match_slots"] = max(len(matches), int((stored or {}).get("match_slots") or 0))


def checked(box: Box, width: int, height: int, rules: LabelRules) -> Box:
    """The region as stored: a configured class, inside the image (clipped within the
    tolerance), in fractions of the image and in its pixels. Raises InvalidAnnotation."""
    if box.label not in rules.classes:
        shown = box.label[:40] + ("..." if len(box.label) > 40 else "")
        raise InvalidAnnotation(
            f"label {shown!r} is not one of the configured classes "
            f"({', '.join(sorted(rules.classes))})"
        )
    if box.shape is Shape.MASK:
        if not box.rle:
            raise InvalidAnnotation(f"a {box.label!r} mask has no pixels")
        return box  # its extent is known once decoded, on export
    if box.shape in (Shape.POLYGON, Shape.KEYPOINT):
        return _checked_points(box, width, height, rules.tolerance)
    return _checked_box(box, width, height, rules.tolerance)


def _checked_box(box: Box, width: int, height: int, tol: float) -> Box:
    x = box.x if box.x is not None else (box.left or 0.0) / width
    y = box.y if box.y is not None else (box.top or 0.0) / height
    w = box.w if box.w is not None else (box.width or 0.0) / width
    h = box.h if box.h is not None else (box.height or 0.0) / height
    if not all(math.isfinite(v) for v in (x, y, w, h, box.rotation)):
        raise InvalidAnnotation("a box value is not a finite number")
    if w <= 0 or h <= 0:
        raise InvalidAnnotation(f"a {box.label!r} box has no area ({w:g} x {h:g} of the image)")
    outside = InvalidAnnotation(
        f"a {box.label!r} box reaches past the image's edge by more than {tol:.0%} "
        f"(x={x:.4g}, y={y:.4g}, w={w:.4g}, h={h:.4g} of the image, rotation {box.rotation:g})"
    )
    if box.rotation % 360:
        # Checked by its corners, in pixels (a rotation is an angle in the image's plane).
        points = corners(x * width, y * height, w * width, h * height, box.rotation)
        if any(
            px < -tol * width
            or px > (1 + tol) * width
            or py < -tol * height
            or py > (1 + tol) * height
            for px, py in points
        ):
            raise outside
    elif x < -tol or y < -tol or x + w > 1 + tol or y + h > 1 + tol:
        raise outside
    elif x < 0 or y < 0 or x + w > 1 or y + h > 1:
        right, bottom = min(x + w, 1.0), min(y + h, 1.0)
        x, y = max(x, 0.0), max(y, 0.0)
        w, h = right - x, bottom - y
        return box.model_copy(update=_extent(x, y, w, h, width, height))
    pixels = {} if box.left is not None else _extent(x, y, w, h, width, height)
    return box.model_copy(update={"x": x, "y": y, "w": w, "h": h, **pixels})


def _checked_points(box: Box, width: int, height: int, tol: float) -> Box:
    """A polygon (three vertices or more) or a keypoint (one point), given in pixels."""
    flat = box.points or []
    wanted = "one point" if box.shape is Shape.KEYPOINT else "three vertices or more"
    count = len(flat) // 2
    if len(flat) % 2 or (count != 1 if box.shape is Shape.KEYPOINT else count < 3):
        raise InvalidAnnotation(f"a {box.label!r} {box.shape} needs {wanted}, got {count}")
    xs = [px / width for px in flat[0::2]]
    ys = [py / height for py in flat[1::2]]
    if not all(math.isfinite(v) for v in xs + ys):
        raise InvalidAnnotation(f"a {box.label!r} {box.shape} point is not a finite number")
    if any(v < -tol or v > 1 + tol for v in xs + ys):
        raise InvalidAnnotation(
            f"a {box.label!r} {box.shape} reaches past the image's edge by more than {tol:.0%}"
        )
    xs = [min(max(v, 0.0), 1.0) for v in xs]
    ys = [min(max(v, 0.0), 1.0) for v in ys]
    x, y, w, h = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
    if box.shape is Shape.POLYGON and polygon_area(xs, ys) == 0:
        raise InvalidAnnotation(f"a {box.label!r} polygon has no area")
    points = [value for pair in zip(xs, ys, strict=True) for value in pair]
    return box.model_copy(update={"points": points, **_extent(x, y, w, h, width, height)})


def _extent(x: float, y: float, w: float, h: float, width: int, height: int) -> dict[str, float]:
    """A region's box in fractions of the image and in its pixels."""
    return {
        "x": x,
        "y": y,
        "w": w,
        "h": h,
        "left": x * width,
        "top": y * height,
        "width": w * width,
        "height": h * height,
    }


def _frame_fields(
    frame: dict[str, Any], data: dict[str, Any], received_at: datetime
) -> dict[str, Any]:
    """The frame's labeling fields after this annotation (received at ``received_at``), or
    nothing when they do not change (so callbacks about one frame do not all write it)."""
    before = {a["id"]: a["status"] for a in frame.get("labeling_annotations") or []}
    after = dict(before)
    if data["status"] == AnnotationStatus.DELETED:
        after.pop(data["id"], None)
    else:
        after[data["id"]] = str(data["status"])
    statuses = set(after.values())
    now = next(
        (frame_status for status, frame_status in _FRAME_STATUS if status in statuses),
        LabelingStatus.REQUESTED,
    )
    if frame.get("labeling_status") == LabelingStatus.TASK_DELETED:
        now = LabelingStatus.TASK_DELETED  # no task left to be requested or labeled
    if frame.get("labeling_status") == now and before == after:
        return {}
    labeling = FrameLabeling(
        labeling_status=now,
        labeling_annotations=[{"id": key, "status": after[key]} for key in sorted(after)],
    )
    if now is LabelingStatus.LABELED and frame.get("labeling_status") != now:
        labeling.labeled_at = received_at
    return labeling.as_fields()

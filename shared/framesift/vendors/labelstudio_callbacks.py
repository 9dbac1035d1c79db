"""Label Studio's webhook calls (``POST {webhook_url}/labelstudio``), as stored annotations.

The body: ``{"action", "annotation": {"id", "result": [{"id", "type", "value",
"original_width", "original_height"}], "completed_by", "created_at", "updated_at",
"was_cancelled"}, "task": {"id", "data"}, "project"}``, values in percent of the image:
``rectanglelabels`` (x, y, width, height, rotation), ``polygonlabels`` (points),
``keypointlabels`` (x, y) and ``brushlabels`` (Label Studio's RLE); other regions (ellipses)
are recorded as unsupported, and answers that are not regions (choices, text) are not stored.
``ANNOTATIONS_DELETED`` carries ``{"annotations": [{"id"}]}``, ``TASKS_DELETED`` ``{"tasks":
[{"id"}]}`` (Label Studio's webhook event reference,
https://labelstud.io/guide/webhook_reference; its ``WebhookAction.ACTIONS``). Every call names
its ``project`` (``{"id", "title", ...}``), recorded on each annotation. Label Studio waits 1 s
and never retries a webhook. ``framesift reconcile`` reads the project's export through the same
models.

Each event or state, and what is stored (Label Studio has no unfinished annotation: a draft is
not sent):

=================================  ===============================================
``was_cancelled`` (skipped)        ``cancelled``
a result with regions              ``submitted``
a result without regions           ``empty`` (a negative)
``ANNOTATIONS_DELETED``            ``deleted`` (``deleted_by: vendor``)
``TASKS_DELETED``                  its annotations ``deleted`` (``deleted_by: task_deleted``),
                                   its frame ``labeling_task_deleted``
=================================  ===============================================
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from framesift.annotation_versions import TaskDeleted
from framesift.config import Vendor
from framesift.documents import (
    AnnotationRecord,
    AnnotationStatus,
    Box,
    DeletedBy,
    utcnow,
)
from framesift.geometry import MAX_IMAGE_SIDE, Shape
from framesift.vendors import PAYLOAD
from framesift.vendors.labelstudio_tasks import CONTROLS

NAME = Vendor.LABELSTUDIO.value
SHAPE_OF_RESULT = {result: shape for shape, (_, _, result) in CONTROLS.items()}
# Result types that are regions no export holds (a frame labeled with one is left out of
# snapshots); other results (choices, text, ratings, relations) are answers about the image,
# not objects, and are not stored.
UNSUPPORTED_REGIONS = frozenset(
    {"ellipselabels", "ellipse", "rectangle", "polygon", "keypoint", "brush", "videorectangle"}
)


class LabelStudioValue(BaseModel):
    """A region's value, for every shape: a rectangle's x, y, width, height and rotation, a
    polygon's points, a keypoint's x and y, a brush's RLE; all in percent of the image but the
    RLE. The labels are under the result type's name (``rectanglelabels``, ...)."""

    model_config = PAYLOAD

    x: float | None = None
    y: float | None = None
    width: float | None = None
    height: float | None = None
    rotation: float = 0.0
    points: list[tuple[float, float]] | None = None
    rle: list[int] | None = None
    rectanglelabels: list[str] = Field(default_factory=list)
    polygonlabels: list[str] = Field(default_factory=list)
    keypointlabels: list[str] = Field(default_factory=list)
    brushlabels: list[str] = Field(default_factory=list)


class LabelStudioRegion(BaseModel):
    model_config = PAYLOAD

    id: str | None = None
    type: str = "rectanglelabels"
    value: dict[str, Any]
    original_width: int | None = Field(default=None, gt=0, le=MAX_IMAGE_SIDE)
    original_height: int | None = Field(default=None, gt=0, le=MAX_IMAGE_SIDE)


class LabelStudioAnnotation(BaseModel):
    model_config = PAYLOAD

    id: int
    result: list[LabelStudioRegion] = Field(default_factory=list)
    completed_by: int | dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    was_cancelled: bool = False
    task: int | None = None


class LabelStudioTask(BaseModel):
    model_config = PAYLOAD

    id: int
    data: dict[str, Any] = Field(default_factory=dict)
    project: int | None = None  # in the export's tasks


class LabelStudioId(BaseModel):
    """An object named by its id alone: a deleted annotation or task, the call's project."""

    model_config = PAYLOAD

    id: int


class LabelStudioWebhook(BaseModel):
    model_config = PAYLOAD

    action: Literal[
        "ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED", "TASKS_DELETED"
    ]
    annotation: LabelStudioAnnotation | None = None
    annotations: list[LabelStudioId] = Field(default_factory=list)
    tasks: list[LabelStudioId] = Field(default_factory=list)
    task: LabelStudioTask | None = None
    project: LabelStudioId | None = None

    def records(self) -> list[AnnotationRecord | TaskDeleted]:
        received = utcnow()  # Label Studio posts as it deletes, and never again
        if self.action == "TASKS_DELETED":
            return [
                TaskDeleted(
                    vendor=NAME,
                    task_id=str(task.id),
                    deleted_by=DeletedBy.TASK_DELETED,
                    deleted_at=received,
                )
                for task in self.tasks
            ]
        if self.action == "ANNOTATIONS_DELETED":
            return [
                AnnotationRecord(
                    id=AnnotationRecord.make_id(NAME, str(deleted.id)),
                    frame_id=None,  # the payload names only the annotation; kept if stored
                    vendor=NAME,
                    task_id=None,
                    annotation_id=str(deleted.id),
                    status=AnnotationStatus.DELETED,
                    deleted_by=DeletedBy.VENDOR,
                    deleted_at=received,
                )
                for deleted in self.annotations
            ]
        if self.annotation is None or self.task is None:
            raise ValueError(f"{self.action} needs 'annotation' and 'task'")
        project = self.project.id if self.project else None
        return [labelstudio_record(self.annotation, self.task, project)]


def labelstudio_record(
    annotation: LabelStudioAnnotation,
    task: LabelStudioTask,
    project: int | None = None,
    observed_at: datetime | None = None,
) -> AnnotationRecord:
    """The stored record of an annotation of ``task`` in ``project`` (else the task's own),
    shown by a read of the project's whole state at ``observed_at`` (a reconcile's export)."""
    boxes: list[Box] = []
    unsupported: list[str] = []
    width = height = None
    for region in annotation.result:
        shape = SHAPE_OF_RESULT.get(region.type)
        if shape is None:
            if region.type in UNSUPPORTED_REGIONS:
                unsupported.append(f"{region.type} {region.id}")
            continue
        value = LabelStudioValue.model_validate(region.value)
        width = region.original_width or width
        height = region.original_height or height
        for label in getattr(value, region.type) or [""]:
            boxes.append(_region(shape, label, value, region))
    if annotation.was_cancelled:
        status = AnnotationStatus.CANCELLED
    else:
        status = AnnotationStatus.SUBMITTED if boxes or unsupported else AnnotationStatus.EMPTY
    annotator = annotation.completed_by
    if isinstance(annotator, dict):
        annotator = annotator.get("email") or annotator.get("id")
    frame_id = task.data.get("frame_id")
    in_project = project if project is not None else task.project
    return AnnotationRecord(
        id=AnnotationRecord.make_id(NAME, str(annotation.id)),
        frame_id=str(frame_id) if frame_id else None,
        vendor=NAME,
        task_id=str(task.id),
        annotation_id=str(annotation.id),
        project=str(in_project) if in_project is not None else None,
        observed_at=observed_at,
        status=status,
        boxes=boxes,
        image_width=width,
        image_height=height,
        annotator=str(annotator) if annotator is not None else None,
        vendor_created_at=annotation.created_at,
        vendor_updated_at=annotation.updated_at or annotation.created_at,
        unsupported=unsupported,
    )


def _region(shape: Shape, label: str, value: LabelStudioValue, region: LabelStudioRegion) -> Box:
    """One labeled region: percent values as fractions, and in pixels when the image's size is
    given (points always in pixels, as the store checks them against the image's size)."""
    known = region.original_width is not None and region.original_height is not None
    px_x = (region.original_width or 0) / 100
    px_y = (region.original_height or 0) / 100
    if shape is Shape.MASK:
        return Box(label=label, shape=shape, rle=value.rle, region_id=region.id)
    if shape is Shape.POLYGON or shape is Shape.KEYPOINT:
        if not known:
            raise ValueError(f"{region.type} {region.id} has no original_width/original_height")
        pairs = value.points if shape is Shape.POLYGON else [(value.x or 0.0, value.y or 0.0)]
        points = [c for x, y in pairs or [] for c in (x * px_x, y * px_y)]
        return Box(label=label, shape=shape, points=points, region_id=region.id)
    if value.x is None or value.y is None or value.width is None or value.height is None:
        raise ValueError(f"{region.type} {region.id} needs x, y, width and height")
    box = Box(
        label=label,
        x=value.x / 100,
        y=value.y / 100,
        w=value.width / 100,
        h=value.height / 100,
        rotation=value.rotation,
        region_id=region.id,
    )
    if not known:
        return box  # placed on the frame's own size when stored
    return box.model_copy(
        update={
            "left": value.x * px_x,
            "top": value.y * px_y,
            "width": value.width * px_x,
            "height": value.height * px_y,
        }
    )

"""Scale AI, both ways: tasks out through its official client (``scaleapi``), callbacks in.

Out: one image-annotation task per frame. ``unique_id`` is the frame id, so Scale itself refuses
a second task for a frame: a 409 on create is success, and the existing task is looked up
(``GET /v1/tasks?unique_id=``). The client retries 408/429/5xx by itself (three times,
honouring Retry-After) but only over https; whatever reaches us is sorted here: 408/429/5xx and
connection failures are :class:`VendorUnavailable` (the labeler backs off and retries, then
Pub/Sub redelivers), and 401/402/400/404 are a :class:`VendorRejected` that no retry can fix.
The API key is never logged: the client sends it as basic auth and its errors carry only
Scale's message. The client is imported when the vendor is built, so a function that only
receives callbacks never loads it.

In (``POST {webhook_url}/scale``, authenticated by the header the vendor registry names,
:data:`framesift.vendors.registry.SCALE_CALLBACK`):
``{"task_id", "task": {..., "status", "metadata", "unique_id", "completed_at"}, "response":
{"annotations": [{"uuid", "type", "label", "attributes", ...}]}}`` in pixels: a ``box`` has
``left``, ``top``, ``width``, ``height``, a ``polygon`` its ``vertices`` ``[{"x", "y"}]``, a
``point`` ``x`` and ``y``; lines, ellipses and cuboids are recorded as unsupported. An errored
task has ``response.error`` instead, a cancelled one ``task.status == "canceled"``. Each task
status maps to what is stored through :data:`STATUSES` (Scale's task statuses,
https://scale.com/docs/api-reference/tasks): an unfinished task (``pending``, or a status this
table does not know) stores nothing, so it is never exported as a negative. The task's
``project`` is recorded on its annotation. The task's
``geometries`` ask for the configured shapes (``FRAMESIFT_LABELING_SHAPES``). A pre-labeled
frame's boxes go as the task's ``hypothesis`` (``{"annotations": [...]}`` in a response's
shape), which Scale's annotators start from.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, SecretStr

from framesift.config import Vendor
from framesift.documents import AnnotationRecord, AnnotationStatus, Box
from framesift.errors import VendorRejected, VendorUnavailable
from framesift.geometry import Shape
from framesift.ports import LabelingRequest, LabelingTask
from framesift.vendors import PAYLOAD
from framesift.vendors.registry import SCALE

if TYPE_CHECKING:
    from scaleapi.exceptions import ScaleException

NAME = Vendor.SCALE.value
_RETRYABLE = {408, 429}
# Scale's task status: what its annotation is stored as (None: unfinished, nothing is stored).
# A completed task with no annotation is empty (a negative); a response's error is an error
# whatever the status. docs/architecture.md ("Vendor statuses") copies this table.
STATUSES: Mapping[str, AnnotationStatus | None] = {
    "pending": None,
    "completed": AnnotationStatus.SUBMITTED,
    "canceled": AnnotationStatus.CANCELLED,
    "error": AnnotationStatus.ERROR,
}
# The task statuses whose callback carries a result.
FINISHED = frozenset(status for status, stored in STATUSES.items() if stored is not None)


def _retryable(code: int | None) -> bool:
    return code is None or code in _RETRYABLE or code >= 500


@dataclass(frozen=True)
class ScaleConfig:
    """The settings Scale's adapter reads (each named as in :class:`~framesift.config.Settings`)."""

    scale_api_key: SecretStr | None
    scale_api_url: str | None
    scale_project: str
    scale_instruction: str
    scale_min_width: int
    scale_min_height: int
    labeling_classes: Sequence[str]
    labeling_shapes: Sequence[Shape]
    webhook_url: str | None


def geometries(config: ScaleConfig) -> dict[str, dict[str, Any]]:
    """The task's ``geometries``: the configured classes in each configured shape Scale has
    (it has no masks)."""
    classes = list(config.labeling_classes)
    wanted: dict[str, dict[str, Any]] = {}
    if Shape.BOX in config.labeling_shapes:
        wanted["box"] = {
            "objects_to_annotate": classes,
            "min_width": config.scale_min_width,
            "min_height": config.scale_min_height,
        }
    if Shape.POLYGON in config.labeling_shapes:
        wanted["polygon"] = {"objects_to_annotate": classes}
    if Shape.KEYPOINT in config.labeling_shapes:
        wanted["point"] = {"objects_to_annotate": classes}
    if not wanted:
        raise VendorRejected("Scale needs box, polygon or keypoint in FRAMESIFT_LABELING_SHAPES")
    return wanted


def hypothesis(frame: LabelingRequest) -> dict[str, Any]:
    """A frame's pre-label as the task's ``hypothesis``: annotations in the shape of a
    response's, boxes in pixels, which annotators start from and correct."""
    return {
        "annotations": [
            {
                "type": "box",
                "label": box.label,
                "left": box.left,
                "top": box.top,
                "width": box.width,
                "height": box.height,
            }
            for box in frame.prelabels
        ]
    }


class ScaleVendor:
    name = NAME

    def __init__(self, config: ScaleConfig) -> None:
        from scaleapi import ScaleClient

        if config.scale_api_key is None:
            raise VendorRejected("FRAMESIFT_SCALE_API_KEY is not set")
        self._config = config
        self._client = ScaleClient(
            config.scale_api_key.get_secret_value(),
            source="framesift",
            api_instance_url=config.scale_api_url,
        )

    def request(self, batch_id: str, frames: Sequence[LabelingRequest]) -> list[LabelingTask]:
        return [self._create(frame) for frame in frames]

    def _create(self, frame: LabelingRequest) -> LabelingTask:
        from scaleapi.exceptions import ScaleDuplicateResource, ScaleException
        from scaleapi.tasks import TaskType

        config = self._config
        callback = SCALE.callback_url(config.webhook_url) if config.webhook_url else None
        wanted = geometries(config)
        try:
            task = self._client.create_task(
                TaskType.ImageAnnotation,
                project=config.scale_project,
                instruction=config.scale_instruction,
                attachment=frame.image_url,
                attachment_type="image",
                geometries=wanted,
                unique_id=frame.frame_id,
                metadata=dict(frame.metadata),
                **({"callback_url": callback} if callback else {}),
                **(
                    {"hypothesis": hypothesis(frame)}
                    if frame.model_version and "box" in wanted
                    else {}
                ),
            )
            return LabelingTask(frame.frame_id, str(task.id))
        except ScaleDuplicateResource:
            return self._existing(frame.frame_id)
        except ScaleException as exc:
            raise self._error(exc, "create a task") from exc

    def _existing(self, frame_id: str) -> LabelingTask:
        from scaleapi.exceptions import ScaleException

        try:
            found = self._client.tasks(unique_id=frame_id).docs
        except ScaleException as exc:
            raise self._error(exc, "look up a task by unique_id") from exc
        if not found:
            raise VendorUnavailable(f"Scale reported a duplicate of {frame_id} but has no task")
        return LabelingTask(frame_id, str(found[0].id))

    def finished_tasks(self, updated_after: datetime | None) -> Iterator[dict[str, Any]]:
        """The project's completed, cancelled and errored tasks, with their responses, updated
        after ``updated_after`` (all of them when None): ``GET /v1/tasks`` page by page."""
        from scaleapi.exceptions import ScaleException

        if not self._config.scale_project:
            raise VendorRejected("FRAMESIFT_SCALE_PROJECT is needed to list Scale's tasks")
        tasks = self._client.get_tasks(
            project_name=self._config.scale_project,
            updated_after=updated_after.isoformat() if updated_after else None,
        )
        try:
            for task in tasks:
                body: dict[str, Any] = task.as_dict()
                if body.get("status") in FINISHED:
                    yield body
        except ScaleException as exc:
            raise self._error(exc, "list tasks") from exc

    @staticmethod
    def _error(exc: ScaleException, doing: str) -> Exception:
        message = f"Scale could not {doing}: {exc}"
        return VendorUnavailable(message) if _retryable(exc.code) else VendorRejected(message)


# --- Callbacks ----------------------------------------------------------------------------


class ScaleVertex(BaseModel):
    model_config = PAYLOAD

    x: float
    y: float


class ScaleBox(BaseModel):
    """One annotation of a response, in pixels: a ``box`` (left, top, width, height), a
    ``polygon`` (vertices) or a ``point`` (x, y); lines, ellipses and cuboids are recorded as
    unsupported."""

    model_config = PAYLOAD

    uuid: str | None = None
    type: str = "box"
    label: str
    left: float | None = None
    top: float | None = None
    width: float | None = None
    height: float | None = None
    vertices: list[ScaleVertex] | None = None
    x: float | None = None
    y: float | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    def region(self) -> Box | None:
        """The stored region, or None for a geometry framesift does not export."""
        common: dict[str, Any] = {
            "label": self.label,
            "region_id": self.uuid,
            "attributes": self.attributes,
        }
        if self.type == "box":
            if None in (self.left, self.top, self.width, self.height):
                raise ValueError(f"box {self.uuid} needs left, top, width and height")
            return Box(left=self.left, top=self.top, width=self.width, height=self.height, **common)
        if self.type == "polygon":
            points = [c for v in self.vertices or [] for c in (v.x, v.y)]
            return Box(shape=Shape.POLYGON, points=points, **common)
        if self.type == "point":
            if self.x is None or self.y is None:
                raise ValueError(f"point {self.uuid} needs x and y")
            return Box(shape=Shape.KEYPOINT, points=[self.x, self.y], **common)
        return None


class ScaleResponse(BaseModel):
    model_config = PAYLOAD

    annotations: list[ScaleBox] = Field(default_factory=list)
    error: str | None = None


class ScaleTask(BaseModel):
    model_config = PAYLOAD

    task_id: str
    status: str
    project: str | None = None
    unique_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    completed_at: datetime | None = None
    updated_at: datetime | None = None


class ScaleCallback(BaseModel):
    model_config = PAYLOAD

    task_id: str
    task: ScaleTask
    response: ScaleResponse | None = None

    def records(self) -> list[AnnotationRecord]:
        """The task's annotation, or none while it is unfinished (see :data:`STATUSES`)."""
        task = self.task
        frame_id = task.metadata.get("frame_id") or task.unique_id
        response = self.response or ScaleResponse()
        status = AnnotationStatus.ERROR if response.error else STATUSES.get(task.status)
        if status is None:
            return []
        if status is AnnotationStatus.SUBMITTED and not response.annotations:
            status = AnnotationStatus.EMPTY
        regions = [(annotation, annotation.region()) for annotation in response.annotations]
        return [
            AnnotationRecord(
                id=AnnotationRecord.make_id(NAME, self.task_id),
                frame_id=str(frame_id) if frame_id else None,
                vendor=NAME,
                task_id=self.task_id,
                annotation_id=self.task_id,
                project=task.project,
                status=status,
                boxes=[region for _, region in regions if region is not None],
                unsupported=[f"{a.type} {a.uuid}" for a, region in regions if region is None],
                vendor_created_at=task.created_at,
                vendor_updated_at=task.updated_at or task.completed_at,
                error=response.error,
            )
        ]

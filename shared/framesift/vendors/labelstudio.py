"""Label Studio, both ways: tasks out through its official SDK (``label-studio-sdk`` 2.x),
webhooks in.

Out, once per deployment (remembered in ``labeling_vendors/labelstudio~{project}``):

- the project, with a bounding-box labeling config built from the configured classes, found by
  title or created; two instances creating it at once converge on the first one recorded and
  delete their own;
- the webhook to ``{webhook_url}/labelstudio`` for ANNOTATION_CREATED, ANNOTATION_UPDATED and
  ANNOTATIONS_DELETED, carrying the shared secret in the :data:`SECRET_HEADER` header.

Tasks are imported in one request per chunk, with the frame id in the task data. Before
importing, the chunk's frame ids are looked up in the project (a Data Manager filter on
``data.frame_id``), so a crash between importing and recording the task ids never yields a
second task for a frame. The SDK is imported when the vendor is built, so a function that only
receives webhooks never loads it.

In (``POST {webhook_url}/labelstudio``): ``{"action", "annotation": {"id", "result": [{"id",
"type", "value", "original_width", "original_height"}], "completed_by", "created_at",
"updated_at", "was_cancelled"}, "task": {"id", "data"}, "project"}``, values in percent of the
image: ``rectanglelabels`` (x, y, width, height, rotation), ``polygonlabels`` (points),
``keypointlabels`` (x, y) and ``brushlabels`` (Label Studio's RLE); other regions (ellipses)
are recorded as unsupported, and answers that are not regions (choices, text) are not stored.
``ANNOTATIONS_DELETED`` carries ``{"annotations": [{"id"}]}``. Label Studio waits 1 s and never
retries a webhook. The project's labeling config has one control per configured shape
(``FRAMESIFT_LABELING_SHAPES``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast
from xml.sax.saxutils import quoteattr

from pydantic import BaseModel, Field

from framesift.config import Settings, Vendor
from framesift.documents import AnnotationRecord, AnnotationStatus, Box, utcnow
from framesift.errors import VendorRejected, VendorUnavailable
from framesift.geometry import MAX_IMAGE_SIDE, Shape
from framesift.ports import DocumentStore, LabelingRequest, LabelingTask
from framesift.topology import Collections
from framesift.vendors import PAYLOAD

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

NAME = Vendor.LABELSTUDIO.value
# The header carrying the webhook secret (its name, not the secret).
SECRET_HEADER = "X-Framesift-Secret"  # noqa: S105
WEBHOOK_ACTIONS = ["ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED"]
R = TypeVar("R")


# The control tag of each shape in the project's labeling config, and the result type and
# value key Label Studio gives its regions.
CONTROLS = {
    Shape.BOX: ("RectangleLabels", "label", "rectanglelabels"),
    Shape.POLYGON: ("PolygonLabels", "polygon", "polygonlabels"),
    Shape.KEYPOINT: ("KeyPointLabels", "keypoint", "keypointlabels"),
    Shape.MASK: ("BrushLabels", "brush", "brushlabels"),
}
SHAPE_OF_RESULT = {result: shape for shape, (_, _, result) in CONTROLS.items()}
# Result types that are regions no export holds (a frame labeled with one is left out of
# snapshots); other results (choices, text, ratings, relations) are answers about the image,
# not objects, and are not stored.
UNSUPPORTED_REGIONS = frozenset(
    {"ellipselabels", "ellipse", "rectangle", "polygon", "keypoint", "brush", "videorectangle"}
)


def label_config(classes: Sequence[str], shapes: Sequence[Shape] = (Shape.BOX,)) -> str:
    # model_index orders keypoints in Label Studio's own COCO export, which refuses without it.
    labels = "".join(
        f'<Label value={quoteattr(name)} model_index="{index}"/>'
        for index, name in enumerate(classes)
    )
    controls = "".join(
        f'<{tag} name="{name}" toName="image">{labels}</{tag}>'
        for tag, name, _ in (CONTROLS[shape] for shape in shapes)
    )
    return f'<View><Image name="image" value="$image"/>{controls}</View>'


class LabelStudioVendor:
    name = NAME

    def __init__(self, settings: Settings, documents: DocumentStore) -> None:
        from label_studio_sdk import LabelStudio

        if settings.labelstudio_api_key is None:
            raise VendorRejected("FRAMESIFT_LABELSTUDIO_API_KEY is not set")
        self._settings = settings
        self._documents = documents
        self._client = LabelStudio(
            base_url=settings.labelstudio_url,
            api_key=settings.labelstudio_api_key.get_secret_value(),
            timeout=30,
        )
        self._project_id: int | None = None
        self._model_version: str | None = None  # the project's, as last set or seen

    @property
    def client(self) -> LabelStudio:
        return self._client

    def project_id(self) -> int:
        """The project's id, setting the project and its webhook up on first use."""
        if self._project_id is None:
            self._project_id = _call("set up the project", self._ensure_project)
            _call("register the webhook", lambda: self._ensure_webhook(self._project_id or 0))
        return self._project_id

    def request(self, batch_id: str, frames: Sequence[LabelingRequest]) -> list[LabelingTask]:
        project = self.project_id()
        existing = _call("look tasks up", lambda: self.tasks_by_frame(project, frames))
        missing = [frame for frame in frames if frame.frame_id not in existing]
        if missing:
            response = _call(
                "import tasks",
                lambda: self._client.projects.import_tasks(
                    id=project,
                    request=[cast(Any, self._task(frame)) for frame in missing],
                    return_task_ids=True,
                ),
            )
            # Community edition imports synchronously and returns the ids (not in the SDK's type).
            task_ids = list(getattr(response, "task_ids", None) or [])
            if len(task_ids) != len(missing):
                raise VendorUnavailable(
                    f"Label Studio returned {len(task_ids)} task ids for {len(missing)} tasks"
                )
            existing.update(
                {frame.frame_id: task for frame, task in zip(missing, task_ids, strict=True)}
            )
            self._show_model(project, missing)
        return [LabelingTask(frame.frame_id, str(existing[frame.frame_id])) for frame in frames]

    def _task(self, frame: LabelingRequest) -> dict[str, Any]:
        """A task to import: the frame's data and, pre-labeled, the model's prediction."""
        task: dict[str, Any] = {
            "data": {
                "image": frame.image_url,
                **frame.metadata,
                "frame_id": frame.frame_id,
                "width": frame.width,
                "height": frame.height,
            }
        }
        if frame.model_version is not None and Shape.BOX in self._settings.labeling_shapes:
            task["predictions"] = [prediction(frame)]
        return task

    def _show_model(self, project: int, frames: Sequence[LabelingRequest]) -> None:
        """Make the project show this model's predictions: Label Studio pre-labels a task
        only with predictions of the project's ``model_version``, which it sets from the first
        import alone, so a new model's would stay hidden. Called after the import: Label Studio
        refuses a version no prediction has yet (400)."""
        version = next((f.model_version for f in frames if f.model_version), None)
        if version is None or version == self._model_version:
            return
        current = _call("read the project", lambda: self._client.projects.get(id=project))
        if current.model_version != version:
            _call(
                "set the project's model version",
                lambda: self._client.projects.update(id=project, model_version=version),
            )
        self._model_version = version

    def export_tasks(self) -> list[dict[str, Any]]:
        """Every task of the project with every annotation, skipped ones included (the
        project's JSON export: ``GET /api/projects/{id}/export?download_all_tasks=true``)."""
        project = self.project_id()
        chunks = _call(
            "export the project",
            lambda: list(
                self._client.projects.exports.download_sync(
                    id=project, export_type="JSON", download_all_tasks=True
                )
            ),
        )
        tasks: list[dict[str, Any]] = json.loads(b"".join(chunks))
        return tasks

    def tasks_by_frame(self, project: int, frames: Sequence[LabelingRequest]) -> dict[str, int]:
        """The project's tasks of these frames (by the ``frame_id`` in their data)."""
        query = {
            "filters": {
                "conjunction": "or",
                "items": [
                    {
                        "filter": "filter:tasks:data.frame_id",
                        "operator": "equal",
                        "type": "String",
                        "value": frame.frame_id,
                    }
                    for frame in frames
                ],
            }
        }
        found: dict[str, int] = {}
        tasks: Iterable[Any] = self._client.tasks.list(
            project=project, query=json.dumps(query), fields="all", page_size=100
        )
        for task in tasks:
            frame_id = (task.data or {}).get("frame_id")
            if frame_id and task.id is not None:
                found.setdefault(str(frame_id), int(task.id))  # the first task wins
        return found

    def _ensure_project(self) -> int:
        title = self._settings.labelstudio_project
        setup_id = f"labelstudio~{title}"
        recorded = self._documents.get(Collections.LABELING_VENDORS, setup_id)
        if recorded:
            return int(recorded["project_id"])
        projects: Iterable[Any] = self._client.projects.list(title=title)
        matches = sorted(
            (p for p in projects if p.title == title),
            key=lambda p: p.id or 0,
        )
        created = None
        if matches and matches[0].id is not None:
            project_id = int(matches[0].id)
        else:
            created = self._client.projects.create(
                title=title,
                label_config=label_config(
                    self._settings.labeling_classes, self._settings.labeling_shapes
                ),
            )
            project_id = int(created.id or 0)
        if self._documents.create(
            Collections.LABELING_VENDORS, setup_id, {"project_id": project_id, "title": title}
        ):
            return project_id
        winner = int(
            (self._documents.get(Collections.LABELING_VENDORS, setup_id) or {})["project_id"]
        )
        if created is not None and winner != project_id:
            self._client.projects.delete(id=project_id)  # lost the race: ours is empty
        return winner

    def _ensure_webhook(self, project: int) -> None:
        """Keep the project's webhook in step with the settings, each time a labeler starts: a
        rotated secret or a new webhook URL reaches Label Studio, which never retries a call
        it got 401 for. Ours are the hooks to our URL or carrying our header (an older URL)."""
        if not self._settings.webhook_url:
            return
        url = f"{self._settings.webhook_url.rstrip('/')}/labelstudio"
        secret = self._settings.labelstudio_webhook_secret
        wanted: dict[str, Any] = {
            "url": url,
            "send_payload": True,
            "send_for_all_actions": False,
            "actions": WEBHOOK_ACTIONS,
            "headers": {SECRET_HEADER: secret.get_secret_value()} if secret else {},
        }
        ours = self._webhooks(project, url)
        if not ours:
            self._client.webhooks.create(project=project, **wanted)
            return
        keep, *duplicates = ours
        self._client.webhooks.update(id=keep, **wanted)
        for duplicate in duplicates:  # another instance registered it at the same time
            self._client.webhooks.delete(id=duplicate)

    def _webhooks(self, project: int, url: str) -> list[int]:
        hooks = self._client.webhooks.list(project=str(project))
        return sorted(
            int(hook.id)
            for hook in hooks
            if hook.id is not None
            and hook.project == project
            and (hook.url == url or SECRET_HEADER in (hook.headers or {}))
        )


def prediction(frame: LabelingRequest) -> dict[str, Any]:
    """A frame's pre-label as a Label Studio prediction: its boxes in percent of the image,
    each with its score, and as the prediction's score the model's confidence in the frame
    (1 - its uncertainty: sorting the Data Manager by it lists the most uncertain first)."""
    _, from_name, result_type = CONTROLS[Shape.BOX]
    return {
        "model_version": frame.model_version,
        "score": 1 - (frame.uncertainty or 0.0),
        "result": [
            {
                "id": f"p{slot}",
                "from_name": from_name,
                "to_name": "image",
                "type": result_type,
                "original_width": frame.width,
                "original_height": frame.height,
                "image_rotation": 0,
                "score": box.score,
                "value": {
                    "x": (box.x or 0.0) * 100,
                    "y": (box.y or 0.0) * 100,
                    "width": (box.w or 0.0) * 100,
                    "height": (box.h or 0.0) * 100,
                    "rotation": 0,
                    result_type: [box.label],
                },
            }
            for slot, box in enumerate(frame.prelabels)
        ],
    }


def _call(doing: str, call: Callable[[], R]) -> R:
    """Run an SDK call, sorting its failures into retryable and permanent ones."""
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    try:
        return call()
    except ApiError as exc:
        message = f"Label Studio could not {doing}: HTTP {exc.status_code} {_body(exc.body)}"
        code = exc.status_code or 0
        if code in (408, 429) or code >= 500:
            raise VendorUnavailable(message) from exc
        raise VendorRejected(message) from exc
    except httpx.HTTPError as exc:
        raise VendorUnavailable(f"Label Studio could not {doing}: {exc}") from exc


def _body(body: Any) -> str:
    return str(body)[:300]


# --- Webhooks -----------------------------------------------------------------------------


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


class LabelStudioDeleted(BaseModel):
    model_config = PAYLOAD

    id: int


class LabelStudioWebhook(BaseModel):
    model_config = PAYLOAD

    action: Literal["ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED"]
    annotation: LabelStudioAnnotation | None = None
    annotations: list[LabelStudioDeleted] = Field(default_factory=list)
    task: LabelStudioTask | None = None

    def records(self) -> list[AnnotationRecord]:
        if self.action == "ANNOTATIONS_DELETED":
            return [
                AnnotationRecord(
                    id=AnnotationRecord.make_id(NAME, str(deleted.id)),
                    frame_id=None,  # the payload names only the annotation; kept if stored
                    vendor=NAME,
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
    return AnnotationRecord(
        id=AnnotationRecord.make_id(NAME, str(annotation.id)),
        frame_id=str(frame_id) if frame_id else None,
        vendor=NAME,
        task_id=str(task.id),
        annotation_id=str(annotation.id),
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

"""Label Studio's adapter: tasks out through its official SDK (``label-studio-sdk`` 2.x).

Once per deployment (remembered in ``labeling_vendors/labelstudio~{project}``):

- the project, with a labeling config built from the configured classes and shapes
  (:mod:`framesift.vendors.labelstudio_tasks`), found by title or created; two instances
  creating it at once converge on the first one recorded and delete their own;
- the webhook to ``{webhook_url}/labelstudio`` for ANNOTATION_CREATED, ANNOTATION_UPDATED,
  ANNOTATIONS_DELETED and TASKS_DELETED, carrying the shared secret in the header the vendor
  registry names (:data:`framesift.vendors.registry.LABELSTUDIO_CALLBACK`).

Tasks are imported in one request per chunk, with the frame id in the task data. Before
importing, the chunk's frame ids are looked up in the project (a Data Manager filter on
``data.frame_id``), so a crash between importing and recording the task ids never yields a
second task for a frame. The SDK is imported when the vendor is built, so a function that only
receives webhooks never loads it. The webhook's calls are read by
:mod:`framesift.vendors.labelstudio_callbacks`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pydantic import SecretStr

from framesift.bookkeeping import VendorSetup
from framesift.config import Vendor
from framesift.documents import create_or_get
from framesift.errors import VendorRejected, VendorUnavailable
from framesift.geometry import Shape
from framesift.ports import DocumentStore, LabelingRequest, LabelingTask
from framesift.topology import Collections
from framesift.vendors.labelstudio_tasks import label_config, prediction
from framesift.vendors.registry import LABELSTUDIO, LABELSTUDIO_CALLBACK

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

WEBHOOK_ACTIONS = [
    "ANNOTATION_CREATED",
    "ANNOTATION_UPDATED",
    "ANNOTATIONS_DELETED",
    "TASKS_DELETED",
]
R = TypeVar("R")


@dataclass(frozen=True)
class LabelStudioConfig:
    """The settings Label Studio's adapter reads (each named as in
    :class:`~framesift.config.Settings`)."""

    labelstudio_url: str
    labelstudio_api_key: SecretStr | None
    labelstudio_project: str
    labelstudio_webhook_secret: SecretStr | None
    labeling_classes: Sequence[str]
    labeling_shapes: Sequence[Shape]
    webhook_url: str | None


class LabelStudioVendor:
    name = Vendor.LABELSTUDIO.value

    def __init__(self, documents: DocumentStore, config: LabelStudioConfig) -> None:
        from label_studio_sdk import LabelStudio

        if config.labelstudio_api_key is None:
            raise VendorRejected("FRAMESIFT_LABELSTUDIO_API_KEY is not set")
        if config.webhook_url and config.labelstudio_webhook_secret is None:
            # Every call of a webhook without the header would be refused, and Label Studio
            # never retries one: refuse to start instead.
            from framesift.webhook_secrets import HOW_TO_SET

            raise VendorRejected(
                "Label Studio's webhook would be registered without a secret, and every call "
                f"refused: {HOW_TO_SET}"
            )
        self._config = config
        self._documents = documents
        self._client = LabelStudio(
            base_url=config.labelstudio_url,
            api_key=config.labelstudio_api_key.get_secret_value(),
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
        if frame.model_version is not None and Shape.BOX in self._config.labeling_shapes:
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

    def existing_project_id(self) -> int:
        """The configured project's id, never creating it (a reconcile reads, a wrong title
        must not make an empty project). Raises VendorRejected when there is none."""
        title = self._config.labelstudio_project
        recorded = self._documents.get(Collections.LABELING_VENDORS, f"labelstudio~{title}")
        found = int(recorded["project_id"]) if recorded else self._find_project(title)
        if found is None:
            raise VendorRejected(f"Label Studio has no project titled {title!r}")
        return found

    def export_tasks(self, project: int) -> list[dict[str, Any]]:
        """Every task of the project with every annotation, skipped ones included (the
        project's JSON export: ``GET /api/projects/{id}/export?download_all_tasks=true``)."""
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
        title = self._config.labelstudio_project
        setup_id = f"labelstudio~{title}"
        recorded = self._documents.get(Collections.LABELING_VENDORS, setup_id)
        if recorded:
            return int(recorded["project_id"])
        found = self._find_project(title)
        created = None
        if found is not None:
            project_id = found
        else:
            created = self._client.projects.create(
                title=title,
                label_config=label_config(
                    self._config.labeling_classes, self._config.labeling_shapes
                ),
            )
            project_id = int(created.id or 0)
        made, setup = create_or_get(
            self._documents,
            Collections.LABELING_VENDORS,
            setup_id,
            VendorSetup(project_id=project_id, title=title),
        )
        if made:
            return project_id
        winner = int(setup["project_id"])
        if created is not None and winner != project_id:
            self._client.projects.delete(id=project_id)  # lost the race: ours is empty
        return winner

    def _find_project(self, title: str) -> int | None:
        """The oldest project with this title, if any."""
        projects: Iterable[Any] = self._client.projects.list(title=title)
        ids = sorted(int(p.id) for p in projects if p.title == title and p.id is not None)
        return ids[0] if ids else None

    def _ensure_webhook(self, project: int) -> None:
        """Keep the project's webhook in step with the settings, each time a labeler starts: a
        rotated secret or a new webhook URL reaches Label Studio, which never retries a call
        it got 401 for. Ours are the hooks to our URL or carrying our header (an older URL)."""
        if not self._config.webhook_url:
            return
        url = LABELSTUDIO.callback_url(self._config.webhook_url)
        secret = self._config.labelstudio_webhook_secret
        wanted: dict[str, Any] = {
            "url": url,
            "send_payload": True,
            "send_for_all_actions": False,
            "actions": WEBHOOK_ACTIONS,
            "headers": {LABELSTUDIO_CALLBACK.header: secret.get_secret_value()} if secret else {},
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
            and (hook.url == url or LABELSTUDIO_CALLBACK.header in (hook.headers or {}))
        )


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

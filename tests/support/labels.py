"""Annotations stored as the webhook stores them, for tests that need labeled frames."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import SecretStr

from framesift.annotations import LabelRules, store
from framesift.config import Settings, Vendor
from framesift.documents import AnnotationRecord, AnnotationStatus, Box

# The default classes and tolerance, as a deployment without settings has them.
RULES = LabelRules.of(Settings())


def annotate(
    documents,
    frame_id: str,
    boxes: list[Box],
    status: AnnotationStatus = AnnotationStatus.SUBMITTED,
    at: datetime | None = None,
    task_id: str | None = None,
) -> bool:
    """Scale's answer for ``frame_id`` (its task marked sent first, as the labeler does)."""
    task_id = task_id or f"task-{frame_id}"
    documents.merge(
        "frames",
        frame_id,
        {"labeling_status": "requested", "labeling_vendor": "scale", "labeling_task_id": task_id},
    )
    return store(
        documents,
        AnnotationRecord(
            id=f"scale~{task_id}",
            frame_id=frame_id,
            vendor="scale",
            task_id=task_id,
            annotation_id=task_id,
            status=status,
            boxes=boxes,
            vendor_updated_at=at or datetime.now(UTC),
        ),
        RULES,
    )


def ls_box(label: str, x: float, y: float, w: float, h: float, task, rotation: float = 0.0) -> dict:
    """A rectangle region of a Label Studio annotation of ``task`` (an SDK task), in percent."""
    return {
        "id": f"{label}-{x}-{y}",
        "type": "rectanglelabels",
        "from_name": "label",
        "to_name": "image",
        "original_width": task.data["width"],
        "original_height": task.data["height"],
        "image_rotation": 0,
        "value": {
            "x": x,
            "y": y,
            "width": w,
            "height": h,
            "rotation": rotation,
            "rectanglelabels": [label],
        },
    }


def labelstudio_settings(settings: Settings, labelstudio, project: str, **extra) -> Settings:
    """``settings`` labeling in ``project`` of the ``labelstudio`` fixture's server (classes car
    and person, a webhook secret of the project's own), with ``extra`` settings."""
    return settings.model_copy(
        update={
            "labeling_vendor": Vendor.LABELSTUDIO,
            "labelstudio_url": labelstudio.url,
            "labelstudio_api_key": SecretStr(labelstudio.token),
            "labelstudio_project": project,
            "labelstudio_webhook_secret": SecretStr(f"secret-{project}"),
            "labeling_classes": ["car", "person"],
            **extra,
        }
    )


def start_served_pipeline(media, settings, labelstudio, project: str, **extra):
    """The embedded pipeline run on two of the suite's videos with Label Studio as its vendor,
    behind a local server (frames and webhook), as ``framesift run --vendor labelstudio`` does.
    Returns the served settings, the pipeline and the server (the caller stops it)."""
    videos = [media["three_shots"], media["clip_5s_25fps"]]
    return serve_and_run(videos, "cam", settings, labelstudio, project, **extra)


def serve_and_run(videos, collector: str, settings, labelstudio, project: str, **extra):
    """``videos`` run under ``collector`` as :func:`start_served_pipeline` runs its two."""
    from framesift.bootstrap import build_adapters
    from framesift.embedded import EmbeddedPipeline
    from framesift.serve import LocalServer

    settings = labelstudio_settings(settings, labelstudio, project, **extra)
    server = LocalServer(settings, build_adapters(settings), "127.0.0.1", 0).start()
    served = server.settings_for(settings)
    pipeline = EmbeddedPipeline(served)
    pipeline.run(videos, collector)
    return served, pipeline, server


def submit_box(vendor, task_id: int, label: str = "person") -> None:
    """What a Label Studio annotator's submit does (through its API, so Label Studio posts its
    webhook): one ``label`` box at 10 %, 20 %, 50 % x 25 % of the task's image."""
    task = vendor.client.tasks.get(id=task_id)
    vendor.client.annotations.create(
        id=task_id,
        result=[ls_box(label, 10, 20, 50, 25, task)],
        was_cancelled=False,
        ground_truth=False,
    )

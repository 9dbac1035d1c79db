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


def submit_box(vendor, task_id: int, label: str = "person") -> None:
    """What a Label Studio annotator's submit does (through its API, so Label Studio posts its
    webhook): one ``label`` box at 10 %, 20 %, 50 % x 25 % of a 320 x 240 image."""
    vendor.client.annotations.create(
        id=task_id,
        result=[
            {
                "id": "r1",
                "type": "rectanglelabels",
                "from_name": "label",
                "to_name": "image",
                "original_width": 320,
                "original_height": 240,
                "image_rotation": 0,
                "value": {
                    "x": 10,
                    "y": 20,
                    "width": 50,
                    "height": 25,
                    "rotation": 0,
                    "rectanglelabels": [label],
                },
            }
        ],
        was_cancelled=False,
        ground_truth=False,
    )


def labelstudio_settings(base: Settings, server, project: str, **more) -> Settings:
    """``base`` labeling the classes car and person in ``project`` of the Label Studio
    ``server`` (the ``labelstudio`` fixture), with ``more``."""
    return base.model_copy(
        update={
            "labeling_vendor": Vendor.LABELSTUDIO,
            "labelstudio_url": server.url,
            "labelstudio_api_key": SecretStr(server.token),
            "labelstudio_project": project,
            "labeling_classes": ["car", "person"],
            **more,
        }
    )

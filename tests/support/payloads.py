"""Payloads in the shapes the vendors and Google send, for the tests to post and parse: built
from the samples in ``tests/payloads/`` (each a real payload's shape), with what a test varies.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from framesift.messages import KeptFrames

SAMPLES = Path(__file__).resolve().parents[1] / "payloads"
# The frames the samples' callbacks are about: one sent to Scale as task t1, one sent to Label
# Studio as task 3 (see sent_frame).
FRAME = "v_webhook_0000001000"
LS_FRAME = "v_webhook_0000002000"
SCALE_TASK = "t1"
LS_TASK = "3"


@cache
def _sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def sample(name: str) -> dict[str, Any]:
    """A fresh copy of ``tests/payloads/{name}.json``."""
    return copy.deepcopy(_sample(name))


def sent_frame(frame_id: str, vendor: str, task_id: str, width=640, height=480) -> dict:
    """A frame document as the labeler leaves it once its task exists at ``vendor``."""
    return {
        "id": frame_id,
        "width": width,
        "height": height,
        "dedup_status": "kept",
        "labeling_status": "requested",
        "labeling_vendor": vendor,
        "labeling_task_id": task_id,
    }


def store_sent_frames(documents) -> None:
    """The samples' two frames, sent as their callbacks say."""
    documents.create("frames", FRAME, sent_frame(FRAME, "scale", SCALE_TASK))
    documents.create("frames", LS_FRAME, sent_frame(LS_FRAME, "labelstudio", LS_TASK))


def scale_callback(task_id="t1", completed_at="2026-11-20T10:00:00Z", boxes=None, **task):
    """Scale's callback for a completed task (one box unless ``boxes``), with ``task`` fields."""
    body = sample("scale_callback")
    body["task_id"] = body["task"]["task_id"] = task_id
    body["task"]["completed_at"] = completed_at
    body["task"].update(task)
    if boxes is not None:
        body["response"]["annotations"] = boxes
    return body


def scale_box(label, left, top, width, height):
    return {
        "uuid": f"u-{label}-{left}",
        "label": label,
        "left": left,
        "top": top,
        "width": width,
        "height": height,
        "attributes": {"occluded": "no"},
    }


def scale_boxes(count: int, width: int, height: int) -> list[dict]:
    """``count`` small car boxes, row after row, inside a ``width`` x ``height`` image."""
    across, down = width - 20, height - 20
    return [
        scale_box("car", 1 + i % across, 1 + (i // across) % down, 10 + i % 7, 10)
        for i in range(count)
    ]


def scale_callback_at(limit: int, width: int, height: int, **callback) -> tuple[bytes, int]:
    """The largest Scale callback (of :func:`scale_callback`'s ``callback`` arguments) of
    :func:`scale_boxes` whose body is at most ``limit`` bytes (the webhook's body limit), and
    its box count."""
    size = len(json.dumps(scale_callback(boxes=[], **callback)))
    count = 0
    for box in scale_boxes(limit // 50, width, height):
        size += len(json.dumps(box)) + (2 if count else 0)  # the ", " between two boxes
        if size > limit:
            break
        count += 1
    body = json.dumps(scale_callback(boxes=scale_boxes(count, width, height), **callback))
    assert limit - 200 < len(body.encode()) <= limit
    return body.encode(), count


def ls_event(action="ANNOTATION_CREATED", annotation_id=7, updated_at="2026-11-20T10:00:00Z"):
    """Label Studio's webhook for one annotation (one box)."""
    body = sample("labelstudio_annotation_created")
    body["action"] = action
    body["annotation"]["id"] = annotation_id
    body["annotation"]["updated_at"] = updated_at
    return body


def scale_completes(task: dict) -> dict:
    """The callback Scale posts when a task is done: the task and its response, one box."""
    return {
        "task_id": task["task_id"],
        "task": {**task, "status": "completed", "completed_at": "2026-11-22T12:00:00Z"},
        "response": {
            "annotations": [
                {
                    "uuid": f"box-{task['task_id']}",
                    "label": "car",
                    "left": 32,
                    "top": 24,
                    "width": 64,
                    "height": 48,
                    "attributes": {},
                }
            ]
        },
    }


def kept_frames(settings, count: int, batch: str = "b1") -> KeptFrames:
    return KeptFrames.model_validate(
        {
            "batch_id": batch,
            "collector": "cam",
            "video_id": "drive",
            "video_doc_id": "v_drive",
            "frames": [
                {
                    "frame_id": f"v_{batch}_{i:010d}",
                    "timestamp_ms": i * 1000,
                    "bucket": settings.frames_bucket,
                    "object_name": f"cam/drive/{i * 1000:010d}.jpg",
                    "sha256": f"{i:064x}",
                    "phash": f"{i:016x}",
                    "sharpness": 1.0,
                    "brightness": 0.5,
                    "width": 320,
                    "height": 240,
                }
                for i in range(count)
            ],
        }
    )

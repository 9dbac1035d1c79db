"""Annotations that did not come through the webhook: files, and Label Studio's API.

- :func:`ingest_file`: a Label Studio JSON export (a list of tasks, each with its
  ``annotations``) or saved Scale callbacks (a JSON list or JSON Lines of callback bodies),
  stored exactly as their webhooks would have been (``framesift ingest``);
- :func:`reconcile_labelstudio`: Label Studio posts each webhook once, with a 1 s timeout, and
  never retries; this pulls the annotations of every frame still ``requested`` from its API and
  stores what a lost call missed (``framesift reconcile``, or a scheduled run).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framesift.annotations import store
from framesift.config import Settings, Vendor
from framesift.documents import AnnotationRecord, LabelingStatus
from framesift.ports import DocumentStore
from framesift.topology import Collections
from framesift.vendors.labelstudio import (
    LabelStudioAnnotation,
    LabelStudioTask,
    LabelStudioVendor,
    labelstudio_record,
)
from framesift.vendors.scale import ScaleCallback


@dataclass(frozen=True)
class IngestResult:
    annotations: int
    stored: int


def ingest_file(path: Path, vendor: str, documents: DocumentStore) -> IngestResult:
    text = path.read_text()
    if vendor == Vendor.SCALE:
        stripped = text.lstrip()
        bodies = (
            json.loads(text)
            if stripped.startswith("[")
            else [json.loads(line) for line in text.splitlines() if line.strip()]
        )
        records = [r for body in bodies for r in ScaleCallback.model_validate(body).records()]
    elif vendor == Vendor.LABELSTUDIO:
        records = [
            labelstudio_record(LabelStudioAnnotation.model_validate(annotation), task)
            for raw in json.loads(text)
            for task in [LabelStudioTask.model_validate(raw)]
            for annotation in raw.get("annotations", [])
        ]
    else:
        raise ValueError(f"unknown vendor {vendor!r}: scale or labelstudio")
    return _store_all(documents, records)


def reconcile_labelstudio(settings: Settings, documents: DocumentStore) -> IngestResult:
    vendor = LabelStudioVendor(settings, documents)
    records = []
    for frame in documents.where(
        Collections.FRAMES, "labeling_status", LabelingStatus.REQUESTED.value
    ):
        if frame.get("labeling_vendor") != vendor.name or not frame.get("labeling_task_id"):
            continue
        task = LabelStudioTask(id=int(frame["labeling_task_id"]), data={"frame_id": frame["id"]})
        for annotation in vendor.client.annotations.list(id=task.id):
            raw: dict[str, Any] = annotation.model_dump(mode="json")
            records.append(labelstudio_record(LabelStudioAnnotation.model_validate(raw), task))
    return _store_all(documents, records)


def _store_all(documents: DocumentStore, records: list[AnnotationRecord]) -> IngestResult:
    return IngestResult(len(records), sum(store(documents, record) for record in records))

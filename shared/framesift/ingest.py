"""Annotations that did not come through the webhook: files, and the vendors' own state.

- :func:`ingest_file`: a Label Studio JSON export (a list of tasks, each with its
  ``annotations``) or saved Scale callbacks (a JSON list or JSON Lines of callback bodies),
  stored exactly as their webhooks would have been (``framesift ingest``);
- :func:`reconcile`: brings the store to the vendor's state for every frame sent, whatever a
  lost or refused callback missed (``framesift reconcile``, or a scheduled run). Label Studio
  posts each webhook once with a 1 s timeout and never retries: its project's JSON export
  (every task with every annotation, skipped ones included; the per-task annotation list leaves
  those out) is stored like webhooks, and every stored annotation the project no longer has is
  marked deleted. Scale retries its callbacks for a day: its task list (by project, updated
  since the last reconcile, with responses) is stored like callbacks.

Every record goes through :func:`framesift.annotations.store`, with its checks: a record that
is refused is listed with its reason and the others are stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from framesift.annotations import LabelRules, store, version
from framesift.bookkeeping import ReconcileMark
from framesift.config import Settings, Vendor, section
from framesift.documents import AnnotationRecord, AnnotationStatus, utcnow
from framesift.errors import NotYetSent, PermanentError, VendorRejected
from framesift.ports import DocumentStore
from framesift.topology import Collections
from framesift.vendors.labelstudio_callbacks import (
    LabelStudioAnnotation,
    LabelStudioTask,
    labelstudio_record,
)
from framesift.vendors.scale import ScaleCallback

# Scale's task list is read from the last reconcile's start minus this (clocks, late writes).
SCALE_OVERLAP = timedelta(hours=1)


@dataclass
class IngestResult:
    annotations: int = 0  # records read
    stored: int = 0  # written (new, or newer than the stored version)
    deleted: int = 0  # stored annotations the vendor no longer has, marked deleted
    refused: list[str] = field(default_factory=list)  # "{record}: {reason}"


def ingest_file(
    path: Path, vendor: str, documents: DocumentStore, settings: Settings
) -> IngestResult:
    text = path.read_text()
    result = IngestResult()
    if vendor == Vendor.SCALE:
        stripped = text.lstrip()
        bodies = (
            json.loads(text)
            if stripped.startswith("[")
            else [json.loads(line) for line in text.splitlines() if line.strip()]
        )
        records = _scale_records(bodies, result)
    elif vendor == Vendor.LABELSTUDIO:
        records = _labelstudio_records(json.loads(text), result)
    else:
        raise ValueError(f"unknown vendor {vendor!r}: scale or labelstudio")
    result.stored = _store_each(documents, records, LabelRules.of(settings), result)
    return result


def reconcile(settings: Settings, documents: DocumentStore) -> IngestResult:
    if settings.labeling_vendor is Vendor.LABELSTUDIO:
        return _reconcile_labelstudio(settings, documents)
    if settings.labeling_vendor is Vendor.SCALE:
        return _reconcile_scale(settings, documents)
    raise VendorRejected("the manifest vendor has no state to reconcile with")


def _reconcile_labelstudio(settings: Settings, documents: DocumentStore) -> IngestResult:
    from framesift.vendors.labelstudio import LabelStudioConfig, LabelStudioVendor

    result = IngestResult()
    vendor = LabelStudioVendor(documents, section(LabelStudioConfig, settings))
    tasks = vendor.export_tasks()
    records = list(_labelstudio_records(tasks, result))
    present = {
        AnnotationRecord.make_id(Vendor.LABELSTUDIO.value, str(annotation.get("id")))
        for task in tasks
        for annotation in task.get("annotations") or []
    }
    stored = {
        doc["id"]: doc
        for doc in documents.where(Collections.ANNOTATIONS, "vendor", Vendor.LABELSTUDIO.value)
    }
    # Only what differs goes through a transaction: a reconcile of an unchanged project reads.
    changed = [
        record
        for record in records
        if record.id not in stored or version(record.model_dump()) > version(stored[record.id])
    ]
    now = utcnow()
    gone = [
        AnnotationRecord(
            id=doc_id,
            frame_id=None,
            vendor=Vendor.LABELSTUDIO.value,
            task_id=None,
            annotation_id=str(doc.get("annotation_id")),
            status=AnnotationStatus.DELETED,
            vendor_updated_at=now,
        )
        for doc_id, doc in stored.items()
        if doc_id not in present and doc.get("status") != AnnotationStatus.DELETED
    ]
    rules = LabelRules.of(settings)
    result.stored = _store_each(documents, changed, rules, result)
    result.deleted = _store_each(documents, gone, rules, result)
    return result


def _reconcile_scale(settings: Settings, documents: DocumentStore) -> IngestResult:
    from framesift.vendors.scale import ScaleConfig, ScaleVendor

    mark_id = f"scale~{settings.scale_project}~reconciled"
    mark = (documents.get(Collections.LABELING_VENDORS, mark_id) or {}).get("through")
    since = datetime.fromisoformat(str(mark)) - SCALE_OVERLAP if mark else None
    started = datetime.now(UTC)
    result = IngestResult()
    bodies = (
        {"task_id": task["task_id"], "task": task, "response": task.get("response")}
        for task in ScaleVendor(section(ScaleConfig, settings)).finished_tasks(since)
    )
    records = _scale_records(bodies, result)
    result.stored = _store_each(documents, records, LabelRules.of(settings), result)
    documents.merge(
        Collections.LABELING_VENDORS, mark_id, ReconcileMark(through=started.isoformat()).stored()
    )
    return result


def _labelstudio_records(
    tasks: Iterable[dict[str, Any]], result: IngestResult
) -> Iterator[AnnotationRecord]:
    for raw in tasks:
        for annotation in raw.get("annotations") or []:
            result.annotations += 1
            try:
                yield labelstudio_record(
                    LabelStudioAnnotation.model_validate(annotation),
                    LabelStudioTask.model_validate(raw),
                )
            except (ValidationError, ValueError) as exc:
                result.refused.append(
                    f"labelstudio annotation {annotation.get('id')} of task {raw.get('id')}: "
                    f"{_first_line(exc)}"
                )


def _scale_records(
    bodies: Iterable[dict[str, Any]], result: IngestResult
) -> Iterator[AnnotationRecord]:
    for body in bodies:
        result.annotations += 1
        try:
            yield from ScaleCallback.model_validate(body).records()
        except (ValidationError, ValueError) as exc:
            result.refused.append(f"scale task {body.get('task_id')}: {_first_line(exc)}")


def _store_each(
    documents: DocumentStore,
    records: Iterable[AnnotationRecord],
    rules: LabelRules,
    result: IngestResult,
) -> int:
    """Store each record, and say how many were written; one that is refused is listed in
    ``result.refused`` and the others go on."""
    written = 0
    for record in records:
        try:
            written += store(documents, record, rules)
        except (PermanentError, NotYetSent) as exc:
            result.refused.append(f"{record.id}: {exc}")
    return written


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]

"""Annotations that did not come through the webhook: files, and the vendors' own state.

- :func:`ingest_file`: a Label Studio JSON export (a list of tasks, each with its
  ``annotations``) or saved Scale callbacks (a JSON list or JSON Lines of callback bodies),
  stored exactly as their webhooks would have been (``framesift ingest``);
- :func:`reconcile`: brings the store to the vendor's state for every frame sent, whatever a
  lost or refused callback missed (``framesift reconcile``, or a scheduled run). Label Studio
  posts each webhook once with a 1 s timeout and never retries: its project's JSON export
  (every task with every annotation, skipped ones included; the per-task annotation list leaves
  those out) is stored like webhooks, and every stored annotation of that project (its recorded
  ``project``, or one of its tasks) that the export lacks is marked deleted by absence, with
  the export's time as evidence: a later export showing it restores it
  (:func:`framesift.annotations.supersedes`). A run that would delete more than
  ``reconcile_max_deletion_share`` of the project's live labels stops unless confirmed; a dry
  run lists the changes and writes nothing. Scale retries its callbacks for a day: its task
  list (by project, updated since the last reconcile, with responses) is stored like callbacks.

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

from framesift.annotation_versions import supersedes
from framesift.annotations import LabelRules, store
from framesift.bookkeeping import ReconcileMark
from framesift.config import Settings, Vendor, section
from framesift.documents import (
    LIVE_STATUSES,
    AnnotationRecord,
    AnnotationStatus,
    DeletedBy,
    utcnow,
)
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
    changes: list[str] = field(default_factory=list)  # a reconcile's: "{record}: {change}"


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


class TooManyDeletions(Exception):
    """A reconcile that would mark more than ``reconcile_max_deletion_share`` of the project's
    live labels deleted, and was not confirmed: nothing was written."""


def reconcile(
    settings: Settings, documents: DocumentStore, *, dry_run: bool = False, confirmed: bool = False
) -> IngestResult:
    """Bring the store to the vendor's state; with ``dry_run``, only list the changes
    (``result.changes``). Raises TooManyDeletions (unless ``confirmed``)."""
    if settings.labeling_vendor is Vendor.LABELSTUDIO:
        return _reconcile_labelstudio(settings, documents, dry_run, confirmed)
    if settings.labeling_vendor is Vendor.SCALE:
        return _reconcile_scale(settings, documents, dry_run)
    raise VendorRejected("the manifest vendor has no state to reconcile with")


def _reconcile_labelstudio(
    settings: Settings, documents: DocumentStore, dry_run: bool, confirmed: bool
) -> IngestResult:
    from framesift.vendors.labelstudio import LabelStudioConfig, LabelStudioVendor

    result = IngestResult()
    vendor = LabelStudioVendor(documents, section(LabelStudioConfig, settings))
    project = vendor.existing_project_id()
    # The store is read before the export: an annotation stored meanwhile is not compared.
    stored = {
        doc["id"]: doc
        for doc in documents.where(Collections.ANNOTATIONS, "vendor", Vendor.LABELSTUDIO.value)
    }
    read_at = utcnow()  # the export's time: it showed or lacked each annotation after this
    tasks = vendor.export_tasks(project)
    records = list(_labelstudio_records(tasks, result, project, read_at))
    exported_tasks = {str(task.get("id")) for task in tasks}
    present = {
        AnnotationRecord.make_id(Vendor.LABELSTUDIO.value, str(annotation.get("id")))
        for task in tasks
        for annotation in task.get("annotations") or []
    }
    # Only the project's own: recorded as in it, or (stored before projects were recorded)
    # of one of its tasks (Label Studio's task ids are unique across projects).
    in_project = {
        doc_id: doc
        for doc_id, doc in stored.items()
        if doc.get("project") == str(project)
        or (doc.get("project") is None and str(doc.get("task_id")) in exported_tasks)
    }
    # Only what differs goes through a transaction: a reconcile of an unchanged project reads.
    changed = [
        record
        for record in records
        if record.id not in stored or supersedes(record.model_dump(), stored[record.id])
    ]
    gone = [
        deletion
        for deletion in (
            AnnotationRecord(
                id=doc_id,
                frame_id=None,
                vendor=Vendor.LABELSTUDIO.value,
                task_id=None,
                annotation_id=str(doc.get("annotation_id")),
                status=AnnotationStatus.DELETED,
                deleted_by=DeletedBy.ABSENT,
                deleted_at=read_at,
            )
            for doc_id, doc in in_project.items()
            if doc_id not in present
        )
        if supersedes(deletion.model_dump(), in_project[deletion.id])
    ]
    result.changes = [_change(record, stored.get(record.id)) for record in changed] + [
        f"{record.id}: delete (not in project {project}'s export read at {read_at.isoformat()})"
        for record in gone
    ]
    if dry_run:
        return result
    live = [doc for doc in in_project.values() if doc.get("status") in LIVE_STATUSES]
    lost = sum(1 for record in gone if in_project[record.id].get("status") in LIVE_STATUSES)
    limit = settings.reconcile_max_deletion_share
    if live and lost / len(live) > limit and not confirmed:
        raise TooManyDeletions(
            f"would mark {lost} of project {project}'s {len(live)} live labels deleted "
            f"({lost / len(live):.0%}, over FRAMESIFT_RECONCILE_MAX_DELETION_SHARE="
            f"{limit:.0%}): nothing written. Check FRAMESIFT_LABELSTUDIO_PROJECT "
            f"({settings.labelstudio_project!r}), see the changes with --dry-run, and run "
            "again with --yes if they are right"
        )
    rules = LabelRules.of(settings)
    result.stored = _store_each(documents, changed, rules, result)
    result.deleted = _store_each(documents, gone, rules, result)
    return result


def _change(record: AnnotationRecord, stored: dict[str, Any] | None) -> str:
    """What storing ``record`` over ``stored`` does, for a dry run."""
    if stored is None:
        return f"{record.id}: store ({record.status})"
    if stored.get("status") == AnnotationStatus.DELETED:
        return f"{record.id}: restore ({record.status}, in the export)"
    return f"{record.id}: update ({stored.get('status')} -> {record.status})"


def _reconcile_scale(settings: Settings, documents: DocumentStore, dry_run: bool) -> IngestResult:
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
    records = list(_scale_records(bodies, result))
    if dry_run:
        stored = documents.get_many(Collections.ANNOTATIONS, [record.id for record in records])
        result.changes = [
            _change(record, stored.get(record.id))
            for record in records
            if stored.get(record.id) is None
            or supersedes(record.model_dump(), stored[record.id] or {})
        ]
        return result
    result.stored = _store_each(documents, records, LabelRules.of(settings), result)
    documents.merge(
        Collections.LABELING_VENDORS, mark_id, ReconcileMark(through=started.isoformat()).stored()
    )
    return result


def _labelstudio_records(
    tasks: Iterable[dict[str, Any]],
    result: IngestResult,
    project: int | None = None,
    observed_at: datetime | None = None,
) -> Iterator[AnnotationRecord]:
    """The annotations of an export's ``tasks`` (of ``project``, read at ``observed_at`` for a
    reconcile; a file's tasks name their own project and were read at an unknown time)."""
    for raw in tasks:
        for annotation in raw.get("annotations") or []:
            result.annotations += 1
            try:
                yield labelstudio_record(
                    LabelStudioAnnotation.model_validate(annotation),
                    LabelStudioTask.model_validate(raw),
                    project,
                    observed_at,
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

"""Each vendor's statuses through its one table, a deleted task, and which version of an
annotation wins (framesift.annotations.supersedes), through the webhook's receiver over an
in-memory document store: an unfinished Scale task stores no label, Label Studio's
TASKS_DELETED (its payload as Label Studio's webhook reference gives it) tombstones the task's
labels and marks the frame, a deletion by absence is undone by a later read showing the label."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from framesift.annotation_versions import supersedes
from framesift.bootstrap import callback_receiver
from framesift.config import Settings
from framesift.documents import AnnotationStatus, DeletedBy
from framesift.stages.webhook import CallbackReceiver, Reply
from framesift.topology import Collections
from framesift.vendors.registry import LABELSTUDIO_CALLBACK, SCALE_CALLBACK
from framesift.vendors.scale import STATUSES
from tests.support.fakes import InMemoryDocumentStore
from tests.support.payloads import (
    FRAME,
    LS_FRAME,
    LS_TASK,
    ls_event,
    scale_callback,
    store_sent_frames,
)

SECRET = "secret-for-status-tests"
ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
TASK_DELETED = {"action": "TASKS_DELETED", "tasks": [{"id": int(LS_TASK)}], "project": {"id": 1}}


@pytest.fixture
def receiver() -> tuple[CallbackReceiver, InMemoryDocumentStore]:
    documents = InMemoryDocumentStore()
    store_sent_frames(documents)
    settings = Settings(
        scale_callback_auth_key=SecretStr(SECRET), labelstudio_webhook_secret=SecretStr(SECRET)
    )
    return callback_receiver(settings, documents), documents


def _post(receiver: CallbackReceiver, route: str, payload: dict) -> Reply:
    header = {"scale": SCALE_CALLBACK, "labelstudio": LABELSTUDIO_CALLBACK}[route].header
    body = json.dumps(payload).encode()
    return receiver.receive("POST", f"/{route}", {header: SECRET}, len(body), lambda n: body[:n])


@pytest.mark.parametrize(
    ("status", "boxes", "stored", "frame"),
    [
        ("pending", [], None, "requested"),
        ("a-status-scale-adds-later", [], None, "requested"),
        ("completed", [], "empty", "labeled"),
        ("completed", None, "submitted", "labeled"),
        ("canceled", [], "cancelled", "labeling_cancelled"),
        ("error", [], "error", "labeling_failed"),
    ],
)
def test_each_scale_status_maps_through_its_table(receiver, status, boxes, stored, frame):
    http, documents = receiver
    reply = _post(http, "scale", scale_callback(status=status, boxes=boxes))
    again = _post(http, "scale", scale_callback(status=status, boxes=boxes))

    assert reply.status == again.status == 200, reply.body
    annotation = documents.get(Collections.ANNOTATIONS, "scale~t1")
    assert (annotation or {}).get("status") == stored
    assert documents.get(Collections.FRAMES, FRAME)["labeling_status"] == frame


def test_the_docs_copy_each_vendor_status_table():
    text = ARCHITECTURE.read_text()
    for status, stored in STATUSES.items():
        shown = f"`{stored}`" if stored else "nothing (unfinished)"
        assert re.search(rf"\| `{status}` \| {re.escape(shown)}", text), status


def test_a_deleted_label_studio_task_tombstones_its_labels_and_marks_the_frame(receiver):
    http, documents = receiver
    assert _post(http, "labelstudio", ls_event()).status == 200
    assert documents.get(Collections.FRAMES, LS_FRAME)["labeling_status"] == "labeled"

    first = _post(http, "labelstudio", TASK_DELETED)
    again = _post(http, "labelstudio", TASK_DELETED)
    late = ls_event("ANNOTATION_UPDATED", updated_at="2026-11-20T11:00:00Z")
    refused = _post(http, "labelstudio", late)

    assert (first.status, first.body) == (200, {"stored": 2, "unchanged": 0})
    assert (again.status, again.body) == (200, {"stored": 0, "unchanged": 0})
    tombstone = documents.get(Collections.ANNOTATIONS, "labelstudio~7")
    assert (tombstone["status"], tombstone["deleted_by"]) == ("deleted", "task_deleted")
    assert tombstone["vendor_updated_at"] == datetime(2026, 11, 20, 10, tzinfo=UTC)  # kept
    frame = documents.get(Collections.FRAMES, LS_FRAME)
    assert (frame["labeling_status"], frame["labeling_annotations"]) == (
        "labeling_task_deleted",
        [],
    )
    assert refused.status == 422 and "is deleted" in refused.body["error"]


T0 = datetime(2026, 11, 20, 10, tzinfo=UTC)
LIVE = {"status": AnnotationStatus.SUBMITTED, "vendor_updated_at": T0}


def _absent(read_at: datetime) -> dict:
    return {
        "status": AnnotationStatus.DELETED,
        "vendor_updated_at": T0,
        "deleted_by": DeletedBy.ABSENT,
        "deleted_at": read_at,
    }


def test_a_deletion_by_absence_removes_only_older_versions_and_a_later_read_restores():
    later = T0 + timedelta(minutes=5)
    assert supersedes(_absent(later), LIVE)
    assert not supersedes(_absent(T0 - timedelta(seconds=1)), LIVE)  # stored after the read
    seen_again = {**LIVE, "observed_at": later + timedelta(minutes=1)}
    assert supersedes(seen_again, _absent(later))  # a right reconcile undoes a wrong one
    assert not supersedes({**LIVE, "observed_at": later - timedelta(minutes=1)}, _absent(later))
    assert not supersedes(LIVE, _absent(later))  # a late webhook of the old version


def test_the_vendors_own_deletion_is_final():
    deleted = {**_absent(T0), "deleted_by": DeletedBy.VENDOR}
    assert supersedes(deleted, {**LIVE, "vendor_updated_at": T0 + timedelta(hours=1)})
    assert not supersedes(LIVE, deleted)
    assert not supersedes(deleted, deleted)
    # Not even a version the vendor stamped later (its clock ahead of ours, or a replay).
    newer = {**LIVE, "vendor_updated_at": T0 + timedelta(days=1), "observed_at": T0}
    for final in (DeletedBy.VENDOR, DeletedBy.TASK_DELETED):
        assert not supersedes(newer, {**deleted, "deleted_by": final})

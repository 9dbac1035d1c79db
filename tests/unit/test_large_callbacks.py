"""Callbacks up to the body limit are stored whatever a document holds (issue #29, point 2).

The in-memory store refuses what Firestore refuses (a document over 1 MiB, a reserved field
name: tests/support/firestore_rules.py), as the emulator does (tests/emulated/
test_webhook_emulated.py): an annotation of ~17,000 boxes at the 2 MiB body limit is stored in
parts and read back whole by the exporter; what the store refuses however often it is sent is
a 413 or 422 and a rejected-callback record, replayed by ``framesift replay-callbacks``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from pydantic import SecretStr

from framesift.annotations import LabelRules, store
from framesift.bootstrap import callback_receiver
from framesift.config import Settings, section
from framesift.documents import AnnotationRecord, AnnotationStatus
from framesift.errors import DocumentRefused
from framesift.parts import MAX_DOCUMENT_BYTES, PARTS, document_size, split
from framesift.ports import Change, DocKey, T
from framesift.rejected_callbacks import body_of, record, replay
from framesift.stages.exporter import Exporter, ExporterConfig
from framesift.stages.webhook import CallbackReceiver, Reply
from framesift.topology import Collections
from framesift.vendors.registry import SCALE_CALLBACK
from tests.support.fakes import InMemoryDocumentStore, InMemoryWarehouse
from tests.support.payloads import (
    FRAME,
    scale_boxes,
    scale_callback,
    scale_callback_at,
    sent_frame,
)

KEY = "scale-key-for-tests"
SETTINGS = Settings(scale_callback_auth_key=SecretStr(KEY), labeling_classes=["car", "truck"])
LIMIT = SETTINGS.webhook_max_bytes
WIDTH, HEIGHT = 1920, 1080


def _receiver(documents: InMemoryDocumentStore) -> CallbackReceiver:
    documents.create(
        Collections.FRAMES, FRAME, sent_frame(FRAME, "scale", "t1", width=WIDTH, height=HEIGHT)
    )
    return callback_receiver(SETTINGS, documents)


def _post(receiver: CallbackReceiver, body: bytes) -> Reply:
    headers = {SCALE_CALLBACK.header: KEY}
    return receiver.receive("POST", "/scale", headers, len(body), lambda limit: body[:limit])


def _boxes(count: int) -> list[dict]:
    return scale_boxes(count, WIDTH, HEIGHT)


def _exported(documents: InMemoryDocumentStore) -> InMemoryWarehouse:
    warehouse = InMemoryWarehouse()
    Exporter(documents, warehouse, section(ExporterConfig, SETTINGS)).run()
    return warehouse


def _live_boxes(warehouse: InMemoryWarehouse) -> list[dict]:
    rows = warehouse.tables["annotation_boxes"].values()
    return sorted(
        (r for r in rows if not r["deleted"]), key=lambda r: int(r["id"].rsplit("#", 1)[1])
    )


def test_a_callback_at_the_body_limit_is_stored_in_parts_once_and_exported_whole():
    documents = InMemoryDocumentStore()
    receiver = _receiver(documents)
    body, count = scale_callback_at(LIMIT, WIDTH, HEIGHT)
    assert count > 15_000

    first = _post(receiver, body)
    again = _post(receiver, body)

    assert (first.status, first.body) == (200, {"stored": 1, "unchanged": 0})
    assert (again.status, again.body) == (200, {"stored": 0, "unchanged": 1})
    head = documents.get(Collections.ANNOTATIONS, "scale~t1")
    assert head is not None and len(head["parts"]) >= 3 and head["boxes"] == []
    parts = list(documents.changed_since(PARTS, None))
    assert sorted(p["_id"] for p in parts) == sorted(head["parts"])  # and no others
    sizes = [document_size(PARTS, p.pop("_id"), p) for p in parts]
    assert MAX_DOCUMENT_BYTES - 1000 < max(sizes) <= MAX_DOCUMENT_BYTES  # each part filled
    warehouse = _exported(documents)
    (annotation,) = warehouse.tables["annotations"].values()
    assert annotation["box_count"] == count
    boxes = _live_boxes(warehouse)
    assert len(boxes) == count
    sent = _boxes(count)
    assert [(b["left_px"], b["top_px"], b["width_px"]) for b in boxes] == [
        (s["left"], s["top"], s["width"]) for s in sent
    ]
    assert boxes[-1]["x"] == pytest.approx(sent[-1]["left"] / WIDTH)


def test_a_shorter_version_is_one_document_again_and_a_deletion_keeps_the_parts():
    documents = InMemoryDocumentStore()
    receiver = _receiver(documents)
    count = 8_000  # two parts
    body = json.dumps(scale_callback(boxes=_boxes(count))).encode()
    assert _post(receiver, body).status == 200
    parts = documents.get(Collections.ANNOTATIONS, "scale~t1")["parts"]
    assert len(parts) == 2

    shorter = scale_callback(boxes=_boxes(3), completed_at="2026-11-21T10:00:00Z")
    assert _post(receiver, json.dumps(shorter).encode()).status == 200

    head = documents.get(Collections.ANNOTATIONS, "scale~t1")
    assert head["parts"] == [] and len(head["boxes"]) == 3
    stale = list(documents.changed_since(PARTS, None))
    assert [p["_id"] for p in stale] == parts and all(p["lists"] == {} for p in stale)
    assert len(_live_boxes(_exported(documents))) == 3

    # Stored in parts again, then deleted: the deleted record keeps its boxes.
    longer = scale_callback(boxes=_boxes(count), completed_at="2026-11-22T10:00:00Z")
    assert _post(receiver, json.dumps(longer).encode()).status == 200
    deletion = AnnotationRecord(
        id="scale~t1",
        frame_id=None,
        vendor="scale",
        task_id=None,
        annotation_id="t1",
        status=AnnotationStatus.DELETED,
        vendor_updated_at="2026-11-23T10:00:00Z",
    )
    assert store(documents, deletion, LabelRules.of(SETTINGS))
    head = documents.get(Collections.ANNOTATIONS, "scale~t1")
    assert head["status"] == "deleted" and len(head["parts"]) == 2
    warehouse = _exported(documents)
    (annotation,) = warehouse.tables["annotations"].values()
    assert (annotation["deleted"], annotation["box_count"]) == (True, count)


def _polygon(vertices: int) -> dict:
    """A polygon of ``vertices`` vertices on a circle: more than a document holds stored."""
    import math

    return {
        "uuid": "p",
        "type": "polygon",
        "label": "car",
        "vertices": [
            {"x": round(960 + 500 * math.cos(a)), "y": round(540 + 500 * math.sin(a))}
            for a in (2 * math.pi * i / vertices for i in range(vertices))
        ],
    }


def test_a_region_over_a_document_is_413_kept_once_and_nothing_else_stored():
    documents = InMemoryDocumentStore()
    receiver = _receiver(documents)
    body = json.dumps(scale_callback(boxes=[_polygon(70_000)])).encode()
    assert len(body) < LIMIT

    refused = _post(receiver, body)
    retried = _post(receiver, body)

    assert refused.status == 413, refused.body
    assert "over the" in refused.body["error"] and "rejected callback" in refused.body["error"]
    assert retried.status == 413
    assert documents.get(Collections.ANNOTATIONS, "scale~t1") is None
    (kept,) = documents.where(Collections.REJECTED_CALLBACKS, "vendor", "scale")
    assert kept["http_status"] == 413 and kept["attempts"] == 2 and kept["replayed_at"] is None
    assert "an item of its boxes" in kept["reason"]
    assert body_of(documents, kept) == body  # in parts itself: 1.3 MB


class RefusingStore(InMemoryDocumentStore):
    """A store refusing every transaction on annotations while ``refusing`` (a deployment fault
    Firestore answers INVALID_ARGUMENT to, fixed by an operator before replaying)."""

    refusing = True

    def transact(self, keys: Sequence[DocKey], change: Change[T]) -> T:
        if self.refusing and keys[0][0] == Collections.ANNOTATIONS:
            raise DocumentRefused("Firestore refused the write: 400 invalid value")
        return super().transact(keys, change)


def test_a_callback_the_store_refuses_is_422_kept_and_replayed_once_fixed():
    documents = RefusingStore()
    receiver = _receiver(documents)
    body = json.dumps(scale_callback(boxes=_boxes(2))).encode()

    refused = _post(receiver, body)
    still = replay(documents, LabelRules.of(SETTINGS))
    documents.refusing = False
    replayed = replay(documents, LabelRules.of(SETTINGS))
    again = replay(documents, LabelRules.of(SETTINGS))

    assert refused.status == 422 and "invalid value" in refused.body["error"]
    (record_id,) = still.refused
    assert still.stored == [] and "invalid value" in still.refused[record_id]
    assert (replayed.stored, replayed.refused) == ([record_id], {})
    assert (again.stored, again.refused) == ([], {})  # replayed once
    stored = documents.get(Collections.ANNOTATIONS, "scale~t1")
    assert stored is not None and len(stored["boxes"]) == 2


def test_a_field_name_firestore_reserves_is_422_not_an_endless_503():
    documents = InMemoryDocumentStore()
    receiver = _receiver(documents)
    box = {**_boxes(1)[0], "attributes": {"__name__": "x"}}

    reply = _post(receiver, json.dumps(scale_callback(boxes=[box])).encode())

    assert reply.status == 422 and "reserved" in reply.body["error"]
    assert len(documents.where(Collections.REJECTED_CALLBACKS, "vendor", "scale")) == 1


def test_parts_fill_a_document_to_the_byte_and_never_pass_it():
    # Items of one byte each (nulls), so a part is filled to exactly what a document holds.
    key = (Collections.ANNOTATIONS, "scale~t1")
    data = {"id": "scale~t1", "boxes": [None] * 1_500_000, "model_matches": []}

    writes = split(key, data, AnnotationRecord.LISTS, None)

    head = writes.pop(key)
    assert len(head["parts"]) == 2 and head["boxes"] == []
    sizes = [document_size(*part, doc) for part, doc in writes.items()]
    # Full to the byte but the room kept for a part index of up to seven digits.
    assert sizes[0] == MAX_DOCUMENT_BYTES - 6
    assert sum(len(doc["lists"]["boxes"]) for doc in writes.values()) == 1_500_000


def test_replay_callbacks_lists_what_is_still_refused_and_exits_1(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from framesift.bootstrap import build_adapters
    from framesift.cli import app
    from framesift.rejected_callbacks import record

    monkeypatch.setenv("FRAMESIFT_WORKDIR", str(tmp_path))
    documents = build_adapters(Settings(workdir=tmp_path)).documents
    kept = record(documents, "scale", json.dumps(scale_callback()).encode(), "refused", 422)

    result = CliRunner().invoke(app, ["replay-callbacks"])

    assert result.exit_code == 1
    assert "0 rejected callbacks stored, 1 still refused" in result.output
    assert f"refused: {kept}: unknown frame" in result.output  # no frame in this store


def test_replay_goes_on_past_a_callback_whose_frame_has_no_task_yet_and_keeps_it():
    documents = InMemoryDocumentStore()
    _receiver(documents)  # FRAME, sent as task t1
    early_frame = "v_webhook_0000002000"
    documents.create(
        Collections.FRAMES,
        early_frame,
        {"id": early_frame, "width": WIDTH, "height": HEIGHT, "dedup_status": "kept"},
    )
    early = scale_callback(task_id="t2", boxes=_boxes(1), unique_id=early_frame)
    early["task"]["metadata"] = {"frame_id": early_frame}
    early_id = record(documents, "scale", json.dumps(early).encode(), "kept for the test", 422)
    ready = json.dumps(scale_callback(boxes=_boxes(2))).encode()
    ready_id = record(documents, "scale", ready, "kept for the test", 422)

    replayed = replay(documents, LabelRules.of(SETTINGS))

    assert replayed.stored == [ready_id]
    assert list(replayed.refused) == [early_id]
    assert "no task recorded yet" in replayed.refused[early_id]
    kept = documents.get(Collections.REJECTED_CALLBACKS, early_id)
    assert kept is not None and kept["replayed_at"] is None  # replayed again next time


def test_a_replayed_callback_refused_again_is_replayed_again():
    documents = InMemoryDocumentStore()
    body = b'{"not": "replayable"}'
    first = record(documents, "scale", body, "kept for the test", 422)
    documents.merge(Collections.REJECTED_CALLBACKS, first, {"replayed_at": "2026-12-01T00:00:00Z"})

    again = record(documents, "scale", body, "refused again", 422)

    stored = documents.get(Collections.REJECTED_CALLBACKS, again)
    assert again == first and stored is not None
    assert (stored["attempts"], stored["replayed_at"], stored["reason"]) == (
        2,
        None,
        "refused again",
    )

"""Webhook on the emulated stack: the function under functions-framework, Firestore emulator.

The Label Studio round trip is real: frames -> labeler -> Label Studio tasks -> an annotation
created through Label Studio's API, as an annotator's would be -> Label Studio's own webhook POST
-> the webhook function -> Firestore.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import random
from collections import Counter

import pytest
import requests
from google.cloud import firestore
from pydantic import SecretStr

from framesift import bootstrap
from framesift.adapters.gcp.firestore import FirestoreDocumentStore
from framesift.bootstrap import build_adapters
from framesift.config import Backend, ImageUrlMode, Settings, Vendor, section
from framesift.documents import AnnotationRecord
from framesift.ingest import reconcile
from framesift.parts import joined
from framesift.topology import WEBHOOK
from framesift.vendors.labelstudio import LabelStudioConfig, LabelStudioVendor
from tests.support.labels import submit_box
from tests.support.payloads import kept_frames, scale_callback, scale_callback_at, sent_frame
from tests.support.waiting import wait_for

pytestmark = pytest.mark.emulated


def _post_scale(devstack, function: str, body: dict | bytes) -> requests.Response:
    return requests.post(
        f"http://127.0.0.1:{devstack.port(f'function-{function}')}/scale",
        data=body if isinstance(body, bytes) else json.dumps(body).encode(),
        headers={
            "scale-callback-auth": devstack.env["FRAMESIFT_SCALE_CALLBACK_AUTH_KEY"],
            "Content-Type": "application/json",
        },
        timeout=180,
    )


def _frame_body(devstack, task_id: str) -> dict:
    """Scale's callback for a frame the labeler sent as ``task_id`` (its document stored)."""
    frame_id = f"v_webhook_{task_id}"
    db = firestore.Client(project=devstack.project)
    db.collection("frames").document(frame_id).set(
        sent_frame(frame_id, "scale", task_id, width=320, height=240)
    )
    body = scale_callback(task_id=task_id)
    body["task"]["metadata"] = {"frame_id": frame_id}
    body["task"]["unique_id"] = frame_id
    return body


def test_scale_callback_lands_in_firestore_once(devstack, unique):
    body = _frame_body(devstack, f"t-{unique}")
    first = _post_scale(devstack, "webhook", body)
    again = _post_scale(devstack, "webhook", body)

    assert (first.status_code, first.json()) == (200, {"stored": 1, "unchanged": 0})
    assert (again.status_code, again.json()) == (200, {"stored": 0, "unchanged": 1})
    db = firestore.Client(project=devstack.project)
    stored = db.collection("annotations").document(f"scale~t-{unique}").get().to_dict()
    assert stored["frame_id"] == f"v_webhook_t-{unique}"
    assert stored["boxes"][0]["x"] == pytest.approx(64 / 320)  # the frame is 320 pixels wide


def test_firestore_down_is_a_503_and_the_retry_loses_nothing(
    devstack_manager,
    devstack,
    unique,
):
    # A webhook instance whose Firestore is unreachable (a closed port), then the vendor's retry
    # reaching a healthy one.
    devstack_manager.start_function(
        WEBHOOK, {"FIRESTORE_EMULATOR_HOST": "127.0.0.1:9"}, f"webhook-down-{unique}"
    )
    body = _frame_body(devstack, f"t-down-{unique}")
    down = _post_scale(devstack, f"webhook-down-{unique}", body)
    assert down.status_code == 503
    assert "storage unavailable" in down.json()["error"]

    retried = _post_scale(devstack, "webhook", body)
    assert retried.status_code == 200
    db = firestore.Client(project=devstack.project)
    assert db.collection("annotations").document(f"scale~t-down-{unique}").get().exists


def test_a_callback_at_the_body_limit_is_stored_in_parts_on_the_emulator(devstack, unique):
    """~17,000 boxes, 2 MiB of JSON, ~3.3 MB stored: the emulator refuses a document over
    1 MiB ("maximum entity size is 1048576 bytes") as Firestore does; stored in parts, read
    back whole."""
    task_id = f"t-large-{unique}"
    task = _frame_body(devstack, task_id)["task"]
    body, count = scale_callback_at(
        Settings().webhook_max_bytes,
        320,
        240,
        task_id=task_id,
        metadata=task["metadata"],
        unique_id=task["unique_id"],
    )

    first = _post_scale(devstack, "webhook", body)
    again = _post_scale(devstack, "webhook", body)

    assert (first.status_code, first.json()) == (200, {"stored": 1, "unchanged": 0}), first.text
    assert (again.status_code, again.json()) == (200, {"stored": 0, "unchanged": 1})
    documents = FirestoreDocumentStore(devstack.project)
    head = documents.get("annotations", f"scale~{task_id}")
    assert head is not None and len(head["parts"]) >= 3
    whole = joined(documents, "annotations", head, AnnotationRecord.LISTS)
    assert len(whole["boxes"]) == count
    assert whole["boxes"][-1]["left"] == json.loads(body)["response"]["annotations"][-1]["left"]


def test_a_field_name_firestore_reserves_is_422_and_kept_to_replay(devstack, unique):
    task_id = f"t-reserved-{unique}"
    body = _frame_body(devstack, task_id)
    body["response"]["annotations"][0]["attributes"] = {"__name__": "x"}

    refused = _post_scale(devstack, "webhook", body)

    assert refused.status_code == 422, refused.text
    assert "reserved" in refused.json()["error"]
    db = firestore.Client(project=devstack.project)
    assert not db.collection("annotations").document(f"scale~{task_id}").get().exists
    raw = json.dumps(body).encode()  # as _post_scale sends it
    kept = db.collection("rejected_callbacks").document(f"scale~{hashlib.sha256(raw).hexdigest()}")
    record = kept.get().to_dict()
    assert record["http_status"] == 422 and record["vendor"] == "scale"
    assert b"".join(record["body"]) == raw


def _labelstudio_settings(devstack, labelstudio, project: str, webhook: bool) -> Settings:
    return Settings(
        backend=Backend.GCP,
        project=devstack.project,
        bigquery_endpoint=devstack.env["FRAMESIFT_BIGQUERY_ENDPOINT"],
        labeling_vendor=Vendor.LABELSTUDIO,
        labeling_image_url=ImageUrlMode.GCS,  # these frames have no JPEG to sign a URL for
        labelstudio_url=labelstudio.url,
        labelstudio_api_key=SecretStr(labelstudio.token),
        labelstudio_project=project,
        labelstudio_webhook_secret=SecretStr(devstack.env["FRAMESIFT_LABELSTUDIO_WEBHOOK_SECRET"]),
        webhook_url=devstack.env["FRAMESIFT_WEBHOOK_URL"] if webhook else None,
        labeling_classes=["car", "person"],
    )


def _label(devstack, labelstudio, project: str, webhook: bool) -> tuple[LabelStudioVendor, str]:
    settings = _labelstudio_settings(devstack, labelstudio, project, webhook)
    adapters = build_adapters(settings)
    vendor = LabelStudioVendor(adapters.documents, section(LabelStudioConfig, settings))
    kept = kept_frames(settings, 1, batch=project)
    adapters.documents.merge("frames", kept.frames[0].frame_id, {"id": kept.frames[0].frame_id})
    bootstrap.labeler(adapters, settings, vendor).handle(kept)
    frame = adapters.documents.get("frames", kept.frames[0].frame_id) or {}
    submit_box(vendor, int(frame["labeling_task_id"]))
    return vendor, kept.frames[0].frame_id


def _annotations_of(db: firestore.Client, frame_id: str) -> list[dict]:
    query = db.collection("annotations").where(
        filter=firestore.FieldFilter("frame_id", "==", frame_id)
    )
    return [doc.to_dict() for doc in query.stream()]


@pytest.mark.labelstudio
def test_label_studio_round_trip_through_its_own_webhook(devstack, labelstudio, unique):
    db = firestore.Client(project=devstack.project)
    _, frame_id = _label(devstack, labelstudio, f"roundtrip-{unique}", webhook=True)

    [annotation] = wait_for(lambda: _annotations_of(db, frame_id), "Label Studio's webhook")
    assert annotation["vendor"] == "labelstudio"
    assert annotation["status"] == "submitted"
    [box] = annotation["boxes"]
    assert box["label"] == "person"
    assert (box["left"], box["top"], box["width"], box["height"]) == (32, 48, 160, 60)
    assert (annotation["image_width"], annotation["image_height"]) == (320, 240)
    frame = db.collection("frames").document(frame_id).get().to_dict()
    assert frame["labeling_status"] == "labeled"


@pytest.mark.labelstudio
def test_reconciliation_recovers_an_annotation_whose_webhook_was_lost(
    devstack, labelstudio, unique
):
    db = firestore.Client(project=devstack.project)
    # No webhook registered for this project: every call is "lost".
    _, frame_id = _label(devstack, labelstudio, f"lost-{unique}", webhook=False)
    assert _annotations_of(db, frame_id) == []

    settings = _labelstudio_settings(devstack, labelstudio, f"lost-{unique}", webhook=False)
    documents = build_adapters(settings).documents
    result = reconcile(settings, documents)
    again = reconcile(settings, documents)

    assert result.stored >= 1
    assert again.stored == 0
    [annotation] = _annotations_of(db, frame_id)
    assert annotation["boxes"][0]["left"] == 32
    assert db.collection("frames").document(frame_id).get().to_dict()["labeling_status"] == (
        "labeled"
    )


@pytest.mark.slow
def test_200_concurrent_callbacks_about_20_frames_are_all_stored(devstack, unique):
    """Ten versions of each of 20 tasks at once (Scale retrying while an annotator edits): the
    store begins contended transactions again, so nearly every callback is stored at once; one
    that still meets contention gets 503 and is stored when Scale sends it again. Either way
    each task keeps its newest version and no answer is anything else."""
    bodies = []
    for index in range(20):
        body = _frame_body(devstack, f"t-load-{unique}-{index}")
        for version in range(10):
            again = json.loads(json.dumps(body))
            again["task"]["completed_at"] = f"2026-11-20T10:00:{version:02d}Z"
            again["response"]["annotations"][0]["left"] = 10 + version
            bodies.append(again)
    random.Random(7).shuffle(bodies)
    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda body: _post_scale(devstack, "webhook", body), bodies))

    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) <= {200, 503}, statuses
    print(f"200 concurrent callbacks: {dict(statuses)}")
    for body, answer in zip(bodies, answers, strict=True):
        if answer.status_code == 503:  # what Scale does with a 503: send it again
            assert _post_scale(devstack, "webhook", body).status_code == 200
    db = firestore.Client(project=devstack.project)
    for index in range(20):
        stored = db.collection("annotations").document(f"scale~t-load-{unique}-{index}").get()
        assert stored.to_dict()["boxes"][0]["left"] == 19  # version 9, the newest

"""Webhook: vendor callbacks through the HTTP function (functions-framework's create_app) on the
embedded stack: auth, validation, normalisation, duplicates, order, deletions, limits."""

from __future__ import annotations

import json

import functions_framework
import pytest

from framesift import runtime
from framesift.config import get_settings
from framesift.wiring import build_adapters
from tests.support.payloads import FRAME, ls_event, scale_box, scale_callback

SCALE_KEY = "scale-callback-key-for-tests"
LS_SECRET = "labelstudio-secret-for-tests"


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAMESIFT_BACKEND", "embedded")
    monkeypatch.setenv("FRAMESIFT_WORKDIR", str(tmp_path / "work"))
    monkeypatch.setenv("FRAMESIFT_SCALE_CALLBACK_AUTH_KEY", SCALE_KEY)
    monkeypatch.setenv("FRAMESIFT_LABELSTUDIO_WEBHOOK_SECRET", LS_SECRET)
    monkeypatch.setenv("FRAMESIFT_WEBHOOK_MAX_BYTES", "65536")
    for cached in (get_settings, runtime.adapters, runtime.callbacks):
        cached.cache_clear()
    documents = build_adapters(get_settings()).documents
    documents.create(
        "frames", FRAME, {"id": FRAME, "width": 640, "height": 480, "labeling_status": "requested"}
    )
    app = functions_framework.create_app("receive_callback", "functions/webhook/main.py")
    yield app.test_client(), documents
    for cached in (get_settings, runtime.adapters, runtime.callbacks):
        cached.cache_clear()


def post_scale(client, body, key=SCALE_KEY):
    headers = {"scale-callback-auth": key} if key is not None else {}
    return client.post("/scale", json=body, headers=headers)


def post_ls(client, body, secret=LS_SECRET):
    return client.post("/labelstudio", json=body, headers={"X-Framesift-Secret": secret})


def test_scale_callback_is_stored_normalised_and_marks_the_frame_labeled(client):
    http, documents = client
    response = post_scale(http, scale_callback())
    assert response.status_code == 200, response.json
    stored = documents.get("annotations", "scale~t1")
    assert stored["frame_id"] == FRAME
    assert stored["status"] == "submitted"
    assert (stored["image_width"], stored["image_height"]) == (640, 480)
    [box] = stored["boxes"]
    assert (box["label"], box["left"], box["top"], box["width"], box["height"]) == (
        "car",
        64,
        48,
        128,
        96,
    )
    assert (box["x"], box["y"], box["w"], box["h"]) == (0.1, 0.1, 0.2, 0.2)
    assert box["attributes"] == {"occluded": "no"}
    assert documents.get("frames", FRAME)["labeling_status"] == "labeled"


def test_duplicate_and_out_of_order_callbacks_keep_the_newest(client):
    http, documents = client
    newer = scale_callback(
        completed_at="2026-11-21T00:00:00Z", boxes=[scale_box("bus", 0, 0, 10, 10)]
    )
    older = scale_callback(completed_at="2026-11-20T00:00:00Z")
    assert post_scale(http, newer).json == {"stored": 1, "unchanged": 0}
    assert post_scale(http, newer).json == {"stored": 0, "unchanged": 1}
    assert post_scale(http, older).json == {"stored": 0, "unchanged": 1}
    [box] = documents.get("annotations", "scale~t1")["boxes"]
    assert box["label"] == "bus"


def test_scale_error_and_cancellation_are_recorded_as_such(client):
    http, documents = client
    errored = scale_callback(task_id="t-err", status="error", boxes=[])
    errored["response"] = {"error": "Image could not be loaded"}
    assert post_scale(http, errored).status_code == 200
    stored = documents.get("annotations", "scale~t-err")
    assert (stored["status"], stored["error"]) == ("error", "Image could not be loaded")
    assert documents.get("frames", FRAME)["labeling_status"] == "labeling_failed"
    cancelled = scale_callback(task_id="t-x", status="canceled", boxes=[])
    assert post_scale(http, cancelled).status_code == 200
    assert documents.get("annotations", "scale~t-x")["status"] == "cancelled"


def test_wrong_or_missing_auth_is_401_stores_nothing_and_logs_no_secret(client, capsys):
    http, documents = client
    for key in ("not-the-key", "", None):
        response = post_scale(http, scale_callback(), key=key)
        assert response.status_code == 401
        assert "scale-callback-auth" in response.json["error"]
    assert post_ls(http, ls_event(), secret="nope").status_code == 401
    assert documents.get("annotations", "scale~t1") is None
    assert documents.get("annotations", "labelstudio~7") is None
    assert documents.get("frames", FRAME)["labeling_status"] == "requested"
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    refusals = [r for r in logged if "header missing or wrong" in r["message"]]
    assert [r["severity"] for r in refusals] == ["WARNING"] * 4
    assert "not-the-key" not in json.dumps(logged) and SCALE_KEY not in json.dumps(logged)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "not JSON"),
        (json.dumps({"task_id": 5}).encode(), 422, "task"),
        (json.dumps(scale_callback(boxes=[{"label": "car", "left": "x"}])).encode(), 422, "left"),
    ],
)
def test_malformed_bodies_are_4xx_with_a_precise_message(client, body, status, message):
    http, documents = client
    response = http.post(
        "/scale",
        data=body,
        headers={"scale-callback-auth": SCALE_KEY, "Content-Type": "application/json"},
    )
    assert response.status_code == status
    assert message in response.json["error"]
    assert documents.get("annotations", "scale~t1") is None


def test_unknown_frames_oversized_bodies_routes_and_methods_are_refused(client):
    http, documents = client
    unknown = scale_callback(task_id="t-unknown")
    unknown["task"]["metadata"] = {"frame_id": "v_never_sent"}
    unknown["task"]["unique_id"] = "v_never_sent"
    response = post_scale(http, unknown)
    assert response.status_code == 422 and "unknown frame" in response.json["error"]
    assert documents.get("annotations", "scale~t-unknown") is None

    huge = scale_callback(boxes=[scale_box("car", i, i, 1, 1) for i in range(2000)])
    assert post_scale(http, huge).status_code == 413
    assert documents.get("annotations", "scale~t1") is None
    assert http.get("/scale").status_code == 405
    assert http.post("/other", json={}).status_code == 404


def test_label_studio_boxes_are_converted_from_percent_to_pixels(client):
    http, documents = client
    assert post_ls(http, ls_event()).status_code == 200
    stored = documents.get("annotations", "labelstudio~7")
    assert (stored["task_id"], stored["annotator"], stored["status"]) == ("3", "1", "submitted")
    [box] = stored["boxes"]
    assert (box["left"], box["top"], box["width"], box["height"]) == (64, 96, 160, 240)
    assert (box["x"], box["y"], box["w"], box["h"]) == (0.1, 0.2, 0.25, 0.5)
    assert box["label"] == "person"
    assert documents.get("frames", FRAME)["labeling_status"] == "labeled"


def test_label_studio_update_then_delete_then_late_update(client):
    http, documents = client
    post_ls(http, ls_event())
    updated = ls_event("ANNOTATION_UPDATED", updated_at="2026-11-20T11:00:00Z")
    updated["annotation"]["result"][0]["value"]["rectanglelabels"] = ["bicycle"]
    assert post_ls(http, updated).json == {"stored": 1, "unchanged": 0}
    assert documents.get("annotations", "labelstudio~7")["boxes"][0]["label"] == "bicycle"

    deleted = {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 7}], "project": {"id": 1}}
    assert post_ls(http, deleted).status_code == 200
    tombstone = documents.get("annotations", "labelstudio~7")
    assert tombstone["status"] == "deleted"
    assert tombstone["frame_id"] == FRAME  # kept from the stored annotation
    assert post_ls(http, updated).json == {"stored": 0, "unchanged": 1}  # no resurrection
    assert documents.get("annotations", "labelstudio~7")["status"] == "deleted"


def test_a_cancelled_label_studio_annotation_is_recorded_as_cancelled(client):
    http, documents = client
    skipped = ls_event(annotation_id=8)
    skipped["annotation"]["was_cancelled"] = True
    skipped["annotation"]["result"] = []
    assert post_ls(http, skipped).status_code == 200
    assert documents.get("annotations", "labelstudio~8")["status"] == "cancelled"

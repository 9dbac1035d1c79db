"""Webhook: vendor callbacks through the HTTP function (functions-framework's create_app) on the
embedded stack: auth, validation, normalisation, duplicates, order, deletions, limits."""

from __future__ import annotations

import json

import functions_framework
import pytest

from framesift import runtime
from framesift.bootstrap import build_adapters
from framesift.config import get_settings
from tests.support.payloads import (
    FRAME,
    LS_FRAME,
    ls_event,
    scale_box,
    scale_callback,
    sent_frame,
    store_sent_frames,
)

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
    store_sent_frames(documents)
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
        completed_at="2026-11-21T00:00:00Z", boxes=[scale_box("truck", 0, 0, 10, 10)]
    )
    older = scale_callback(completed_at="2026-11-20T00:00:00Z")
    assert post_scale(http, newer).json == {"stored": 1, "unchanged": 0}
    assert post_scale(http, newer).json == {"stored": 0, "unchanged": 1}
    assert post_scale(http, older).json == {"stored": 0, "unchanged": 1}
    [box] = documents.get("annotations", "scale~t1")["boxes"]
    assert box["label"] == "truck"


def test_scale_error_and_cancellation_are_recorded_as_such(client):
    http, documents = client
    errored = scale_callback(status="error", boxes=[])
    errored["response"] = {"error": "Image could not be loaded"}
    assert post_scale(http, errored).status_code == 200
    stored = documents.get("annotations", "scale~t1")
    assert (stored["status"], stored["error"]) == ("error", "Image could not be loaded")
    assert documents.get("frames", FRAME)["labeling_status"] == "labeling_failed"
    cancelled = scale_callback(status="canceled", boxes=[], completed_at="2026-11-21T00:00:00Z")
    assert post_scale(http, cancelled).status_code == 200
    assert documents.get("annotations", "scale~t1")["status"] == "cancelled"
    assert documents.get("frames", FRAME)["labeling_status"] == "labeling_cancelled"


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
    # The whole path is the route: one ending in /scale is not it, even with a callback's body.
    nested = http.post(
        "/x/y/scale", json=scale_callback(), headers={"scale-callback-auth": SCALE_KEY}
    )
    assert nested.status_code == 404 and "no such route '/x/y/scale'" in nested.json["error"]


def test_label_studio_boxes_are_converted_from_percent_to_pixels(client):
    http, documents = client
    assert post_ls(http, ls_event()).status_code == 200
    stored = documents.get("annotations", "labelstudio~7")
    assert (stored["task_id"], stored["annotator"], stored["status"]) == ("3", "1", "submitted")
    [box] = stored["boxes"]
    assert (box["left"], box["top"], box["width"], box["height"]) == (64, 96, 160, 240)
    assert (box["x"], box["y"], box["w"], box["h"]) == (0.1, 0.2, 0.25, 0.5)
    assert box["label"] == "person"
    assert documents.get("frames", LS_FRAME)["labeling_status"] == "labeled"


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
    # Everything stored is kept: the frame, the annotator, the image size, the creation time.
    assert tombstone["frame_id"] == LS_FRAME
    assert (tombstone["annotator"], tombstone["image_width"], tombstone["image_height"]) == (
        "1",
        640,
        480,
    )
    assert tombstone["vendor_created_at"].startswith("2026-11-20T09:00:00")
    assert documents.get("frames", LS_FRAME)["labeling_status"] == "requested"
    assert post_ls(http, updated).json == {"stored": 0, "unchanged": 1}  # no resurrection
    assert documents.get("annotations", "labelstudio~7")["status"] == "deleted"


def test_a_cancelled_label_studio_annotation_is_recorded_as_cancelled(client):
    http, documents = client
    skipped = ls_event(annotation_id=8)
    skipped["annotation"]["was_cancelled"] = True
    skipped["annotation"]["result"] = []
    assert post_ls(http, skipped).status_code == 200
    assert documents.get("annotations", "labelstudio~8")["status"] == "cancelled"


# --- Whose a callback is (#18, point 8) ---------------------------------------------------


def test_a_callback_must_be_about_the_task_framesift_created_for_the_frame(client):
    http, documents = client
    documents.create("frames", "v_dropped", {"id": "v_dropped", "dedup_status": "dropped"})
    documents.create("frames", "v_waiting", {"id": "v_waiting", "dedup_status": "kept"})
    documents.create(
        "frames",
        "v_skipped",
        {
            **sent_frame("v_skipped", "scale", "t9"),
            "labeling_status": "skipped",
            "labeling_task_id": None,
        },
    )
    documents.create("frames", "v_ls", sent_frame("v_ls", "labelstudio", "44"))

    def about(frame_id, task_id="t1"):
        return scale_callback(task_id=task_id, unique_id=frame_id, metadata={"frame_id": frame_id})

    cases = [
        (scale_callback(task_id="t-other"), 422, "is not the task framesift created"),
        (about("v_dropped"), 422, "never sent to scale (dropped by dedup)"),
        (about("v_skipped"), 422, "never sent to scale (labeling skipped)"),
        (about("v_ls"), 422, "never sent to scale"),
        (about(None), 422, "names no frame"),
        (about("v_waiting"), 409, "no task recorded yet"),
    ]
    for body, status, message in cases:
        response = post_scale(http, body)
        assert (response.status_code, message in response.json["error"]) == (status, True), (
            response.json
        )
    foreign_ls = ls_event(annotation_id=70)
    foreign_ls["task"]["id"] = 99
    response = post_ls(http, foreign_ls)
    assert response.status_code == 422 and "'99' is not the task" in response.json["error"]
    assert documents.get("annotations", "scale~t-other") is None
    assert documents.get("annotations", "labelstudio~70") is None
    [box] = (post_scale(http, scale_callback()), documents.get("annotations", "scale~t1"))[1][
        "boxes"
    ]
    assert box["label"] == "car"  # the frame's own task is stored, once


# --- Values (#18, point 12) ----------------------------------------------------------------


def _scale_box_json(**values) -> bytes:
    box = {**scale_box("car", 64, 48, 128, 96), **values}
    # Python's JSON writer spells non-finite numbers as NaN and Infinity, as a sender might.
    return json.dumps(scale_callback(boxes=[box])).encode()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"left": float("nan")}, "finite number"),
        ({"width": float("inf")}, "finite number"),
        ({"height": float("-inf")}, "finite number"),
        ({"left": 1e308}, "past the image's edge"),
        ({"width": -10}, "has no area"),
        ({"height": 0}, "has no area"),
        ({"left": 600, "width": 100}, "past the image's edge"),
        ({"label": ""}, "is not one of the configured classes"),
        ({"label": "car\u0000"}, "is not one of the configured classes"),
        ({"label": "x" * 10_000}, "is not one of the configured classes"),
        ({"label": "zebra"}, "(bicycle, car, person, truck)"),
    ],
)
def test_values_that_cannot_be_labels_are_422_and_stored_nowhere(client, values, message):
    http, documents = client
    response = http.post(
        "/scale",
        data=_scale_box_json(**values),
        headers={"scale-callback-auth": SCALE_KEY, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert message in response.json["error"]
    assert len(response.json["error"]) < 400  # a 10 KB label is not echoed back
    assert documents.get("annotations", "scale~t1") is None
    assert documents.get("frames", FRAME)["labeling_status"] == "requested"


def test_a_box_just_past_the_edge_is_clipped_and_one_further_is_refused(client):
    http, documents = client
    # 640 x 480 frame, tolerance 1 %: 4 px over the right edge is clipped to it.
    assert (
        post_scale(http, scale_callback(boxes=[scale_box("car", 600, -3, 44, 50)])).status_code
        == 200
    )
    [box] = documents.get("annotations", "scale~t1")["boxes"]
    assert (box["left"], box["top"], box["width"], box["height"]) == (600, 0, 40, 47)
    assert (box["x"], box["w"]) == (600 / 640, 40 / 640)
    late = scale_callback(
        boxes=[scale_box("car", 600, 0, 48, 10)], completed_at="2026-11-21T00:00:00Z"
    )
    assert post_scale(http, late).status_code == 422


def test_label_studio_sizes_and_rotated_boxes_are_checked(client):
    http, documents = client
    huge = ls_event(annotation_id=20)
    huge["annotation"]["result"][0]["original_width"] = 10**30
    response = post_ls(http, huge)
    assert response.status_code == 422 and "original_width" in response.json["error"]

    rotated = ls_event(annotation_id=21)
    # 25 % x 50 % of 640 x 480 turned 30 degrees about (256, 96): every corner stays inside.
    rotated["annotation"]["result"][0]["value"].update({"x": 40, "rotation": 30})
    assert post_ls(http, rotated).status_code == 200
    [box] = documents.get("annotations", "labelstudio~21")["boxes"]
    assert (box["x"], box["y"], box["w"], box["h"], box["rotation"]) == (0.4, 0.2, 0.25, 0.5, 30)

    outside = ls_event(annotation_id=22)
    outside["annotation"]["result"][0]["value"].update({"x": 90, "rotation": 45})
    response = post_ls(http, outside)
    assert response.status_code == 422 and "rotation 45" in response.json["error"]


# --- Which label counts (#18, points 10 and 13) ------------------------------------------


def test_a_later_skip_or_error_leaves_a_labeled_frame_labeled(client):
    http, documents = client
    assert post_ls(http, ls_event(annotation_id=7)).status_code == 200
    skipped = ls_event(annotation_id=8, updated_at="2026-11-20T12:00:00Z")
    skipped["annotation"].update({"was_cancelled": True, "result": [], "completed_by": 2})
    assert post_ls(http, skipped).status_code == 200
    frame = documents.get("frames", LS_FRAME)
    assert (frame["labeling_status"], frame["labeling_annotations"]) == (
        "labeled",
        [
            {"id": "labelstudio~7", "status": "submitted"},
            {"id": "labelstudio~8", "status": "cancelled"},
        ],
    )
    gone = {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 7}], "project": {"id": 1}}
    assert post_ls(http, gone).status_code == 200
    frame = documents.get("frames", LS_FRAME)
    assert (frame["labeling_status"], frame["labeling_annotations"]) == (
        "labeling_cancelled",
        [{"id": "labelstudio~8", "status": "cancelled"}],
    )


def test_a_deletion_of_thousands_of_unknown_ids_writes_nothing(client):
    http, documents = client
    post_ls(http, ls_event(annotation_id=7))
    ids = [{"id": 7}] + [{"id": 100_000 + i} for i in range(2000)]
    response = post_ls(http, {"action": "ANNOTATIONS_DELETED", "annotations": ids})
    assert response.status_code == 200
    assert response.json == {"stored": 1, "unchanged": 0, "unknown_deletions": 2000}
    stored = documents.get_many("annotations", [f"labelstudio~{i['id']}" for i in ids])
    assert list(stored) == ["labelstudio~7"] and stored["labelstudio~7"]["status"] == "deleted"


# --- Shapes (#18, point 5) -----------------------------------------------------------------


def _ls_region(kind: str, value: dict, region_id: str) -> dict:
    return {
        "id": region_id,
        "type": kind,
        "from_name": kind.removesuffix("labels"),
        "to_name": "image",
        "original_width": 640,
        "original_height": 480,
        "value": value,
    }


def test_label_studio_polygons_keypoints_and_masks_are_stored(client):
    http, documents = client
    event = ls_event(annotation_id=40)
    event["annotation"]["result"] += [
        _ls_region(
            "polygonlabels",
            {"points": [[10, 10], [50, 10], [30, 40]], "polygonlabels": ["car"]},
            "p1",
        ),
        _ls_region(
            "keypointlabels", {"x": 25, "y": 50, "width": 0.5, "keypointlabels": ["person"]}, "k1"
        ),
        _ls_region(
            "brushlabels", {"format": "rle", "rle": [0, 1, 2], "brushlabels": ["car"]}, "m1"
        ),
    ]
    assert post_ls(http, event).status_code == 200
    box, polygon, keypoint, mask = documents.get("annotations", "labelstudio~40")["boxes"]
    assert box["shape"] == "box"
    assert polygon["shape"] == "polygon"
    assert polygon["points"] == pytest.approx([0.1, 0.1, 0.5, 0.1, 0.3, 0.4])
    assert (polygon["x"], polygon["y"], polygon["w"], polygon["h"]) == pytest.approx(
        (0.1, 0.1, 0.4, 0.3)
    )
    assert (polygon["left"], polygon["width"]) == pytest.approx((64, 256))
    assert keypoint["shape"] == "keypoint" and keypoint["points"] == pytest.approx([0.25, 0.5])
    assert (keypoint["w"], keypoint["h"]) == (0, 0)
    assert mask["shape"] == "mask" and mask["rle"] == [0, 1, 2]


def test_regions_no_export_holds_are_recorded_not_dropped(client):
    http, documents = client
    event = ls_event(annotation_id=41)
    event["annotation"]["result"] = [
        _ls_region(
            "ellipselabels",
            {"x": 5, "y": 5, "radiusX": 2, "radiusY": 3, "ellipselabels": ["car"]},
            "e1",
        ),
        {
            "id": "c1",
            "type": "choices",
            "from_name": "q",
            "to_name": "image",
            "value": {"choices": ["day"]},
        },
    ]
    assert post_ls(http, event).status_code == 200
    stored = documents.get("annotations", "labelstudio~41")
    # Not "empty": an ellipse is not a negative. The choice is an answer, not a region.
    assert (stored["status"], stored["boxes"], stored["unsupported"]) == (
        "submitted",
        [],
        ["ellipselabels e1"],
    )


def test_scale_polygons_and_points_are_stored_and_lines_recorded(client):
    http, documents = client
    body = scale_callback(
        boxes=[
            {
                "uuid": "p",
                "type": "polygon",
                "label": "car",
                "vertices": [{"x": 64, "y": 48}, {"x": 320, "y": 48}, {"x": 192, "y": 240}],
            },
            {"uuid": "k", "type": "point", "label": "person", "x": 160, "y": 120},
            {
                "uuid": "l",
                "type": "line",
                "label": "car",
                "vertices": [{"x": 1, "y": 1}, {"x": 5, "y": 5}],
            },
        ]
    )
    assert post_scale(http, body).status_code == 200
    stored = documents.get("annotations", "scale~t1")
    polygon, point = stored["boxes"]
    assert polygon["points"] == pytest.approx([0.1, 0.1, 0.5, 0.1, 0.3, 0.5])
    assert point["points"] == pytest.approx([0.25, 0.25])
    assert stored["unsupported"] == ["line l"]


@pytest.mark.parametrize(
    ("region", "message"),
    [
        ({"type": "polygon", "vertices": [{"x": 1, "y": 1}, {"x": 5, "y": 5}]}, "three vertices"),
        (
            {"type": "polygon", "vertices": [{"x": 1, "y": 1}, {"x": 5, "y": 5}, {"x": 9, "y": 9}]},
            "has no area",
        ),
        (
            {
                "type": "polygon",
                "vertices": [{"x": 1, "y": 1}, {"x": 900, "y": 5}, {"x": 9, "y": 90}],
            },
            "past the image's edge",
        ),
        ({"type": "point", "x": 10, "y": float("nan")}, "finite number"),
    ],
)
def test_shapes_that_cannot_be_labels_are_422(client, region, message):
    http, documents = client
    body = json.dumps(scale_callback(boxes=[{"uuid": "r", "label": "car", **region}])).encode()
    response = http.post(
        "/scale",
        data=body,
        headers={"scale-callback-auth": SCALE_KEY, "Content-Type": "application/json"},
    )
    assert response.status_code == 422 and message in response.json["error"]
    assert documents.get("annotations", "scale~t1") is None

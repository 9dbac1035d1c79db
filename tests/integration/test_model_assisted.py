"""Model-assisted labeling, embedded: pre-labels made once per frame and sent with the tasks,
the budget's round spent once whatever the redeliveries, the model's agreement with the human
labels from the warehouse's views, exactly, and a model that cannot load dead-lettered."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from framesift import bootstrap
from framesift.cli import app
from framesift.documents import Box
from framesift.embedded import EmbeddedPipeline
from framesift.events import PubSubMessage
from framesift.messages import ROUND_MESSAGE
from framesift.topology import Collections, Topics
from framesift_dev.onnxmodels import fixed_yolo
from tests.support.labels import annotate

# The model sees, on every frame, a car scored 0.9 and a person scored 0.55 (centre x, centre y,
# width, height in the 640x640 input; then each class's score). On the 320x240 test clip
# (scale 2, 80 px of padding above) they are these boxes, in fractions of the frame.
HEAD = np.array([[320, 320, 100, 80, 0.9, 0.05], [100, 200, 50, 100, 0.1, 0.55]]).T
CAR = (135 / 320, 100 / 240, 50 / 320, 40 / 240)
PERSON = (37.5 / 320, 35 / 240, 25 / 320, 50 / 240)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return fixed_yolo(tmp_path / "detector.onnx", HEAD, ["car", "person", "dog"])


def _settings(embedded_settings, model, **more):
    return embedded_settings.model_copy(
        update={"model_uri": str(model), "labeling_classes": ["car", "person"], **more}
    )


def _manifest(pipeline: EmbeddedPipeline) -> list[dict]:
    bucket = pipeline.settings.frames_bucket
    return [
        json.loads(line)
        for blob in pipeline.blobs.list(bucket, "manifests/")
        if blob.name.endswith(".jsonl")
        for line in pipeline.blobs.get(bucket, blob.name).decode().splitlines()
    ]


def exported_quality(pipeline: EmbeddedPipeline) -> tuple[dict, dict]:
    """Export, then the warehouse's model_quality rows of the car and the person."""
    bootstrap.exporter(pipeline.adapters, pipeline.settings).run()
    quality = {
        row["label"]: row
        for row in pipeline.adapters.warehouse.query("SELECT * FROM {dataset}.model_quality")
    }
    return quality["car"], quality["person"]


def report(workdir: Path, out: Path) -> str:
    """``framesift report`` on an embedded run's folder; its output."""
    result = CliRunner().invoke(app, ["report", "--workdir", str(workdir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return result.output


def _docs(pipeline: EmbeddedPipeline, collection: str) -> list[dict]:
    return list(pipeline.adapters.documents.changed_since(collection, None))


def test_prelabels_are_made_once_and_a_rounds_budget_is_spent_once(media, embedded_settings, model):
    settings = _settings(embedded_settings, model, labeling_budget=2, labeling_audit_fraction=0.5)
    pipeline = EmbeddedPipeline(settings)
    summary = pipeline.run([media["clip_5s_25fps"]], "cam")

    frames = [f for f in _docs(pipeline, Collections.FRAMES) if f.get("dedup_status") == "kept"]
    predictions = [a for a in _docs(pipeline, Collections.ANNOTATIONS) if a["source"] == "model"]
    assert len(frames) >= 4 and len(predictions) == len(frames)
    for frame in frames:
        assert frame["model_prediction_id"] == f"model~{frame['model_version']}~{frame['id']}"
        assert frame["model_uncertainty"] == pytest.approx(0.9)  # the person at 0.55
    requested = sorted(f["id"] for f in frames if f["labeling_status"] == "requested")
    assert sorted(f["labeling_selected_as"] for f in frames if f["id"] in requested) == [
        "audit",
        "priority",
    ]
    skipped = [f for f in frames if f["labeling_status"] == "skipped"]
    assert len(skipped) == len(frames) - 2
    assert all("budget of 2" in f["labeling_skip_reason"] for f in skipped)
    assert summary.tasks == 2

    # Every message again, twice: no new task, no budget spent again, no second pre-label.
    received = {a["id"]: a["received_at"] for a in predictions}
    for _ in range(2):
        for topic in (Topics.FRAMES_KEPT, Topics.LABELING_ROUNDS):
            for message in list(pipeline.publisher.published[topic]):
                pipeline.publisher.publish(topic, message.data, message.attributes)
        pipeline.publisher.drain()
    (round_message,) = {
        m.attributes[ROUND_MESSAGE] for m in pipeline.publisher.published[Topics.LABELING_ROUNDS]
    }
    budget = pipeline.adapters.documents.get(Collections.LABELING_ROUNDS, round_message)
    assert budget == {**budget, "budget": 2, "spent": 2}
    lines = _manifest(pipeline)
    assert sorted(line["framesift-frame-id"] for line in lines) == requested
    again = {a["id"]: a["received_at"] for a in _docs(pipeline, Collections.ANNOTATIONS)}
    assert again == received

    # The manifest's lines carry the pre-label, in the frame's pixels and as Label Studio's.
    prediction = lines[0]["framesift-prediction"]
    car, person = prediction["boxes"]
    assert (car["label"], car["left"], car["top"], car["width"], car["height"]) == (
        "car",
        135.0,
        100.0,
        50.0,
        40.0,
    )
    assert person["score"] == pytest.approx(0.55)
    result = prediction["label_studio"]["result"][0]
    assert result["value"]["x"] == pytest.approx(CAR[0] * 100)
    assert prediction["label_studio"]["score"] == pytest.approx(0.1)


def test_agreement_with_the_humans_is_in_the_warehouse_and_the_report(
    media, embedded_settings, model, tmp_path
):
    settings = _settings(embedded_settings, model)
    pipeline = EmbeddedPipeline(settings)
    pipeline.run([media["clip_5s_25fps"]], "cam")
    frames = sorted(
        f["id"] for f in _docs(pipeline, Collections.FRAMES) if f.get("dedup_status") == "kept"
    )
    documents = pipeline.adapters.documents

    def box(label, x, y, w, h):
        return Box(label=label, x=x, y=y, w=w, h=h)

    # Frame 1 agrees; frame 2 has no person; frame 3's car is elsewhere.
    annotate(documents, frames[0], [box("car", *CAR), box("person", *PERSON)])
    annotate(documents, frames[1], [box("car", *CAR)])
    annotate(documents, frames[2], [box("car", 0.8, 0.8, 0.1, 0.1), box("person", *PERSON)])
    car, person = exported_quality(pipeline)
    assert (car["tp"], car["fp"], car["fn"]) == (2, 1, 1)
    assert (person["tp"], person["fp"], person["fn"]) == (2, 1, 0)
    assert car["precision"] == pytest.approx(2 / 3) and car["recall"] == pytest.approx(2 / 3)
    assert person["recall"] == pytest.approx(1.0)
    # Car: tp, tp, fp at one score (ties in frame order): precisions 1, 1 -> (1 + 1) / 3.
    # Person: tp, fp, tp: precisions 1, then 2/3 -> (1 + 2/3) / 2.
    assert car["ap50"] == pytest.approx(2 / 3)
    assert person["ap50"] == pytest.approx(5 / 6)
    (overall,) = pipeline.adapters.warehouse.query("SELECT * FROM {dataset}.model_map")
    assert overall["map50"] == pytest.approx((2 / 3 + 5 / 6) / 2)
    worst = pipeline.adapters.warehouse.query(
        "SELECT frame_id, disagreements FROM {dataset}.model_disagreements"
        " WHERE disagreements > 0 ORDER BY disagreements DESC"
    )
    assert worst == [
        {"frame_id": frames[2], "disagreements": 2},
        {"frame_id": frames[1], "disagreements": 1},
    ]

    out = tmp_path / "report"
    output = report(settings.workdir, out)
    assert "model against humans" in output and "0.750" in output
    assert "Model against humans" in (out / "index.html").read_text()


def test_warehouse_ap_is_vocs_all_point_interpolated_average_precision(embedded_settings):
    """Five boxes at distinct scores (tp, fp, tp, fp, tp) and one missed: precisions 1, 1/2,
    2/3, 1/2, 3/5; interpolated at the true positives 1, 2/3, 3/5; over 4 human boxes."""
    from framesift.bootstrap import build_adapters
    from framesift.warehouse.schemas import (
        ALL_TABLES,
        ANNOTATIONS_TABLE,
        FRAMES_TABLE,
        MODEL_MATCHES_TABLE,
    )
    from framesift.warehouse.views import views

    warehouse = build_adapters(embedded_settings).warehouse
    warehouse.ensure_tables(ALL_TABLES)
    warehouse.ensure_views(views(0.0))
    now = "2026-12-01T00:00:00+00:00"
    common = {"created_at": now, "updated_at": now, "deleted": False}
    warehouse.upsert(
        FRAMES_TABLE,
        [
            {
                **common,
                "id": "f1",
                "source": "video",
                "video_doc_id": "v",
                "collector": "cam",
                "video_id": "v",
                "source_generation": 1,
                "timestamp_ms": 0,
                "bucket": "b",
                "object_name": "f1.jpg",
            }
        ],
    )
    warehouse.upsert(
        ANNOTATIONS_TABLE,
        [
            {
                **common,
                "id": "scale~a",
                "frame_id": "f1",
                "vendor": "scale",
                "annotation_id": "a",
                "status": "submitted",
                "vendor_updated_at": now,
            }
        ],
    )
    outcomes = [("tp", 0.95), ("fp", 0.9), ("tp", 0.8), ("fp", 0.6), ("tp", 0.5), ("fn", None)]
    warehouse.upsert(
        MODEL_MATCHES_TABLE,
        [
            {
                **common,
                "id": f"scale~a#{slot}",
                "annotation_id": "scale~a",
                "frame_id": "f1",
                "vendor": "scale",
                "model_version": "v1",
                "label": "car",
                "outcome": outcome,
                "score": score,
            }
            for slot, (outcome, score) in enumerate(outcomes)
        ],
    )
    (row,) = warehouse.query("SELECT * FROM {dataset}.model_quality")
    assert row["ap50"] == pytest.approx((1 + 2 / 3 + 3 / 5) / 4)
    assert (row["precision"], row["recall"]) == (pytest.approx(3 / 5), pytest.approx(3 / 4))


def test_a_model_that_cannot_load_dead_letters_its_batch_with_why(
    media, embedded_settings, tmp_path
):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is no model")
    pipeline = EmbeddedPipeline(_settings(embedded_settings, junk))
    summary = pipeline.run([media["clip_5s_25fps"]], "cam")

    assert summary.dead_letters >= 1
    kept = [f for f in _docs(pipeline, Collections.FRAMES) if f.get("dedup_status") == "kept"]
    assert kept and all(f["labeling_status"] == "labeling_failed" for f in kept)
    assert "onnxruntime can load" in kept[0]["labeling_error"]


def test_a_broken_frame_document_fails_alone_and_the_round_sends_the_others(
    media, embedded_settings, model
):
    settings = _settings(embedded_settings, model, labeling_budget=100)
    pipeline = EmbeddedPipeline(settings)
    # Sample and queue only: the round comes after the document is broken.
    pipeline.upload(media["clip_5s_25fps"], "cam")
    pipeline.publisher.drain()
    documents = pipeline.adapters.documents
    queued = documents.where(Collections.FRAMES, "labeling_status", "queued")
    assert len(queued) >= 3
    broken = queued[0]["id"]
    documents.merge(Collections.FRAMES, broken, {"sha256": None, "phash": None})

    labeler = bootstrap.handler("labeler", pipeline.adapters, settings)
    round_result = labeler.handle(
        PubSubMessage.of(json.dumps({"round": "r1"}).encode(), {ROUND_MESSAGE: "r1"}, "round-1")
    )

    assert round_result.requested == len(queued) - 1
    failed = documents.get(Collections.FRAMES, broken) or {}
    assert failed["labeling_status"] == "labeling_failed"
    assert "cannot be sent" in failed["labeling_error"]
    sent = [f for f in queued if f["id"] != broken]
    assert all(
        (documents.get(Collections.FRAMES, f["id"]) or {})["labeling_status"] == "requested"
        for f in sent
    )

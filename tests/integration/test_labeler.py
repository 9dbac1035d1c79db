"""Labeler: one task per kept frame at each vendor, whatever the redeliveries; vendor errors.

Embedded stack here (folder buckets, SQLite, in-process Pub/Sub); Scale is the local fake at
the HTTP level (tests/support/scale.py). Label Studio (real) and the emulated stack have their
own modules.
"""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from framesift import bootstrap
from framesift.bootstrap import build_adapters
from framesift.config import Vendor, section
from framesift.embedded import EmbeddedPipeline
from framesift.errors import VendorUnavailable
from framesift.messages import KeptFrames
from framesift.topology import Collections, Topics
from framesift.vendors.scale import ScaleConfig, ScaleVendor
from tests.support.payloads import kept_frames
from tests.support.scale import API_KEY


@pytest.fixture
def fake_scale(scale):
    scale.reset()
    return scale


def _scale_settings(settings, scale, api_key=API_KEY, **overrides):
    return settings.model_copy(
        update={
            "labeling_vendor": Vendor.SCALE,
            "scale_api_key": SecretStr(api_key),
            "scale_api_url": scale.url,
            "webhook_url": "https://hooks.example.test/framesift",
            "labeling_retry_seconds": 3.0,
            **overrides,
        }
    )


def _kept_frame_ids(pipeline: EmbeddedPipeline) -> list[str]:
    return [
        frame.frame_id
        for message in pipeline.publisher.published[Topics.FRAMES_KEPT]
        for frame in KeptFrames.model_validate_json(message.data).frames
    ]


def _redeliver_kept(pipeline: EmbeddedPipeline, times: int) -> None:
    """Publish every kept-frames message again, as Pub/Sub does when it redelivers."""
    originals = list(pipeline.publisher.published[Topics.FRAMES_KEPT])
    for _ in range(times):
        for message in originals:
            pipeline.publisher.publish(Topics.FRAMES_KEPT, message.data, message.attributes)
    pipeline.publisher.drain()


def _frame(pipeline: EmbeddedPipeline, frame_id: str) -> dict:
    doc = pipeline.adapters.documents.get("frames", frame_id)
    assert doc is not None
    return doc


def test_manifest_lists_each_kept_frame_once_in_both_formats(media, embedded_settings):
    pipeline = EmbeddedPipeline(embedded_settings)
    summary = pipeline.run([media["three_shots"]], "cam")
    kept = _kept_frame_ids(pipeline)
    assert len(kept) == summary.kept == summary.tasks >= 3

    _redeliver_kept(pipeline, 2)

    bucket = embedded_settings.frames_bucket
    parts = sorted(b.name for b in pipeline.blobs.list(bucket, "manifests/"))
    lines = [
        json.loads(line)
        for name in parts
        if name.endswith(".jsonl")
        for line in pipeline.blobs.get(bucket, name).decode().splitlines()
    ]
    assert sorted(line["framesift-frame-id"] for line in lines) == sorted(kept)
    for line in lines:
        frame = _frame(pipeline, line["framesift-frame-id"])
        assert line["source-ref"] == f"gs://{bucket}/{frame['object_name']}"
        assert line["framesift-metadata"]["collector"] == "cam"
        assert line["framesift-metadata"]["timestamp_ms"] == frame["timestamp_ms"]
        assert frame["labeling_status"] == "requested"
        assert frame["labeling_vendor"] == "manifest"
    label_studio = [
        task
        for name in parts
        if name.endswith(".labelstudio.json")
        for task in json.loads(pipeline.blobs.get(bucket, name))
    ]
    assert sorted(t["data"]["frame_id"] for t in label_studio) == sorted(kept)
    assert all(t["data"]["image"].startswith(f"gs://{bucket}/") for t in label_studio)


def test_scale_gets_one_task_per_frame_with_its_request_shape(media, embedded_settings, fake_scale):
    settings = _scale_settings(embedded_settings, fake_scale)
    pipeline = EmbeddedPipeline(settings)
    pipeline.run([media["three_shots"]], "cam")
    kept = _kept_frame_ids(pipeline)

    _redeliver_kept(pipeline, 2)

    assert sorted(t["unique_id"] for t in fake_scale.tasks.values()) == sorted(kept)
    creates = [r for r in fake_scale.requests if r == ("POST", "/v1/task/imageannotation")]
    assert len(creates) == len(kept)  # redeliveries were answered from the frame documents
    for task in fake_scale.tasks.values():
        frame = _frame(pipeline, task["unique_id"])
        assert frame["labeling_task_id"] == task["task_id"]
        assert frame["labeling_status"] == "requested"
        assert task["callback_url"] == "https://hooks.example.test/framesift/scale"
        assert task["project"] == settings.scale_project
        assert task["params"]["attachment"] == str(
            pipeline.blobs.root / settings.frames_bucket / frame["object_name"]
        )
        box = task["params"]["geometries"]["box"]
        assert box["objects_to_annotate"] == settings.labeling_classes
        assert box["min_width"] == settings.scale_min_width
        assert task["metadata"]["frame_id"] == frame["id"]


def test_a_task_created_before_a_crash_is_found_by_its_unique_id(
    media, embedded_settings, fake_scale
):
    settings = _scale_settings(embedded_settings, fake_scale)
    pipeline = EmbeddedPipeline(settings)
    pipeline.run([media["three_shots"]], "cam")
    frame_id = _kept_frame_ids(pipeline)[0]
    [task] = fake_scale.by_unique_id(frame_id)
    # The crash: Scale created the task but the frame document never recorded it.
    pipeline.adapters.documents.merge(
        "frames", frame_id, {"labeling_task_id": None, "labeling_status": None}
    )

    _redeliver_kept(pipeline, 1)

    assert len(fake_scale.by_unique_id(frame_id)) == 1
    assert _frame(pipeline, frame_id)["labeling_task_id"] == task["task_id"]
    assert ("GET", "/v1/tasks") in fake_scale.requests  # the 409 was resolved by a lookup


def test_rate_limits_and_server_errors_are_retried_within_the_invocation(
    media, embedded_settings, fake_scale
):
    settings = _scale_settings(embedded_settings, fake_scale, labeling_retry_seconds=30.0)
    pipeline = EmbeddedPipeline(settings)
    fake_scale.fail_next(429, 500, 503)
    pipeline.run([media["three_shots"]], "cam")

    kept = _kept_frame_ids(pipeline)
    assert sorted(t["unique_id"] for t in fake_scale.tasks.values()) == sorted(kept)
    assert all(_frame(pipeline, f)["labeling_status"] == "requested" for f in kept)
    assert pipeline.publisher.published[Topics.DEAD_LETTERS] == []


def test_a_vendor_down_past_the_budget_raises_for_redelivery(embedded_settings, fake_scale):
    settings = _scale_settings(embedded_settings, fake_scale, labeling_retry_seconds=1.0)
    pipeline = EmbeddedPipeline(settings)
    fake_scale.fail_always(502)
    scale = ScaleVendor(section(ScaleConfig, settings))
    labeler = bootstrap.labeler(pipeline.adapters, settings, scale)
    kept = KeptFrames.model_validate(
        {
            "batch_id": "b1",
            "collector": "cam",
            "frames": [
                {
                    "frame_id": "v_x_0000000000",
                    "timestamp_ms": 0,
                    "bucket": settings.frames_bucket,
                    "object_name": "cam/x/0000000000.jpg",
                    "sha256": "0" * 64,
                    "phash": "0" * 16,
                    "sharpness": 1.0,
                    "brightness": 0.5,
                }
            ],
        }
    )
    with pytest.raises(VendorUnavailable, match="502"):
        labeler.handle(kept)
    assert len(fake_scale.requests) > 1  # it did retry before giving the message back


def test_after_the_last_delivery_frames_are_marked_failed_and_dead_lettered(
    media, embedded_settings, fake_scale
):
    settings = _scale_settings(
        embedded_settings, fake_scale, labeling_retry_seconds=0.0, max_delivery_attempts=3
    )
    pipeline = EmbeddedPipeline(settings)
    fake_scale.fail_always(500)
    pipeline.run([media["three_shots"]], "cam")

    kept = _kept_frame_ids(pipeline)
    [dead] = pipeline.publisher.published[Topics.DEAD_LETTERS]
    assert dead.attributes["subscriber"] == "labeler"
    assert dead.attributes["attempts"] == "3"
    assert "500" in dead.attributes["error"]
    for frame_id in kept:
        frame = _frame(pipeline, frame_id)
        assert frame["labeling_status"] == "labeling_failed"
        assert "500" in frame["labeling_error"]
    [record] = pipeline.adapters.documents.where(Collections.DEAD_LETTERS, "subscriber", "labeler")
    assert record["permanent"] is False
    assert API_KEY not in json.dumps(record)


def test_a_refused_api_key_fails_fast_without_retries(media, embedded_settings, fake_scale):
    settings = _scale_settings(embedded_settings, fake_scale, api_key="wrong-key")
    pipeline = EmbeddedPipeline(settings)
    pipeline.run([media["three_shots"]], "cam")

    creates = [r for r in fake_scale.requests if r[0] == "POST"]
    assert len(creates) == 1  # one refusal, no retry storm
    [dead] = pipeline.publisher.published[Topics.DEAD_LETTERS]
    assert "401" in dead.attributes["error"]
    assert "wrong-key" not in dead.attributes["error"]
    frame = _frame(pipeline, _kept_frame_ids(pipeline)[0])
    assert frame["labeling_status"] == "labeling_failed"
    assert fake_scale.tasks == {}


def test_dead_letters_are_replayed_once_the_cause_is_fixed(media, embedded_settings, fake_scale):
    from typer.testing import CliRunner

    from framesift.cli import app

    refused = _scale_settings(embedded_settings, fake_scale, api_key="wrong-key")
    pipeline = EmbeddedPipeline(refused)
    pipeline.run([media["three_shots"]], "cam")
    kept = _kept_frame_ids(pipeline)
    assert fake_scale.tasks == {}

    env = {
        "FRAMESIFT_BACKEND": "embedded",
        "FRAMESIFT_WORKDIR": str(embedded_settings.workdir),
        "FRAMESIFT_LABELING_VENDOR": "scale",
        "FRAMESIFT_SCALE_API_KEY": API_KEY,  # the fix
        "FRAMESIFT_SCALE_API_URL": fake_scale.url,
    }
    first = CliRunner().invoke(app, ["replay-dead-letters", "--subscriber", "labeler"], env=env)
    again = CliRunner().invoke(app, ["replay-dead-letters"], env=env)

    assert first.exit_code == 0, first.output
    assert "1 dead letters published again" in first.output
    assert "0 dead letters published again" in again.output
    assert sorted(t["unique_id"] for t in fake_scale.tasks.values()) == sorted(kept)
    for frame_id in kept:
        assert _frame(pipeline, frame_id)["labeling_status"] == "requested"


def test_scale_gets_the_prelabel_as_its_hypothesis(tmp_path, media, embedded_settings, fake_scale):
    import numpy as np

    from framesift_dev.onnxmodels import fixed_yolo

    # A car scored 0.9 on every frame: 50 x 40 px at (135, 100) on the 320x240 clip.
    head = np.array([[320, 320, 100, 80, 0.9, 0.05]]).T
    model = fixed_yolo(tmp_path / "detector.onnx", head, ["car", "person"])
    settings = _scale_settings(
        embedded_settings, fake_scale, model_uri=str(model), labeling_classes=["car", "person"]
    )
    pipeline = EmbeddedPipeline(settings)
    pipeline.run([media["clip_5s_25fps"]], "cam")

    assert fake_scale.tasks
    for task in fake_scale.tasks.values():
        assert task["params"]["hypothesis"] == {
            "annotations": [
                {
                    "type": "box",
                    "label": "car",
                    "left": 135.0,
                    "top": 100.0,
                    "width": 50.0,
                    "height": 40.0,
                }
            ]
        }


def test_scale_refuses_a_hypothesis_outside_its_objects_and_framesift_fails_fast(
    embedded_settings, fake_scale
):
    from dataclasses import replace

    from framesift.documents import Box
    from framesift.errors import VendorRejected

    settings = _scale_settings(embedded_settings, fake_scale)
    vendor = ScaleVendor(section(ScaleConfig, settings))
    labeler = bootstrap.labeler(build_adapters(settings), settings, vendor)
    kept = kept_frames(settings, 1)
    request = replace(
        labeler._request(kept, kept.frames[0], None),
        prelabels=[Box(label="zebra", left=1, top=1, width=5, height=5, score=0.9)],
        model_version="v1",
    )
    with pytest.raises(VendorRejected, match="not an object to annotate"):
        vendor.request(kept.batch_id, [request])

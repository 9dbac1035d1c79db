"""Labeler on the emulated stack: Firestore emulator, fake-gcs-server, functions-framework.

The session's stack sends to the Scale fake end to end (upload -> sampler -> dedup -> labeler);
manifest and Label Studio run as extra labeler instances that messages are pushed to, each
message pushed more than once as Pub/Sub may.
"""

from __future__ import annotations

import json

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage

from framesift.documents import VideoRecord
from framesift.messages import KeptFrames
from framesift.topology import LABELER, Topics
from framesift_dev.devstack import FRAMES_BUCKET, RAW_BUCKET
from tests.support.stack import push_to_function
from tests.support.waiting import wait_for

pytestmark = pytest.mark.emulated


def _kept_frames(db: firestore.Client, video_doc_id: str) -> list[dict]:
    query = db.collection("frames").where(
        filter=firestore.FieldFilter("video_doc_id", "==", video_doc_id)
    )
    return [d for d in (s.to_dict() for s in query.stream()) if d.get("dedup_status") == "kept"]


def _message(frames: list[dict], batch_id: str, collector: str) -> bytes:
    return (
        KeptFrames.model_validate(
            {
                "batch_id": batch_id,
                "collector": collector,
                "frames": [{**frame, "frame_id": frame["id"]} for frame in frames],
            }
        )
        .model_dump_json()
        .encode()
    )


def test_uploaded_video_ends_as_one_scale_task_per_kept_frame(devstack, media, scale, unique):
    gcs = storage.Client(project=devstack.project, credentials=AnonymousCredentials())
    db = firestore.Client(project=devstack.project)
    blob = gcs.bucket(RAW_BUCKET).blob(f"cam-{unique}/three_shots.mp4")
    blob.upload_from_filename(str(media["three_shots"]), content_type="video/mp4")
    video_doc_id = VideoRecord.make_id(RAW_BUCKET, blob.name, int(blob.generation))

    def labeled() -> list[dict] | None:
        video = db.collection("videos").document(video_doc_id).get().to_dict() or {}
        kept = _kept_frames(db, video_doc_id)
        if video.get("status") != "sampled" or not kept:
            return None
        return kept if all(f.get("labeling_status") == "requested" for f in kept) else None

    kept = wait_for(labeled, "every kept frame to have a Scale task")
    for _ in range(2):  # Pub/Sub redelivers the batch twice more
        response = push_to_function(
            devstack, "labeler", Topics.FRAMES_KEPT, _message(kept, "redelivered", "cam"), {}
        )
        assert response.status_code in (200, 204), response.text
    for frame in kept:
        [task] = scale.by_unique_id(frame["id"])
        assert frame["labeling_task_id"] == task["task_id"]
        assert task["callback_url"] == f"{devstack.env['FRAMESIFT_WEBHOOK_URL']}/scale"
        # The emulator serves media without signing: the attachment is the object's media link.
        assert frame["object_name"].replace("/", "%2F") in task["params"]["attachment"]


def test_manifest_instance_writes_each_frame_once(devstack_manager, devstack, stored_frames):
    devstack_manager.start_function(
        LABELER, {"FRAMESIFT_LABELING_VENDOR": "manifest"}, "labeler-manifest", subscribe=False
    )
    message = _message(stored_frames, "manifest-batch", "cam")
    for _ in range(3):
        response = push_to_function(devstack, "labeler-manifest", Topics.FRAMES_KEPT, message, {})
        assert response.status_code in (200, 204), response.text

    gcs = storage.Client(project=devstack.project, credentials=AnonymousCredentials())
    bucket = gcs.bucket(FRAMES_BUCKET)
    lines = bucket.blob("manifests/manifest-batch.jsonl").download_as_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["framesift-frame-id"] for e in entries] == [f["id"] for f in stored_frames]
    assert [e["source-ref"] for e in entries] == [
        f"gs://{FRAMES_BUCKET}/{f['object_name']}" for f in stored_frames
    ]
    tasks = json.loads(bucket.blob("manifests/manifest-batch.labelstudio.json").download_as_text())
    assert [t["data"]["frame_id"] for t in tasks] == [f["id"] for f in stored_frames]


@pytest.mark.labelstudio
def test_label_studio_instance_creates_each_task_once(
    devstack_manager, devstack, stored_frames, labelstudio, unique
):
    from label_studio_sdk import LabelStudio

    project = f"emulated-{unique}"
    devstack_manager.start_function(
        LABELER,
        {
            "FRAMESIFT_LABELING_VENDOR": "labelstudio",
            "FRAMESIFT_LABELSTUDIO_URL": labelstudio.url,
            "FRAMESIFT_LABELSTUDIO_API_KEY": labelstudio.token,
            "FRAMESIFT_LABELSTUDIO_PROJECT": project,
        },
        f"labeler-ls-{unique}",
        subscribe=False,
    )
    message = _message(stored_frames, f"ls-batch-{unique}", "cam")
    for _ in range(3):
        response = push_to_function(
            devstack, f"labeler-ls-{unique}", Topics.FRAMES_KEPT, message, {}
        )
        assert response.status_code in (200, 204), response.text

    client = LabelStudio(base_url=labelstudio.url, api_key=labelstudio.token)
    [found] = [p for p in client.projects.list(title=project) if p.title == project]
    tasks = list(client.tasks.list(project=found.id, fields="all"))
    assert sorted(t.data["frame_id"] for t in tasks) == [f["id"] for f in stored_frames]
    db = firestore.Client(project=devstack.project)
    for task in tasks:
        frame = db.collection("frames").document(task.data["frame_id"]).get().to_dict() or {}
        assert frame["labeling_vendor"] == "labelstudio"
        assert frame["labeling_task_id"] == str(task.id)


def test_a_labeler_with_a_model_from_the_bucket_prelabels_and_spends_its_round_once(
    devstack_manager, devstack, stored_frames, unique, tmp_path
):
    import numpy as np

    from framesift.messages import ROUND_MESSAGE
    from framesift_dev.onnxmodels import fixed_yolo

    gcs = storage.Client(project=devstack.project, credentials=AnonymousCredentials())
    db = firestore.Client(project=devstack.project)
    head = np.array([[320, 320, 100, 80, 0.9, 0.05], [100, 200, 50, 100, 0.1, 0.55]]).T
    model = fixed_yolo(tmp_path / "detector.onnx", head, ["car", "person"])
    gcs.bucket(FRAMES_BUCKET).blob(f"models/{unique}.onnx").upload_from_filename(str(model))
    frames = [{**f, "id": f"{f['id']}_{unique}"} for f in stored_frames]
    for frame in frames:
        db.collection("frames").document(frame["id"]).set(frame)
    name = f"labeler-model-{unique}"
    devstack_manager.start_function(
        LABELER,
        {
            "FRAMESIFT_LABELING_VENDOR": "manifest",
            "FRAMESIFT_MODEL_URI": f"gs://{FRAMES_BUCKET}/models/{unique}.onnx",
            "FRAMESIFT_LABELING_CLASSES": "car,person",
            "FRAMESIFT_LABELING_BUDGET": "2",
            "FRAMESIFT_LABELING_AUDIT_FRACTION": "0",
        },
        name,
        subscribe=False,
    )
    batch = _message(frames, f"model-{unique}", "cam")
    round_message = json.dumps({"round": f"round-{unique}"}).encode()
    for topic, data, attributes in (
        (Topics.FRAMES_KEPT, batch, {}),
        (Topics.FRAMES_KEPT, batch, {}),
        (Topics.LABELING_ROUNDS, round_message, {ROUND_MESSAGE: "1"}),
        (Topics.LABELING_ROUNDS, round_message, {ROUND_MESSAGE: "1"}),
    ):
        response = push_to_function(devstack, name, topic, data, attributes)
        assert response.status_code in (200, 204), response.text

    docs = [db.collection("frames").document(f["id"]).get().to_dict() or {} for f in frames]
    assert all(d["model_uncertainty"] == pytest.approx(0.9) for d in docs)
    assert sorted(d["labeling_status"] for d in docs) == ["requested", "requested", "skipped"]
    spent = db.collection("labeling_rounds").document(f"round-{unique}").get().to_dict()
    assert (spent or {}).get("spent") == 2
    prediction = db.collection("annotations").document(docs[0]["model_prediction_id"]).get()
    boxes = (prediction.to_dict() or {})["boxes"]
    assert [(b["label"], b["left"], b["top"]) for b in boxes] == [
        ("car", 135.0, 100.0),
        ("person", 37.5, 35.0),
    ]
    lines = (
        gcs.bucket(FRAMES_BUCKET)
        .blob(f"manifests/round-round-{unique}.jsonl")
        .download_as_text()
        .splitlines()
    )
    assert len(lines) == 2
    assert all(json.loads(line)["framesift-prediction"]["boxes"] for line in lines)

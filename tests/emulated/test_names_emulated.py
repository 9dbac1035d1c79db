"""Names and exact duplicates on the emulated stack (#29): an empty or path-like collector is
refused before anything is stored, a name that would reach the index as a path fails once as
permanent, and bytes already in the dataset are never sent to labeling again, whatever the
collector."""

from __future__ import annotations

import base64
import hashlib
import json

from google.cloud import firestore
from typer.testing import CliRunner

from framesift.cli import app
from framesift.documents import IgnoredUpload, VideoRecord
from framesift.messages import FrameBatch
from framesift.topology import Topics
from framesift_dev.devstack import RAW_BUCKET
from tests.support.media import lavfi_video
from tests.support.stack import notification_of, push_to_function
from tests.support.waiting import wait_for


def _where(db: firestore.Client, collection: str, field: str, value: str) -> list[dict]:
    query = db.collection(collection).where(filter=firestore.FieldFilter(field, "==", value))
    return [d.to_dict() for d in query.stream()]


def test_upload_refuses_an_empty_collector_before_a_byte_is_sent(devstack, gcs, media, tmp_path):
    clip = tmp_path / f"{tmp_path.name}.mp4"
    clip.write_bytes(media["clip_4s_ntsc"].read_bytes())
    env = {k: v for k, v in devstack.env.items() if k.startswith("FRAMESIFT_")}

    result = CliRunner().invoke(app, ["upload", str(clip), "--collector", ""], env=env)

    assert result.exit_code != 0
    assert "the collector is empty" in str(result.exception)
    assert gcs.bucket(RAW_BUCKET).get_blob(f"/{clip.name}") is None


def test_an_upload_named_under_an_empty_collector_is_recorded_once_not_sampled(
    devstack, gcs, db, media, unique
):
    """``/a.mp4`` put straight into the bucket (no ``framesift upload`` to refuse it): the
    sampler records why once and acknowledges it, however often it is delivered; nothing is
    filed under ``//v_...`` and nothing reaches dedup's index, or its dead letters."""
    blob = gcs.bucket(RAW_BUCKET).blob(f"/{unique}.mp4")
    blob.upload_from_filename(str(media["clip_4s_ntsc"]), content_type="video/mp4")
    generation = int(blob.generation)
    record_id = IgnoredUpload.make_id(RAW_BUCKET, blob.name, generation)

    ignored = wait_for(
        lambda: db.collection("ignored_uploads").document(record_id).get().to_dict(),
        "the sampler to record the refused name",
    )
    data, attributes = notification_of(blob)
    for _ in range(2):  # delivered twice more
        response = push_to_function(devstack, "sampler", Topics.RAW_OBJECTS, data, attributes)
        assert response.status_code == 200, response.text

    assert (ignored["reason"], ignored["ignored_by"]) == (
        "collector '/' is a path, not one name",
        "sampler",
    )
    assert _where(db, "ignored_uploads", "object_name", blob.name) == [ignored]
    video_doc_id = VideoRecord.make_id(RAW_BUCKET, blob.name, generation)
    assert not db.collection("videos").document(video_doc_id).get().exists
    assert _where(db, "frames", "video_doc_id", video_doc_id) == []


def test_a_batch_whose_collector_is_a_path_is_dead_lettered_once_with_why(devstack, db, unique):
    """Had such a name reached dedup (a batch published by hand), its index id would be a path:
    a permanent failure, dead-lettered on its first delivery, not retried as transient."""
    batch = FrameBatch(
        video_doc_id=f"v_{unique}",
        collector="/",
        video_id=unique,
        segment_index=0,
        batch_index=0,
        batch_count=1,
        frames=[],
    )
    data = batch.model_dump_json().encode()

    response = push_to_function(devstack, "dedup", Topics.FRAMES_SAMPLED, data, {})

    assert response.status_code == 200, response.text  # acknowledged: no redelivery
    [record] = [
        r
        for r in _where(db, "dead_letters", "subscriber", "dedup")
        if json.loads(base64.b64decode(r["data"]))["video_doc_id"] == f"v_{unique}"
    ]
    assert (record["permanent"], record["attempts"]) == (True, 1)
    assert "InvalidName" in record["error"] and "collector '/' is a path" in record["error"]


def test_bytes_already_in_the_dataset_are_not_sent_again_under_other_collectors(
    devstack, gcs, db, unique, tmp_path
):
    """One drive uploaded under three collectors, one after the other, each notification
    delivered twice: only the first collector's kept frame goes to labeling; every frame of the
    others is an exact duplicate of a kept frame (before, a near duplicate dropped in the
    first video was kept again under each other collector, whose scope did not hold its
    original)."""
    clip = tmp_path / "drive.mp4"
    # A parked car with sensor noise of this test's own seed: no other test has these bytes.
    seed = int(hashlib.sha256(unique.encode()).hexdigest()[:6], 16)
    lavfi_video(
        clip, [f"smptebars=size=320x240:rate=25:duration=6,noise=alls=12:allf=t+u:all_seed={seed}"]
    )
    decided: dict[str, list[dict]] = {}
    for collector in (f"a-{unique}", f"b-{unique}", f"c-{unique}"):
        blob = gcs.bucket(RAW_BUCKET).blob(f"{collector}/drive.mp4")
        blob.upload_from_filename(str(clip), content_type="video/mp4")
        video_doc_id = VideoRecord.make_id(RAW_BUCKET, blob.name, int(blob.generation))

        def all_decided(video_doc_id: str = video_doc_id) -> list[dict] | None:
            frames = _where(db, "frames", "video_doc_id", video_doc_id)
            done = len(frames) == 6 and all(f.get("dedup_status") for f in frames)
            return frames if done else None

        wait_for(all_decided, f"{collector}'s frames to be decided")
        data, attributes = notification_of(blob)
        response = push_to_function(devstack, "sampler", Topics.RAW_OBJECTS, data, attributes)
        assert response.status_code == 200, response.text
        decided[collector] = sorted(all_decided() or [], key=lambda f: f["timestamp_ms"])

    first, *others = decided.values()
    kept = [f for f in first if f["dedup_status"] == "kept"]
    assert len(kept) == 1  # a parked car: one frame
    kept_ids = {kept[0]["id"]}
    for frames in others:
        assert {f["dedup_status"] for f in frames} == {"dropped"}
        assert {f["dedup_drop_reason"] for f in frames} == {"exact_duplicate"}
        assert {f["dedup_duplicate_of"] for f in frames} == kept_ids

"""The first slice on the emulated stack: an upload to fake-gcs-server publishes OBJECT_FINALIZE to
the Pub/Sub emulator, whose push subscription runs the sampler function under functions-framework,
which writes JPEGs to the frames bucket and records to the Firestore emulator."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from google.cloud import firestore, storage

from framesift.config import Backend, Settings
from framesift.documents import IgnoredUpload, VideoRecord
from framesift.topology import Topics
from framesift.upload import upload_file
from framesift_dev.devstack import FRAMES_BUCKET, RAW_BUCKET, StackState
from tests.support import footage as fs
from tests.support.stack import function_log, notification_of, push_to_function, tap
from tests.support.waiting import wait_for

pytestmark = pytest.mark.emulated


@pytest.fixture
def batches(devstack: StackState):
    """What the sampler sends on to the dedup stage, from now on."""
    pull = tap(devstack.project, [Topics.FRAMES_SAMPLED])

    def decoded(expect_some: bool = True) -> list[dict]:
        return [json.loads(message.data) for _, message in pull(expect_some)]

    return decoded


def _video_doc(db: firestore.Client, blob: storage.Blob) -> dict | None:
    doc_id = VideoRecord.make_id(blob.bucket.name, blob.name, int(blob.generation))
    snapshot = db.collection("videos").document(doc_id).get()
    return snapshot.to_dict() if snapshot.exists else None


def _finished(db: firestore.Client, blob: storage.Blob) -> dict | None:
    doc = _video_doc(db, blob)
    return doc if doc and doc["status"] in ("sampled", "failed") else None


def test_upload_is_sampled_at_one_frame_per_second_in_segments(
    devstack, gcs, db, batches, media, unique
):
    blob = gcs.bucket(RAW_BUCKET).blob(f"cam-{unique}/drive-01.mp4")
    blob.upload_from_filename(str(media["clip_5s_25fps"]), content_type="video/mp4")

    video = wait_for(lambda: _finished(db, blob), "the sampler to finish the video")

    assert video["status"] == "sampled", video
    assert video["collector"] == f"cam-{unique}"
    assert video["video_id"] == "drive-01"
    assert video["duration_s"] == pytest.approx(5.0, abs=0.05)
    assert video["fps"] == pytest.approx(25.0)
    assert (video["width"], video["height"], video["codec"]) == (320, 240, "h264")
    assert video["frames_sampled"] == 5
    assert video["segments_total"] == 2  # over 4.5 s: one invocation per segment, cut at 4 s

    frames = sorted(
        gcs.list_blobs(FRAMES_BUCKET, prefix=f"cam-{unique}/{video['id']}/"), key=lambda b: b.name
    )
    # One frame per 1 s window, each its window's first reference frame (the default decode).
    assert video["decode_mode"] == "reference"
    stamps = sorted(int(b.name.rsplit("/", 1)[1].removesuffix(".jpg")) for b in frames)
    assert [ms // 1000 for ms in stamps] == [0, 1, 2, 3, 4]
    for frame in frames:
        data = frame.download_as_bytes()
        assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
        assert frame.content_type == "image/jpeg"
        assert frame.metadata["source-generation"] == str(blob.generation)

    frame_docs = [
        d.to_dict()
        for d in db.collection("frames")
        .where(filter=firestore.FieldFilter("video_doc_id", "==", video["id"]))
        .stream()
    ]
    assert sorted(d["timestamp_ms"] for d in frame_docs) == stamps

    assert all(len(d["phash"]) == 16 and d["sharpness"] > 0 for d in frame_docs)

    sent = batches()
    assert sorted(b["segment_index"] for b in sent) == [0, 1]
    sent_frames = sorted((f for b in sent for f in b["frames"]), key=lambda f: f["timestamp_ms"])
    assert [f["timestamp_ms"] for f in sent_frames] == stamps
    assert {f["frame_id"] for f in sent_frames} == {d["id"] for d in frame_docs}
    by_id = {d["id"]: d for d in frame_docs}
    assert all(f["phash"] == by_id[f["frame_id"]]["phash"] for f in sent_frames)


# Names a bucket allows and a URL must escape: spaces, unicode, 200 characters.
@pytest.mark.parametrize("stem", ["ntsc", "my drive", "vidéo-über-東京", "x" * 200])
def test_ntsc_video_without_faststart_streams_over_http_with_exact_timestamps(
    devstack, gcs, db, media, unique, stem
):
    # moov at the end: ffmpeg must seek over HTTP ranges instead of reading a copy.
    blob = gcs.bucket(RAW_BUCKET).blob(f"cam-{unique}/{stem}.mp4")
    blob.upload_from_filename(str(media["clip_4s_ntsc"]), content_type="video/mp4")

    video = wait_for(lambda: _finished(db, blob), "the sampler to finish the video")

    assert video["status"] == "sampled", video
    assert video["fps"] == pytest.approx(29.97, abs=0.01)
    # Under the id of the object's version (an odd name never reaches a frame's name).
    folder = f"cam-{unique}/{video['id']}/"
    names = [b.name for b in gcs.list_blobs(FRAMES_BUCKET, prefix=folder)]
    stamps = [int(name.removeprefix(folder).removesuffix(".jpg")) for name in names]
    # One per 1 s window, each its window's first reference frame: on a frame's own timestamp
    # (a multiple of 1001/30 ms, never drifting), a few frames after the window's start at most.
    frame_ms = 1001 / 30
    assert [ms // 1000 for ms in stamps] == [0, 1, 2, 3]
    assert all(abs(ms - round(ms / frame_ms) * frame_ms) <= 0.5 for ms in stamps)
    assert all(ms % 1000 < 4 * frame_ms for ms in stamps)


def test_redelivered_notification_changes_nothing(devstack, gcs, db, batches, media, unique):
    blob = gcs.bucket(RAW_BUCKET).blob(f"cam-{unique}/parked.mp4")
    blob.upload_from_filename(str(media["clip_5s_25fps"]), content_type="video/mp4")
    first = wait_for(lambda: _finished(db, blob), "the first delivery")
    assert first["status"] == "sampled"
    assert len(batches()) == 2  # one per segment
    generations = {
        b.name: b.generation for b in gcs.list_blobs(FRAMES_BUCKET, prefix=f"cam-{unique}/")
    }

    data, attributes = notification_of(blob)
    for _ in range(2):  # Pub/Sub delivers at least once: twice more here
        response = push_to_function(devstack, "sampler", Topics.RAW_OBJECTS, data, attributes)
        assert response.status_code == 200, response.text

    assert _video_doc(db, blob) == first
    after = {b.name: b.generation for b in gcs.list_blobs(FRAMES_BUCKET, prefix=f"cam-{unique}/")}
    assert after == generations, "a redelivery rewrote frames"
    assert batches(expect_some=False) == [], "a redelivery sent frames to dedup again"


@pytest.mark.parametrize(
    ("medium", "reason"),
    [
        ("text_as_mp4", "ffprobe failed"),
        ("empty_mp4", "empty object (0 bytes)"),
        ("image_as_mp4", "no video stream"),
        ("audio_only", "no video stream"),
        ("truncated", "decode errors"),
        ("corrupt_middle", "decode errors"),
        ("huge_frames", "video too large: 8000x6000"),
    ],
)
def test_bad_video_is_recorded_failed_and_acknowledged(
    devstack, gcs, db, media, unique, medium, reason
):
    blob = gcs.bucket(RAW_BUCKET).blob(f"cam-{unique}/{Path(media[medium]).name}")
    blob.upload_from_filename(str(media[medium]), content_type="video/mp4")

    video = wait_for(lambda: _finished(db, blob), "the sampler to record the failure")
    assert video["status"] == "failed"
    assert reason in video["error"]
    # A damaged video keeps the frames decoded before the damage (its first 2 s at least).
    if medium in ("truncated", "corrupt_middle"):
        assert video["frames_sampled"] >= 2
    else:
        assert video["frames_sampled"] == 0

    # Delivered again, it is acknowledged (2xx), not retried forever, and stays failed.
    data, attributes = notification_of(blob)
    response = push_to_function(devstack, "sampler", Topics.RAW_OBJECTS, data, attributes)
    assert response.status_code == 200
    assert _video_doc(db, blob) == video


def test_object_metadata_overrides_the_sampling_policy(devstack, gcs, db, media, unique):
    blob = gcs.bucket(RAW_BUCKET).blob(f"cam-{unique}/slow.mp4")
    blob.metadata = {"framesift-every-seconds": "2"}
    blob.upload_from_filename(str(media["clip_4s_ntsc"]), content_type="video/mp4")

    video = wait_for(lambda: _finished(db, blob), "the sampler to finish the video")

    assert video["status"] == "sampled"
    assert video["policy"]["every_seconds"] == 2.0
    folder = f"cam-{unique}/{video['id']}/"
    names = [b.name for b in gcs.list_blobs(FRAMES_BUCKET, prefix=folder)]
    assert names == [f"{folder}{ms:010d}.jpg" for ms in (0, 2002)]


def test_object_not_named_like_a_video_is_ignored(devstack, gcs, db, unique):
    blob = gcs.bucket(RAW_BUCKET).blob(f"cam-{unique}/notes.txt")
    blob.upload_from_string(b"hello", content_type="text/plain")
    data, attributes = notification_of(blob)

    response = push_to_function(devstack, "sampler", Topics.RAW_OBJECTS, data, attributes)

    assert response.status_code == 200
    assert _video_doc(db, blob) is None


def test_malformed_message_is_acknowledged_dead_lettered_and_not_retried(devstack, unique):
    attributes = {"eventType": "OBJECT_FINALIZE", "payloadFormat": "JSON_API_V1"}
    for data in (f"not json {unique}".encode(), json.dumps({"name": unique}).encode()):
        response = push_to_function(devstack, "sampler", Topics.RAW_OBJECTS, data, attributes)
        assert response.status_code == 200

    errors = [
        entry
        for entry in function_log(devstack, "sampler")
        if "message dead-lettered" in entry["message"]
    ]
    assert any(e["severity"] == "ERROR" and "is not JSON" in e["message"] for e in errors)
    assert any(e["severity"] == "ERROR" and "not a GCS object" in e["message"] for e in errors)
    # Recorded for operators with the topic it came from (from the CloudEvent's source).
    db = firestore.Client(project=devstack.project)
    records = [
        d.to_dict()
        for d in db.collection("dead_letters")
        .where(filter=firestore.FieldFilter("subscriber", "==", "sampler"))
        .stream()
    ]
    assert any(r["topic"] == Topics.RAW_OBJECTS and "is not JSON" in r["error"] for r in records)


def test_same_stem_uploads_keep_their_own_jpegs_with_matching_hashes(gcs, db, media, unique):
    collector = f"cam-{unique}"
    videos = {}
    for name, clip in (("a.mp4", "clip_4s_ntsc"), ("a.mov", "three_shots")):
        blob = gcs.bucket(RAW_BUCKET).blob(f"{collector}/{name}")
        blob.upload_from_filename(str(media[clip]), content_type="video/mp4")
        videos[VideoRecord.make_id(RAW_BUCKET, blob.name, int(blob.generation))] = name

    def sampled() -> bool:
        docs = [db.collection("videos").document(v).get().to_dict() or {} for v in videos]
        return all(doc.get("status") == "sampled" for doc in docs)

    wait_for(sampled, "both uploads to be sampled")
    frames = [
        d.to_dict()
        for d in db.collection("frames")
        .where(filter=firestore.FieldFilter("collector", "==", collector))
        .stream()
    ]
    assert len(frames) == 4 + 6
    assert len({f["object_name"] for f in frames}) == len(frames)
    for frame in frames:
        data = gcs.bucket(FRAMES_BUCKET).blob(frame["object_name"]).download_as_bytes()
        assert hashlib.sha256(data).hexdigest() == frame["sha256"]
        assert frame["video_doc_id"] in videos


def test_an_upload_no_stage_takes_is_recorded_with_its_reason(gcs, db, unique):
    blob = gcs.bucket(RAW_BUCKET).blob(f"cam-{unique}/notes.txt")
    blob.upload_from_string(b"not a video", content_type="text/plain")
    record_id = IgnoredUpload.make_id(RAW_BUCKET, blob.name, int(blob.generation))

    record = wait_for(
        lambda: db.collection("ignored_uploads").document(record_id).get().to_dict(),
        "the sampler to record the ignored upload",
    )
    assert (record["reason"], record["ignored_by"]) == (
        "extension '.txt' is not a video's",
        "sampler",
    )


def test_a_sidecar_uploaded_after_its_video_places_its_frames_once(
    devstack, gcs, db, batches, media, unique, tmp_path
):
    """A drone's .SRT uploaded with framesift upload after its video was sampled: its
    notification re-places the video's frames; two more deliveries write nothing and send
    nothing on."""
    collector = f"drone-{unique}"
    blob = gcs.bucket(RAW_BUCKET).blob(f"{collector}/DJI_0001.MP4")
    blob.upload_from_filename(str(media["clip_5s_25fps"]), content_type="video/mp4")
    video = wait_for(lambda: _finished(db, blob), "the sampler to finish the video")
    assert video["status"] == "sampled" and len(batches()) == 2

    def frames() -> list[dict]:
        query = db.collection("frames").where(
            filter=firestore.FieldFilter("video_doc_id", "==", video["id"])
        )
        return sorted((d.to_dict() for d in query.stream()), key=lambda d: d["timestamp_ms"])

    assert [f["latitude"] for f in frames()] == [None] * 5
    settings = Settings(backend=Backend.GCP, project=devstack.project, raw_bucket=RAW_BUCKET)
    srt = fs.dji_srt(tmp_path / "DJI_0001.SRT", seconds=5)
    name = upload_file(settings, srt, collector, lambda sent: None)
    assert name == f"{collector}/DJI_0001.SRT"  # beside its video, where the sampler looks

    placed = wait_for(
        lambda: (docs := frames()) and all(d["latitude"] is not None for d in docs) and docs,
        "the sidecar to place the frames",
    )
    for doc in placed:
        want = fs.drone_position(max(doc["timestamp_ms"], fs.DRONE_CUE_MS))
        assert (doc["latitude"], doc["longitude"]) == pytest.approx(want, abs=1e-9)
    data, attributes = notification_of(gcs.bucket(RAW_BUCKET).get_blob(name))
    for _ in range(2):  # Pub/Sub delivers at least once: twice more here
        response = push_to_function(devstack, "sampler", Topics.RAW_OBJECTS, data, attributes)
        assert response.status_code == 200, response.text

    assert frames() == placed, "a redelivery wrote the frames again"
    assert batches(expect_some=False) == [], "a sidecar sent frames to dedup"
    assert _video_doc(db, blob) == video

"""Dedup as a deployed function: frames the sampler function sent, decided on Firestore."""

from __future__ import annotations

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, pubsub_v1, storage

from framesift.documents import VideoRecord
from framesift.messages import KeptFrames
from framesift.topology import Topics
from framesift_dev.devstack import RAW_BUCKET
from tests.support.waiting import wait_for


@pytest.mark.emulated
def test_sampled_frames_are_deduplicated_by_the_dedup_function(devstack, media, unique):
    subscriber = pubsub_v1.SubscriberClient()
    audit = subscriber.subscription_path(devstack.project, f"kept-{unique}")
    subscriber.create_subscription(
        name=audit, topic=subscriber.topic_path(devstack.project, Topics.FRAMES_KEPT)
    )
    gcs = storage.Client(project=devstack.project, credentials=AnonymousCredentials())
    db = firestore.Client(project=devstack.project)
    blob = gcs.bucket(RAW_BUCKET).blob(f"cam-{unique}/parked.mp4")
    blob.upload_from_filename(str(media["parked"]), content_type="video/mp4")
    video_doc_id = VideoRecord.make_id(RAW_BUCKET, blob.name, int(blob.generation))

    def decided() -> list[dict] | None:
        query = db.collection("frames").where(
            filter=firestore.FieldFilter("video_doc_id", "==", video_doc_id)
        )
        frames = [d.to_dict() for d in query.stream()]
        return frames if len(frames) == 6 and all(f.get("dedup_status") for f in frames) else None

    frames = sorted(
        wait_for(decided, "dedup to decide every frame"), key=lambda f: f["timestamp_ms"]
    )

    # Its two segments are decided in either order: whichever frame came first is the one kept.
    [kept_frame] = [f for f in frames if f["dedup_status"] == "kept"]
    dropped = [f for f in frames if f["dedup_status"] == "dropped"]
    assert len(dropped) == 5
    assert {f["dedup_duplicate_of"] for f in dropped} == {kept_frame["id"]}
    # Other tests' videos share the topic: only this video's messages count.
    received: list[KeptFrames] = []

    def this_videos_messages() -> list[KeptFrames]:
        response = subscriber.pull(subscription=audit, max_messages=10, timeout=10)
        received.extend(
            KeptFrames.model_validate_json(m.message.data) for m in response.received_messages
        )
        return [k for k in received if k.video_doc_id == video_doc_id]

    kept = wait_for(this_videos_messages, "the kept frames to reach the labeler's topic")
    assert [f.frame_id for k in kept for f in k.frames] == [kept_frame["id"]]

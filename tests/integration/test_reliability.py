"""Reliability: every message delivered three times in shuffled order, callbacks too, and
object names a bucket allows but a pipeline may trip on. Embedded stack; the emulated
equivalents of redelivery are in each stage's own tests."""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from framesift import bootstrap
from framesift.embedded import EmbeddedPipeline
from framesift.events import finalize_message
from framesift.imagestats import hamming, layout_distance
from framesift.messages import KeptFrames
from framesift.topology import Collections, Topics
from tests.support.payloads import scale_callback


def _chaotic(settings, seed: int) -> EmbeddedPipeline:
    pipeline = EmbeddedPipeline(settings)
    pipeline.publisher.copies = 3
    pipeline.publisher.shuffle = random.Random(seed)
    return pipeline


def test_everything_three_times_in_any_order_leaves_each_item_once(media, embedded_settings):
    settings = embedded_settings.model_copy(update={"segment_seconds": 2.0})  # many messages
    pipeline = _chaotic(settings, seed=3)
    pipeline.run([media["parked"], media["three_shots"], media["clip_5s_25fps"]], "cam")
    documents = pipeline.adapters.documents

    frames = list(documents.changed_since("frames", None))
    assert len({f["id"] for f in frames}) == len(frames)
    videos = {v["id"]: v for v in documents.changed_since("videos", None)}
    assert len(videos) == 3 and {v["status"] for v in videos.values()} == {"sampled"}
    # The same frames as a run with every message delivered once, in order.
    calm = EmbeddedPipeline(settings.model_copy(update={"workdir": settings.workdir / "calm"}))
    calm.run([media["parked"], media["three_shots"], media["clip_5s_25fps"]], "cam")
    calm_videos = {
        v["id"]: v["object_name"] for v in calm.adapters.documents.changed_since("videos", None)
    }
    per_name = Counter(videos[f["video_doc_id"]]["object_name"] for f in frames)
    calm_frames = calm.adapters.documents.changed_since("frames", None)
    assert per_name == Counter(calm_videos[f["video_doc_id"]] for f in calm_frames)
    assert all(f.get("dedup_status") in ("kept", "dropped") for f in frames)
    sampled = list(videos)

    kept = [f for f in frames if f["dedup_status"] == "kept"]
    for video_doc_id in sampled:  # never two near twins (in pHash and colour) kept in one video
        twins = [f for f in kept if f["video_doc_id"] == video_doc_id]
        for i, one in enumerate(twins):
            for other in twins[i + 1 :]:
                assert (
                    hamming(one["phash"], other["phash"]) > settings.dedup_threshold
                    or layout_distance(one["layout"], other["layout"])
                    > settings.dedup_layout_threshold
                )

    lines = [
        json.loads(line)["framesift-frame-id"]
        for blob in pipeline.blobs.list(settings.frames_bucket, "manifests/")
        if blob.name.endswith(".jsonl")
        for line in pipeline.blobs.get(settings.frames_bucket, blob.name).decode().splitlines()
    ]
    assert Counter(lines) == Counter(f["id"] for f in kept)  # one task per kept frame
    assert pipeline.publisher.published[Topics.DEAD_LETTERS] == []

    # Vendor callbacks: two versions per task, each delivered three times, shuffled.
    receiver = bootstrap.callback_receiver(
        settings.model_copy(update={"scale_callback_auth_key": SecretStr("k")}), documents
    )
    callbacks = []
    for index, frame in enumerate(kept):
        # As if the frames had gone to Scale, as tasks t0, t1, ...
        documents.merge(
            "frames", frame["id"], {"labeling_vendor": "scale", "labeling_task_id": f"t{index}"}
        )
        for version, label in ((1, "car"), (2, "truck")):
            body = scale_callback(
                task_id=f"t{index}",
                completed_at=(
                    datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=version)
                ).isoformat(),
                boxes=[{"label": label, "left": 1, "top": 1, "width": 2, "height": 2}],
            )
            body["task"]["metadata"] = {"frame_id": frame["id"]}
            callbacks += [body] * 3
    random.Random(5).shuffle(callbacks)
    for body in callbacks:
        raw = json.dumps(body).encode()
        reply = receiver.receive(
            "POST", "/scale", {"scale-callback-auth": "k"}, len(raw), lambda _, r=raw: r
        )
        assert reply.status == 200
    annotations = list(documents.changed_since(Collections.ANNOTATIONS, None))
    assert len(annotations) == len(kept)
    assert {a["boxes"][0]["label"] for a in annotations} == {"truck"}

    for _ in range(2):
        bootstrap.exporter(pipeline.adapters, settings).run()
    [row] = pipeline.adapters.warehouse.query(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS ids FROM {dataset}.frames"
    )
    assert row["n"] == row["ids"] == len(frames)
    [row] = pipeline.adapters.warehouse.query(
        "SELECT COUNT(*) AS n FROM {dataset}.annotations WHERE NOT deleted"
    )
    assert row["n"] == len(kept)
    kept_messages = [
        KeptFrames.model_validate_json(m.data)
        for m in pipeline.publisher.published[Topics.FRAMES_KEPT]
    ]
    assert kept_messages  # the labeler really was fed through the shuffled queue


def test_object_names_with_spaces_unicode_length_and_dots(media, embedded_settings):
    pipeline = EmbeddedPipeline(embedded_settings)
    long_name = "x" * 200
    names = {
        "cam/my drive.mp4": "sampled",
        "cam/vidéo-über-東京.mp4": "sampled",
        f"cam/{long_name}.mp4": "sampled",
    }
    for name in names:
        info = pipeline.blobs.put_file(
            embedded_settings.raw_bucket, name, media["clip_4s_ntsc"], {}
        )
        data, attributes = finalize_message(info)
        pipeline.publisher.publish(Topics.RAW_OBJECTS, data, attributes)
    # GCS allows ".." in a name; the folder store must not follow it out of the bucket.
    escape = pipeline.blobs.put_file(
        embedded_settings.raw_bucket, "cam/clip.mp4", media["clip_4s_ntsc"], {}
    )
    data, attributes = finalize_message(escape)
    payload = json.loads(data)
    payload["name"] = "cam/../../outside.mp4"
    pipeline.publisher.publish(
        Topics.RAW_OBJECTS,
        json.dumps(payload).encode(),
        {**attributes, "objectId": payload["name"]},
    )
    pipeline.publisher.drain()

    outcomes = {
        doc["object_name"]: doc["status"]
        for doc in pipeline.adapters.documents.changed_since("videos", None)
    }
    for name, status in names.items():
        assert outcomes[name] == status
    # Not {collector}/{video_id}.ext: ignored with a logged reason, never read, never retried.
    assert "cam/../../outside.mp4" not in outcomes
    assert not (embedded_settings.workdir / "outside.mp4").exists()
    assert pipeline.publisher.published[Topics.DEAD_LETTERS] == []
    shutil.rmtree(embedded_settings.workdir, ignore_errors=True)


def test_a_duplicate_notification_during_a_segmented_video_sends_no_segment_twice(
    media, embedded_settings
):
    settings = embedded_settings.model_copy(update={"segment_seconds": 2.0})
    pipeline = EmbeddedPipeline(settings)
    pipeline.publisher.copies = 2  # the second copy arrives while the segments are queued
    pipeline.run([media["clip_5s_25fps"]], "cam")

    [video] = list(pipeline.adapters.documents.changed_since("videos", None))
    assert video["status"] == "sampled" and video["segments_total"] >= 2
    segments = pipeline.publisher.published[Topics.VIDEO_SEGMENTS]
    assert len(segments) == video["segments_total"]  # planned and published once
    reasons = Counter(result.reason for result in pipeline.summary.results)
    assert reasons[f"{video['segments_total']} segments"] == 1  # planned once
    assert reasons["segments already sent"] == 1  # the duplicate notification

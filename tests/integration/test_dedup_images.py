"""Photos uploaded to the images prefix: hashed by dedup itself; unreadable ones recorded."""

from __future__ import annotations

import sqlite3

from framesift.embedded import EmbeddedPipeline
from framesift.stages.dedup import BatchOutcome


def _decision(pipeline: EmbeddedPipeline, name: str) -> dict:
    [doc] = [
        d
        for d in pipeline.adapters.documents.where("frames", "source", "image")
        if d["object_name"].endswith(f"/{name}")
    ]
    return doc


def test_photos_are_deduplicated_and_bad_ones_recorded(photos, embedded_settings):
    pipeline = EmbeddedPipeline(embedded_settings)
    order = ["photo", "other", "near", "copy", "truncated", "text"]
    summary = pipeline.run([photos[k] for k in order], collector="shop-1")

    assert summary.results == []  # the sampler leaves images alone
    assert [b.outcome for b in summary.batches] == [BatchOutcome.DONE] * 6
    photo = _decision(pipeline, "photo.jpg")
    assert photo["dedup_status"] == "kept"
    assert photo["object_name"] == "images/shop-1/photo.jpg"
    assert (photo["width"], photo["height"]) == (640, 480)
    assert _decision(pipeline, "bars.png")["dedup_status"] == "kept"
    near = _decision(pipeline, "photo-small.jpg")
    assert (near["dedup_drop_reason"], near["dedup_duplicate_of"]) == (
        "near_duplicate",
        photo["id"],
    )
    copy = _decision(pipeline, "photo-copy.jpg")
    assert (copy["dedup_drop_reason"], copy["dedup_duplicate_of"]) == (
        "exact_duplicate",
        photo["id"],
    )
    for name in ("cut.jpg", "notes.png"):
        bad = _decision(pipeline, name)
        assert (bad["dedup_status"], bad["dedup_drop_reason"]) == ("dropped", "unreadable")
        assert bad["error"].startswith("not a readable image: ")
    assert summary.kept == 2
    # A photo is searched for and indexed in the dataset scope only, not in a one-photo "video".
    with sqlite3.connect(embedded_settings.workdir / "documents.sqlite3") as db:
        scopes = {
            row[0].split("~")[0]
            for row in db.execute("SELECT id FROM documents WHERE collection = 'phash_buckets'")
        }
    assert scopes == {"collector:shop-1"}


def test_a_redelivered_photo_notification_changes_nothing(photos, embedded_settings):
    pipeline = EmbeddedPipeline(embedded_settings)
    pipeline.run([photos["photo"], photos["truncated"]], collector="shop-2")
    before = pipeline.adapters.documents.where("frames", "source", "image")
    notifications = list(pipeline.publisher.published["raw-objects"])

    for message in notifications * 2:
        pipeline.publisher.publish("raw-objects", message.data, message.attributes)
    pipeline.publisher.drain()

    assert [b.outcome for b in pipeline.summary.batches[2:]] == [BatchOutcome.DUPLICATE] * 4
    assert pipeline.adapters.documents.where("frames", "source", "image") == before
    assert len(pipeline.publisher.published["frames-kept"]) == 1

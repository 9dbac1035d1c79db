"""Photos uploaded to the images prefix: hashed by dedup itself; unreadable ones recorded."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from framesift_dev.devstack import RAW_BUCKET
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage

from framesift.local import EmbeddedPipeline
from framesift.stages.dedup import BatchOutcome
from tests.conftest import wait_for


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("photos")
    still = "mandelbrot=size=640x480:rate=1"

    def ffmpeg(source: str, out: str, *args: str) -> Path:
        path = folder / out
        subprocess.run(
            [
                "ffmpeg",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                source,
                "-frames:v",
                "1",
                *args,
                str(path),
            ],
            check=True,
        )
        return path

    files = {
        "photo": ffmpeg(still, "photo.jpg", "-q:v", "2"),
        "other": ffmpeg("smptebars=size=640x480", "bars.png"),
        # The same picture smaller and more compressed: a near duplicate, not the same bytes.
        "near": ffmpeg(still, "photo-small.jpg", "-vf", "scale=480:360", "-q:v", "8"),
    }
    files["copy"] = folder / "photo-copy.jpg"
    shutil.copy(files["photo"], files["copy"])
    files["truncated"] = folder / "cut.jpg"
    files["truncated"].write_bytes(files["photo"].read_bytes()[:5000])
    files["text"] = folder / "notes.png"
    files["text"].write_text("not an image\n")
    return files


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


@pytest.mark.emulated
def test_photos_uploaded_to_the_bucket_are_decided_by_the_dedup_function(devstack, photos, unique):
    gcs = storage.Client(project=devstack.project, credentials=AnonymousCredentials())
    db = firestore.Client(project=devstack.project)
    names = {"photo": "photo.jpg", "copy": "photo-copy.jpg", "truncated": "cut.jpg"}
    for key, name in names.items():
        gcs.bucket(RAW_BUCKET).blob(f"images/shop-{unique}/{name}").upload_from_filename(
            str(photos[key])
        )

    def decided() -> dict[str, dict] | None:
        query = db.collection("frames").where(
            filter=firestore.FieldFilter("collector", "==", f"shop-{unique}")
        )
        docs = {d.to_dict()["object_name"].rsplit("/", 1)[1]: d.to_dict() for d in query.stream()}
        return (
            docs if len(docs) == 3 and all(d.get("dedup_status") for d in docs.values()) else None
        )

    docs = wait_for(decided, "dedup to decide the three photos")

    assert docs["cut.jpg"]["dedup_drop_reason"] == "unreadable"
    # The copy and the original race; exactly one of them is kept.
    statuses = sorted(docs[n]["dedup_status"] for n in ("photo.jpg", "photo-copy.jpg"))
    assert statuses == ["dropped", "kept"]
    dropped = next(
        docs[n] for n in ("photo.jpg", "photo-copy.jpg") if docs[n]["dedup_status"] == "dropped"
    )
    assert dropped["dedup_drop_reason"] == "exact_duplicate"

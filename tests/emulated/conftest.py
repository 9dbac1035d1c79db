"""The emulated layer: every test here runs against the local emulated GCP stack (``framesift
dev up``'s code), so each is marked ``emulated``; and the fixtures only these tests use."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage

from framesift_dev.devstack import FRAMES_BUCKET
from framesift_dev.testvideo import generate_test_video

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.emulated)


@pytest.fixture
def gcs(devstack) -> storage.Client:
    return storage.Client(project=devstack.project, credentials=AnonymousCredentials())


@pytest.fixture
def db(devstack) -> firestore.Client:
    return firestore.Client(project=devstack.project)


@pytest.fixture(scope="module")
def stored_frames(devstack, tmp_path_factory) -> list[dict]:
    """Three JPEG frames in the frames bucket and their Firestore documents."""
    folder = tmp_path_factory.mktemp("frames")
    gcs = storage.Client(project=devstack.project, credentials=AnonymousCredentials())
    db = firestore.Client(project=devstack.project)
    clip = folder / "clip.mp4"
    generate_test_video(str(clip), seconds=1, fps="3")
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), str(folder / "f%d.jpg")], check=True)
    frames = []
    for index, path in enumerate(sorted(folder.glob("f*.jpg"))[:3]):
        frame_id = f"v_labeler_emulated_{index:010d}"
        name = f"cam/labeler/{index:010d}.jpg"
        gcs.bucket(FRAMES_BUCKET).blob(name).upload_from_filename(str(path))
        frame = {
            "id": frame_id,
            "video_doc_id": "v_labeler_emulated",
            "timestamp_ms": index * 333,
            "bucket": FRAMES_BUCKET,
            "object_name": name,
            "sha256": f"{index:064x}",
            "phash": f"{index:016x}",
            "sharpness": 1.0,
            "brightness": 0.5,
            "width": 320,
            "height": 240,
            "dedup_status": "kept",
        }
        db.collection("frames").document(frame_id).set(frame)
        frames.append(frame)
    return frames

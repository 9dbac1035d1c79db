"""framesift upload against the emulated stack."""

from __future__ import annotations

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage

from framesift.config import Backend, Settings
from framesift.documents import VideoRecord
from framesift.upload import upload_file
from framesift_dev.devstack import RAW_BUCKET
from tests.support.waiting import wait_for


@pytest.mark.emulated
def test_upload_lands_under_the_naming_standard_and_is_sampled(devstack, media, unique):
    settings = Settings(backend=Backend.GCP, project=devstack.project, raw_bucket=RAW_BUCKET)
    reported: list[int] = []
    name = upload_file(settings, media["clip_4s_ntsc"], f"dev-{unique}", reported.append)

    assert name == f"dev-{unique}/clip_4s_ntsc.mp4"
    size = media["clip_4s_ntsc"].stat().st_size
    assert reported[-1] == size and reported == sorted(reported)
    gcs = storage.Client(project=devstack.project, credentials=AnonymousCredentials())
    blob = gcs.bucket(RAW_BUCKET).get_blob(name)
    assert blob is not None and blob.size == size
    video = VideoRecord.make_id(RAW_BUCKET, name, int(blob.generation))
    db = firestore.Client(project=devstack.project)
    doc = wait_for(
        lambda: (
            (db.collection("videos").document(video).get().to_dict() or {}).get("status")
            == "sampled"
        ),
        "the uploaded video to be sampled",
    )
    assert doc

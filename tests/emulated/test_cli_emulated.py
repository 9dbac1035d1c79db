"""framesift upload against the emulated stack."""

from __future__ import annotations

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage
from typer.testing import CliRunner

from framesift.cli import app
from framesift.config import Backend, Settings
from framesift.documents import VideoRecord
from framesift.upload import upload_file
from framesift_dev.devstack import RAW_BUCKET
from tests.support.media import lavfi_video
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


def test_report_draws_the_emulated_stacks_results(devstack, unique, tmp_path):
    """A user of `framesift dev up` sees results without writing client code: the report reads
    Firestore and the GCS emulator, as it reads SQLite and folders embedded."""
    settings = Settings(backend=Backend.GCP, project=devstack.project, raw_bucket=RAW_BUCKET)
    collector = f"rep-{unique}"
    # A static scene of its own: another test's bytes would be exact duplicates of these.
    clip = tmp_path / "parked.mp4"
    lavfi_video(clip, ["smptehdbars=size=320x240:rate=25:duration=6,noise=alls=12:allf=t+u"])
    name = upload_file(settings, clip, collector, lambda sent: None)
    blob = (
        storage.Client(project=devstack.project, credentials=AnonymousCredentials())
        .bucket(RAW_BUCKET)
        .get_blob(name)
    )
    video = VideoRecord.make_id(RAW_BUCKET, name, int(blob.generation))
    db = firestore.Client(project=devstack.project)

    def decided() -> bool:
        frames = [
            d.to_dict()
            for d in db.collection("frames")
            .where(filter=firestore.FieldFilter("video_doc_id", "==", video))
            .stream()
        ]
        return len(frames) == 6 and all(f.get("dedup_status") for f in frames)

    wait_for(decided, "the upload to be sampled and decided")
    stack_settings = {k: v for k, v in devstack.env.items() if k.startswith("FRAMESIFT_")}
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app, ["report", "--collector", collector, "--out", str(out)], env=stack_settings
    )

    assert result.exit_code == 0, result.output
    assert (out / f"{video}.png").exists()
    index = (out / "index.html").read_text()
    assert f"{collector}/parked.mp4" in index and "1 kept of 6" in index

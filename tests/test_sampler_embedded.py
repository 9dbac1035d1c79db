"""The first slice in embedded mode: folder buckets, SQLite, in-process Pub/Sub, no cloud."""

from __future__ import annotations

import json
import sqlite3

from typer.testing import CliRunner

from framesift.cli import app
from framesift.config import Topics
from framesift.local import EmbeddedPipeline, finalize_message
from framesift.stages.sampler import Outcome


def test_cli_run_samples_one_frame_per_second(media, tmp_path):
    workdir = tmp_path / "work"
    result = CliRunner().invoke(
        app, ["run", str(media["clip_5s_25fps"]), "--workdir", str(workdir), "--json"]
    )

    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["frames"] == 5
    assert summary["sampled"] == 1
    frames = sorted((workdir / "buckets/framesift-frames/local/clip_5s_25fps").glob("*.jpg"))
    assert [f.name for f in frames] == [f"{ms:010d}.jpg" for ms in (0, 1000, 2000, 3000, 4000)]
    assert all(f.read_bytes()[:2] == b"\xff\xd8" for f in frames)

    with sqlite3.connect(workdir / "documents.sqlite3") as db:
        videos = [
            json.loads(r[0])
            for r in db.execute("SELECT data FROM documents WHERE collection='videos'")
        ]
        frame_count = db.execute(
            "SELECT count(*) FROM documents WHERE collection='frames'"
        ).fetchone()[0]
    assert len(videos) == 1
    assert videos[0]["status"] == "sampled"
    assert videos[0]["duration_s"] == 5.0
    assert videos[0]["fps"] == 25.0
    assert videos[0]["frames_sampled"] == 5
    assert frame_count == 5


def test_delivered_twice_changes_nothing(media, embedded_settings):
    pipeline = EmbeddedPipeline(embedded_settings)
    info = pipeline.upload(media["clip_5s_25fps"], collector="cam-a")
    pipeline.publisher.drain()
    video_id = pipeline.summary.results[0].video_doc_id
    assert video_id is not None
    before = pipeline.adapters.documents.get("videos", video_id)
    frames_before = {f.name: f.generation for f in pipeline.blobs.list("framesift-frames")}

    data, attributes = finalize_message(info)
    pipeline.publisher.publish(Topics.RAW_OBJECTS, data, attributes)
    pipeline.publisher.drain()

    assert [r.outcome for r in pipeline.summary.results] == [Outcome.SAMPLED, Outcome.DUPLICATE]
    assert pipeline.adapters.documents.get("videos", video_id) == before
    assert {f.name: f.generation for f in pipeline.blobs.list("framesift-frames")} == frames_before
    # one batch for the dedup stage, not two
    assert len(pipeline.publisher.retained[Topics.FRAMES_SAMPLED]) == 1


def test_bad_inputs_fail_with_a_reason_and_nothing_dead_letters(media, embedded_settings):
    pipeline = EmbeddedPipeline(embedded_settings)
    summary = pipeline.run([media["text_as_mp4"], media["empty_mp4"]], collector="cam-b")

    assert [r.outcome for r in summary.results] == [Outcome.FAILED, Outcome.FAILED]
    assert "ffprobe failed" in summary.results[0].reason
    assert summary.results[1].reason == "empty object (0 bytes)"
    assert summary.dead_letters == 0
    for result in summary.results:
        assert result.video_doc_id is not None
        doc = pipeline.adapters.documents.get("videos", result.video_doc_id)
        assert doc is not None
        assert (doc["status"], doc["error"]) == ("failed", result.reason)


def test_cli_run_exits_nonzero_when_a_video_fails(media, tmp_path):
    result = CliRunner().invoke(app, ["run", str(media["text_as_mp4"]), "--workdir", str(tmp_path)])
    assert result.exit_code == 1
    assert "failed" in result.output

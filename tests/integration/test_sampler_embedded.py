"""The sampler in embedded mode: folder buckets, SQLite, in-process Pub/Sub, no cloud."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from framesift.cli import app
from framesift.delivery import replay
from framesift.embedded import EmbeddedPipeline
from framesift.events import finalize_message
from framesift.messages import FrameBatch
from framesift.stages.sampler import Outcome
from framesift.topology import SAMPLER, Collections, Topics
from tests.support.flakyhttp import Faults, serve


def _batches(pipeline: EmbeddedPipeline) -> list[FrameBatch]:
    return [
        FrameBatch.model_validate_json(m.data)
        for m in pipeline.publisher.published[Topics.FRAMES_SAMPLED]
    ]


def _sent_timestamps(pipeline: EmbeddedPipeline) -> list[int]:
    return sorted(f.timestamp_ms for b in _batches(pipeline) for f in b.frames)


def _ffmpeg_children() -> list[int]:
    """ffmpeg processes this process started that still run (or were never waited for)."""
    mine = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
            if name.startswith("ffmpeg") and rest.split()[1] == mine:
                found.append(int(entry.name))
    return found


def test_cli_run_samples_one_frame_per_second(media, tmp_path):
    workdir = tmp_path / "work"
    result = CliRunner().invoke(
        app, ["run", str(media["clip_5s_25fps"]), "--workdir", str(workdir), "--json"]
    )

    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["frames_sampled"] == 5
    assert [video["outcome"] for video in summary["videos"]] == ["sampled"]
    # Frames live under the id of their source's version, never under its file stem alone.
    video_doc_id = summary["videos"][0]["video"]
    frames = sorted((workdir / "buckets/framesift-frames/local" / video_doc_id).glob("*.jpg"))
    # One frame per 1 s window (each its window's first reference frame: the default decode).
    assert [int(f.stem) // 1000 for f in frames] == [0, 1, 2, 3, 4]
    assert all(f.read_bytes()[:2] == b"\xff\xd8" for f in frames)

    with sqlite3.connect(workdir / "documents.sqlite3") as db:
        rows = db.execute("SELECT collection, data FROM documents").fetchall()
    videos = [json.loads(d) for c, d in rows if c == "videos"]
    frame_docs = [json.loads(d) for c, d in rows if c == "frames"]
    assert len(videos) == 1
    assert videos[0]["status"] == "sampled"
    assert (videos[0]["duration_s"], videos[0]["fps"], videos[0]["frames_sampled"]) == (
        5.0,
        25.0,
        5,
    )
    assert videos[0]["policy"]["mode"] == "every_seconds"
    assert len(frame_docs) == 5
    assert all(len(f["phash"]) == 16 and f["sharpness"] > 0 for f in frame_docs)


def test_delivered_twice_changes_nothing(media, sampler_settings):
    pipeline = EmbeddedPipeline(sampler_settings)
    info = pipeline.upload(media["clip_5s_25fps"], collector="cam-a")
    pipeline.publisher.drain()
    video_id = pipeline.summary.results[0].video_doc_id
    assert video_id is not None
    before = pipeline.adapters.documents.get("videos", video_id)
    frames_before = {f.name: f.generation for f in pipeline.blobs.list("framesift-frames")}

    data, attributes = finalize_message(info)
    for _ in range(2):
        pipeline.publisher.publish(Topics.RAW_OBJECTS, data, attributes)
    pipeline.publisher.drain()

    assert [r.outcome for r in pipeline.summary.results] == [
        Outcome.SAMPLED,
        Outcome.DUPLICATE,
        Outcome.DUPLICATE,
    ]
    assert pipeline.adapters.documents.get("videos", video_id) == before
    assert {f.name: f.generation for f in pipeline.blobs.list("framesift-frames")} == frames_before
    assert len(_batches(pipeline)) == 1  # one batch for dedup, not three


@pytest.mark.parametrize("decode", ["all", "reference"])
def test_long_video_is_sampled_in_segments_with_the_same_frames(media, sampler_settings, decode):
    """Segments together keep exactly what one pass keeps, decoding every frame or only the
    reference frames (then each window's first reference frame: inside it, a few frames late)."""
    settings = sampler_settings.model_copy(
        update={"reference_decode_min_frames": 0.0 if decode == "all" else 4.0}
    )
    whole = EmbeddedPipeline(settings)
    whole.run([media["clip_5s_25fps"]], collector="cam")
    segmented_settings = settings.model_copy(
        update={"workdir": settings.workdir / "segmented", "segment_seconds": 1.5}
    )
    segmented = EmbeddedPipeline(segmented_settings)

    summary = segmented.run([media["clip_5s_25fps"]], collector="cam")

    outcomes = [r.outcome for r in summary.results]
    assert outcomes[0] == Outcome.SEGMENTED and outcomes[-1] == Outcome.SAMPLED
    # 1.5 s rounds to whole 1 s windows: boundaries at 2 s and 4 s, so 3 segments.
    assert len(outcomes) == 1 + 3
    kept = _sent_timestamps(segmented)
    assert kept == _sent_timestamps(whole)
    if decode == "all":
        assert kept == [0, 1000, 2000, 3000, 4000]
    else:
        # 25 fps, B-frames between references: at most a few frames (40 ms each) late.
        assert [t // 1000 for t in kept] == [0, 1, 2, 3, 4]
        assert all(t % 1000 <= 3 * 40 and t % 40 == 0 for t in kept)
        assert kept != [0, 1000, 2000, 3000, 4000]  # this video's window starts are B-frames
    video = segmented.adapters.documents.get("videos", summary.results[-1].video_doc_id or "")
    assert video is not None
    assert (video["status"], video["frames_sampled"], video["segments_total"]) == ("sampled", 5, 3)
    assert video["decode_mode"] == decode

    # Every segment task delivered again: nothing is sampled or sent twice.
    for message in list(segmented.publisher.published[Topics.VIDEO_SEGMENTS]):
        segmented.publisher.publish(Topics.VIDEO_SEGMENTS, message.data, message.attributes)
    segmented.publisher.drain()
    assert [r.outcome for r in segmented.summary.results[4:]] == [Outcome.DUPLICATE] * 3
    assert _sent_timestamps(segmented) == kept
    assert _ffmpeg_children() == []


def test_decoding_started_on_a_wrong_guess_is_stopped_and_done_as_the_probe_says(
    media, sampler_settings, tmp_path
):
    """Decoding starts before the probe answers, guessing 30 fps (reference frames for one
    frame a second); at 3 fps a window spans 3 frames, under the 4 reference decoding needs,
    so the guess is dropped and every frame decoded, with the frames one pass gives."""
    from framesift_dev.testvideo import generate_test_video

    slow = tmp_path / "slow.mp4"
    # Long enough that the guessed decode fills its pipes and waits: it must be stopped.
    generate_test_video(str(slow), seconds=20, fps="3", gop=6)
    pipeline = EmbeddedPipeline(sampler_settings)
    [result] = pipeline.run([slow], "cam").results

    assert result.outcome is Outcome.SAMPLED
    assert _sent_timestamps(pipeline) == [second * 1000 for second in range(20)]
    video = pipeline.adapters.documents.get("videos", result.video_doc_id or "")
    assert video is not None and video["decode_mode"] == "all"
    assert _ffmpeg_children() == []


def test_object_metadata_overrides_the_sampling_policy(media, sampler_settings):
    pipeline = EmbeddedPipeline(sampler_settings)
    pipeline.upload(media["clip_5s_25fps"], "cam", {"framesift-every-seconds": "2"})
    pipeline.upload(media["clip_4s_ntsc"], "cam", {"framesift-every-seconds": "soon"})
    pipeline.publisher.drain()

    good, bad = pipeline.summary.results
    assert good.outcome is Outcome.SAMPLED
    assert _sent_timestamps(pipeline) == [0, 2000, 4000]
    assert bad.outcome is Outcome.FAILED
    assert bad.reason.startswith("invalid sampling metadata: framesift-every-seconds:")


@pytest.mark.parametrize(
    ("medium", "reason", "frames"),
    [
        ("text_as_mp4", "ffprobe failed: ", 0),
        ("empty_mp4", "empty object (0 bytes)", 0),
        ("image_as_mp4", "no video stream", 0),
        ("audio_only", "no video stream", 0),
        ("truncated", "decode errors: ", 2),
        ("corrupt_middle", "decode errors: ", 2),
        ("huge_frames", "video too large: 8000x6000 is 48000000 pixels", 0),
    ],
)
def test_bad_input_fails_with_a_reason_keeps_good_frames_and_never_retries(
    media, sampler_settings, medium, reason, frames
):
    pipeline = EmbeddedPipeline(sampler_settings)
    summary = pipeline.run([media[medium]], collector="cam-b")

    [result] = summary.results  # delivered once: no retry, no dead letter
    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith(reason), result.reason
    assert summary.dead_letters == 0
    assert result.video_doc_id is not None
    doc = pipeline.adapters.documents.get("videos", result.video_doc_id)
    assert doc is not None
    assert (doc["status"], doc["error"]) == ("failed", result.reason)
    assert doc["frames_sampled"] >= frames
    assert len(_sent_timestamps(pipeline)) == doc["frames_sampled"]
    # The ffmpeg started before the probe answered is stopped and waited for.
    assert _ffmpeg_children() == []


def test_a_source_that_stays_down_is_retried_given_up_and_sampled_when_replayed(
    media, sampler_settings, monkeypatch
):
    """Deployed, ffmpeg reads the video from a signed URL: a server or network that stays down
    is retried (not the video marked unreadable at once), given up on at the delivery limit
    with the reason on the video, and the dead letter's replay samples it as if nothing had
    happened."""
    settings = sampler_settings.model_copy(
        update={"source_reconnect_delay_max_s": 1, "max_delivery_attempts": 2}
    )
    pipeline = EmbeddedPipeline(settings)
    clip = media["clip_5s_25fps"]
    with serve(clip, Faults(status=503, failures=None)) as down:
        monkeypatch.setattr(pipeline.blobs, "stream_url", lambda *_, **__: down.url)
        summary = pipeline.run([clip], collector="cam-a")

    assert summary.dead_letters == 1
    [video] = pipeline.adapters.documents.where(Collections.VIDEOS, "collector", "cam-a")
    assert video["status"] == "failed"
    assert "503" in video["error"] and "127.0.0.1" not in video["error"]
    [dead] = pipeline.adapters.documents.where(Collections.DEAD_LETTERS, "subscriber", "sampler")
    assert dead["attempts"] == 2
    assert _ffmpeg_children() == []

    with serve(clip, Faults()) as back:
        monkeypatch.setattr(pipeline.blobs, "stream_url", lambda *_, **__: back.url)
        assert replay(pipeline.adapters.documents, pipeline.publisher, SAMPLER.name) == 1
        pipeline.publisher.drain()

    video = pipeline.adapters.documents.get(Collections.VIDEOS, video["id"])
    assert video is not None
    assert (video["status"], video["error"], video["frames_sampled"]) == ("sampled", None, 5)
    assert len(_sent_timestamps(pipeline)) == 5


def test_segments_whose_source_stays_down_fail_their_video_until_replayed(
    media, sampler_settings, monkeypatch
):
    settings = sampler_settings.model_copy(
        update={
            "source_reconnect_delay_max_s": 1,
            "max_delivery_attempts": 2,
            "segment_seconds": 1.5,  # 3 segments
        }
    )
    pipeline = EmbeddedPipeline(settings)
    clip = media["clip_5s_25fps"]
    with serve(clip, Faults()) as up, serve(clip, Faults(status=503, failures=None)) as down:
        urls = iter([up.url])  # the notification's probe reads it; then the source goes down
        monkeypatch.setattr(pipeline.blobs, "stream_url", lambda *_, **__: next(urls, down.url))
        summary = pipeline.run([clip], collector="cam-a")

        assert summary.dead_letters == 3
        [video] = pipeline.adapters.documents.where(Collections.VIDEOS, "collector", "cam-a")
        assert video["status"] == "failed"
        assert video["error"].startswith("segment 0: ") and "503" in video["error"]

        monkeypatch.setattr(pipeline.blobs, "stream_url", lambda *_, **__: up.url)
        assert replay(pipeline.adapters.documents, pipeline.publisher, SAMPLER.name) == 3
        pipeline.publisher.drain()

    video = pipeline.adapters.documents.get(Collections.VIDEOS, video["id"])
    assert video is not None
    assert (video["status"], video["error"], video["frames_sampled"]) == ("sampled", None, 5)
    assert [t // 1000 for t in _sent_timestamps(pipeline)] == [0, 1, 2, 3, 4]
    assert _ffmpeg_children() == []


def test_cli_run_exits_nonzero_when_a_video_fails(media, tmp_path):
    result = CliRunner().invoke(app, ["run", str(media["text_as_mp4"]), "--workdir", str(tmp_path)])
    assert result.exit_code == 1
    assert "failed" in result.output


def test_cli_run_json_is_one_document_when_an_input_fails(media, tmp_path):
    """Logs go to stderr: stdout holds exactly the summary, even with a failing input."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in ("clip_5s_25fps", "text_as_mp4", "three_shots"):
        (inputs / media[name].name).write_bytes(media[name].read_bytes())
    result = CliRunner().invoke(
        app, ["run", str(inputs), "--workdir", str(tmp_path / "work"), "--json"]
    )

    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert sorted(video["outcome"] for video in summary["videos"]) == [
        "failed",
        "sampled",
        "sampled",
    ]
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any("video failed" in entry["message"] for entry in logged)
    # Each line carries its own video's context, never another's.
    failed = next(v["video"] for v in summary["videos"] if v["outcome"] == "failed")
    failure_lines = [entry for entry in logged if "video failed" in entry["message"]]
    assert failure_lines
    assert all(entry["video_doc_id"] == failed for entry in failure_lines)
    assert all("batch_id" not in entry for entry in failure_lines)  # it never had a batch


def test_a_version_replaced_before_it_is_sampled_is_gone_not_read_as_the_newer(
    media, sampler_settings, tmp_path
):
    """Two uploads under one name before the sampler gets to the first: the first version is
    failed as gone (its frames would be the second's), the second is sampled as itself."""
    pipeline = EmbeddedPipeline(sampler_settings)
    upload = tmp_path / "a.mp4"
    upload.write_bytes(media["clip_5s_25fps"].read_bytes())
    first = pipeline.upload(upload, "cam-7")
    upload.write_bytes(media["three_shots"].read_bytes())
    second = pipeline.upload(upload, "cam-7")
    pipeline.publisher.drain()

    assert [(r.outcome, r.reason.split(":")[0]) for r in pipeline.summary.results] == [
        (Outcome.FAILED, "the video is gone"),
        (Outcome.SAMPLED, ""),
    ]
    videos = {
        v["generation"]: v
        for v in pipeline.adapters.documents.where(Collections.VIDEOS, "collector", "cam-7")
    }
    assert videos[first.generation]["frames_sampled"] == 0
    assert videos[second.generation]["frames_sampled"] == 6  # three_shots: 6 s
    frames = pipeline.adapters.documents.where(Collections.FRAMES, "collector", "cam-7")
    assert {f["source_generation"] for f in frames} == {second.generation}


def test_uploads_with_the_same_stem_keep_their_own_frames(media, sampler_settings, tmp_path):
    """cam-9/a.mp4 and cam-9/a.mov share a stem: each keeps its own JPEGs, and every frame
    document's sha256 is the digest of the bytes at its object name."""
    pipeline = EmbeddedPipeline(sampler_settings)
    first, second = tmp_path / "a.mp4", tmp_path / "a.mov"
    first.write_bytes(media["clip_5s_25fps"].read_bytes())
    second.write_bytes(media["three_shots"].read_bytes())
    summary = pipeline.run([first, second], "cam-9")

    assert [r.outcome for r in summary.results] == [Outcome.SAMPLED, Outcome.SAMPLED]
    frames = pipeline.adapters.documents.where(Collections.FRAMES, "collector", "cam-9")
    assert len(frames) == 5 + 6
    assert len({f["object_name"] for f in frames}) == len(frames)
    for frame in frames:
        stored = pipeline.blobs.get(frame["bucket"], frame["object_name"])
        assert hashlib.sha256(stored).hexdigest() == frame["sha256"]
        assert frame["object_name"].startswith(f"cam-9/{frame['video_doc_id']}/")


@pytest.mark.parametrize("name", ["cam-9//a.mp4", "cam-9/./a.mp4", "./cam-9/a.mp4"])
def test_a_name_parsing_would_change_is_refused_not_normalised(media, sampler_settings, name):
    pipeline = EmbeddedPipeline(sampler_settings)
    info = pipeline.blobs.put_file(sampler_settings.raw_bucket, name, media["clip_4s_ntsc"], {})
    pipeline.publisher.publish(Topics.RAW_OBJECTS, *finalize_message(info))
    pipeline.publisher.drain()

    assert pipeline.summary.results == []  # ignored, with its reason
    assert pipeline.adapters.documents.where(Collections.FRAMES, "collector", "cam-9") == []
    [ignored] = pipeline.adapters.documents.where(Collections.IGNORED_UPLOADS, "object_name", name)
    assert "refused" in ignored["reason"] and ignored["ignored_by"] == "sampler"


@pytest.mark.parametrize(
    ("name", "by", "reason"),
    [
        ("cam-9/notes.txt", "sampler", "extension '.txt' is not a video's"),
        ("cam-9/deep/a.mp4", "sampler", "not named {collector}/{name}.{ext}"),
        ("images/cam-9/photo.gif", "dedup", "extension '.gif' is not an image's"),
        ("images/cam-9/../x.jpg", "dedup", "not named {collector}/{name}.{ext}"),
        # An empty collector: "images//x.jpg" parses as the collector "/" (no index id holds it).
        ("images//x.jpg", "dedup", "collector '/' is a path, not one name"),
        ("cam\r9/a.mp4", "sampler", "'cam\\r9/a.mp4' contains a control character"),
    ],
)
def test_each_ignored_upload_is_recorded_once_and_exported(
    sampler_settings, tmp_path, name, by, reason
):
    pipeline = EmbeddedPipeline(sampler_settings)
    info = pipeline.blobs.put(sampler_settings.raw_bucket, name, b"not media", "text/plain")
    for _ in range(2):  # delivered twice
        pipeline.publisher.publish(Topics.RAW_OBJECTS, *finalize_message(info))
    pipeline.run([], "cam-9")  # drains, then exports

    records = pipeline.adapters.documents.where(Collections.IGNORED_UPLOADS, "object_name", name)
    assert [(r["ignored_by"], r["reason"]) for r in records] == [(by, reason)]
    rows = pipeline.adapters.warehouse.query(
        "SELECT object_name, reason FROM {dataset}.ignored_uploads"
    )
    assert rows == [{"object_name": name, "reason": reason}]

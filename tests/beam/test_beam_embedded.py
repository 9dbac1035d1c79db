"""The Beam pipeline on the local runner over the embedded adapters, against the embedded
pipeline (the functions' handlers on in-process Pub/Sub) on the same uploaded objects: the same
documents, frames, decisions, manifests and failure records, field by field."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("apache_beam")

import apache_beam
from apache_beam.options.pipeline_options import PipelineOptions

from framesift.adapters.embedded.folder import FolderBlobStore
from framesift.beam.__main__ import main
from framesift.beam.pipeline import Labeling, Steps, decide_and_label, list_prefix, run
from framesift.beam.steps import Message
from framesift.config import Backend, Settings
from framesift.embedded import EmbeddedPipeline
from framesift.errors import VendorUnavailable
from framesift.stages.labeler import Labeler
from framesift.topology import Collections, Topics
from tests.support.flakyhttp import Faults, serve
from tests.support.media import lavfi_video

LOCAL = PipelineOptions(["--runner=DirectRunner"])
# What both paths write: the exporter's own state is the embedded run's alone.
COMPARED = (
    Collections.VIDEOS,
    Collections.VIDEO_SEGMENTS,
    Collections.FRAMES,
    Collections.CONTENT_HASHES,
    Collections.PHASH_OWNERS,
    Collections.DEDUP_BATCHES,
    Collections.DEAD_LETTERS,
    Collections.IGNORED_UPLOADS,
)
_POINTER = re.compile(r"0x[0-9a-f]+")  # ffmpeg's context addresses in its error lines


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A listing whose videos share no picture (so no decision depends on which video is
    decided first): cuts, a still scene, a long video sampled in segments, a truncated video
    and a text file named .mp4."""
    folder = tmp_path_factory.mktemp("listing")
    size = "size=320x240:rate=25"
    lavfi_video(
        folder / "shots.mp4",
        [
            f"color=c=red:{size}:duration=2",
            f"color=c=blue:{size}:duration=2",
            f"mandelbrot={size},trim=end_frame=50",
        ],
    )
    lavfi_video(folder / "parked.mp4", [f"smptebars={size}:duration=4,noise=alls=12:allf=t+u"])
    lavfi_video(folder / "long.mp4", ["testsrc2=size=256x192:rate=25:duration=7"])
    whole = folder / "whole.mp4"
    lavfi_video(whole, [f"cellauto={size},trim=end_frame=100"], "-movflags", "+faststart")
    data = whole.read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    whole.unlink()
    (folder / "notes.mp4").write_text("this is a text file, not a video\n" * 20)
    return folder


def _settings(workdir: Path) -> Settings:
    # 7 s at 3 s a segment: the long video is sampled in 3 segments, spread over the workers.
    return Settings(backend=Backend.EMBEDDED, workdir=workdir, segment_seconds=3)


def _stable(value: Any, workdir: Path) -> Any:
    """A stored value with what differs between two runs of the same work taken out: its
    folder, ffmpeg's pointers and the times it was written."""
    text = _POINTER.sub("0x", json.dumps(value).replace(str(workdir), "<workdir>"))
    stable = json.loads(text)
    if isinstance(stable, dict):
        return {key: item for key, item in stable.items() if not key.endswith("_at")}
    return stable


def _state(workdir: Path) -> dict[str, Any]:
    """Every document both paths write, and every object of the frames bucket (the JPEGs and
    the labeling manifests)."""
    with sqlite3.connect(workdir / "documents.sqlite3") as db:
        rows = db.execute("SELECT collection, id, data FROM documents").fetchall()
    state: dict[str, Any] = {collection: {} for collection in COMPARED}
    for collection, doc_id, data in rows:
        if collection in COMPARED:
            state[collection][doc_id] = _stable(json.loads(data), workdir)
    # A dead letter is filed under its Pub/Sub message's id, which each transport makes its own.
    state[Collections.DEAD_LETTERS] = sorted(
        (
            {k: v for k, v in letter.items() if k not in ("id", "message_id")}
            for letter in state[Collections.DEAD_LETTERS].values()
        ),
        key=json.dumps,
    )
    frames = workdir / "buckets" / "framesift-frames"
    state["frames bucket"] = {
        str(path.relative_to(frames)): _stable(path.read_bytes().decode("latin-1"), workdir)
        for path in sorted(frames.rglob("*"))
        if path.is_file()
    }
    return state


def _same_uploads(source: Path, workdir: Path) -> None:
    """The raw bucket of ``source`` copied to ``workdir``: the same objects, generations too."""
    for bucket in ("framesift-raw", ".meta/framesift-raw"):
        shutil.copytree(source / "buckets" / bucket, workdir / "buckets" / bucket)


def _functions_path(videos: Path, workdir: Path) -> dict[str, Any]:
    EmbeddedPipeline(_settings(workdir)).run([videos], collector="cam")
    return _state(workdir)


def test_beam_gives_the_functions_paths_frames_decisions_tasks_and_failures(videos, tmp_path):
    functions = tmp_path / "functions"
    expected = _functions_path(videos, functions)
    beam = tmp_path / "beam"
    _same_uploads(functions, beam)
    settings = _settings(beam)
    listing = list_prefix(settings, "")

    totals = run(settings, listing, LOCAL)

    assert _state(beam) == expected
    frames = expected[Collections.FRAMES].values()
    kept = [f for f in frames if f["dedup_status"] == "kept"]
    dropped = [f for f in frames if f["dedup_status"] == "dropped"]
    assert kept and dropped  # the listing exercises both decisions
    assert all(f["labeling_status"] == "requested" for f in kept)
    statuses = Counter(v["status"] for v in expected[Collections.VIDEOS].values())
    assert statuses == {"sampled": 3, "failed": 2}  # the truncated video keeps its good frames
    assert expected[Collections.VIDEO_SEGMENTS]  # the long video was cut and spread
    assert (totals["videos_sampled"], totals["videos_failed"]) == (3, 2)
    assert totals["frames_kept"] == len(kept) and totals["labeling_requested"] == len(kept)
    assert totals["given_up"] == 0

    # The same listing again (a rerun, or every bundle re-executed): nothing changes.
    again = run(settings, listing, LOCAL)

    assert _state(beam) == expected
    assert again["sampler_duplicate"] == 5
    assert again["frames_kept"] == again["labeling_requested"] == 0


def test_a_delivery_that_fails_is_delivered_again_within_the_step(videos, tmp_path, monkeypatch):
    """A transient failure (the vendor down once) is retried by the step, as Pub/Sub would
    redeliver: the run ends as if nothing had failed, without a duplicate task."""
    functions = tmp_path / "functions"
    expected = _functions_path(videos, functions)
    beam = tmp_path / "beam"
    _same_uploads(functions, beam)
    handle = Labeler.handle
    failed: list[str] = []

    def down_once(self: Labeler, kept: Any) -> Any:
        if not failed:
            failed.append(kept.batch_id)
            handle(self, kept)  # its tasks are made, then the vendor's answer is lost
            raise VendorUnavailable("the vendor answered 503")
        return handle(self, kept)

    monkeypatch.setattr(Labeler, "handle", down_once)
    settings = _settings(beam)

    totals = run(settings, list_prefix(settings, ""), LOCAL)

    assert failed  # it did fail once
    assert _state(beam) == expected
    assert totals["given_up"] == 0


def test_a_video_whose_source_stays_down_is_dead_lettered_as_by_the_functions(
    videos, tmp_path, monkeypatch
):
    """A video ffmpeg cannot read (its server down) gets the same failure record and dead
    letter on both paths, and the pipeline finishes the other videos."""
    clip = videos / "parked.mp4"
    listing = tmp_path / "listing"
    listing.mkdir()
    shutil.copy(clip, listing / "parked.mp4")
    updates = {"source_reconnect_delay_max_s": 1, "max_delivery_attempts": 2}
    functions = tmp_path / "functions"
    with serve(clip, Faults(status=503, failures=None)) as down:
        monkeypatch.setattr(FolderBlobStore, "stream_url", lambda *_, **__: down.url)
        pipeline = EmbeddedPipeline(_settings(functions).model_copy(update=updates))
        pipeline.run([listing], collector="cam")
        expected = _state(functions)
        beam = tmp_path / "beam"
        _same_uploads(functions, beam)
        settings = _settings(beam).model_copy(update=updates)

        totals = run(settings, list_prefix(settings, ""), LOCAL)

    [dead] = expected[Collections.DEAD_LETTERS]
    assert (dead["subscriber"], dead["attempts"]) == ("sampler", 2)
    [video] = expected[Collections.VIDEOS].values()
    assert video["status"] == "failed" and "503" in video["error"]
    assert _state(beam) == expected
    assert totals["given_up"] == 1


def test_the_command_line_runs_local_files_and_prints_the_counters(
    videos, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("FRAMESIFT_WORKDIR", str(tmp_path / "work"))
    monkeypatch.setenv("FRAMESIFT_SEGMENT_SECONDS", "3")

    command = ["--input", str(videos / "parked.mp4"), "--collector", "cam", "--json"]
    assert main([*command, "--runner", "DirectRunner"]) == 0

    totals = json.loads(capsys.readouterr().out)
    assert (totals["videos_sampled"], totals["frames_sampled"]) == (1, 4)
    assert totals["frames_kept"] + totals["frames_dropped"] == 4
    assert totals["labeling_requested"] == totals["frames_kept"] > 0
    with pytest.raises(SystemExit):  # local files without a collector
        main(["--input", str(videos)])


def test_dedup_and_label_bundles_executed_again_change_nothing(videos, tmp_path):
    """As when a runner executes the Dedup and Label bundles again after their effects (a
    worker lost before its outputs were committed), and dedup had not even recorded its batches
    as sent: every frame batch is decided and its kept frames sent to the labeler again."""
    functions = tmp_path / "functions"
    pipeline = EmbeddedPipeline(_settings(functions))
    pipeline.run([videos], collector="cam")
    batches = [
        Message(Topics.FRAMES_SAMPLED, message.data, message.attributes)
        for message in pipeline.publisher.published[Topics.FRAMES_SAMPLED]
    ]
    beam = tmp_path / "beam"
    _same_uploads(functions, beam)
    settings = _settings(beam)
    run(settings, list_prefix(settings, ""), LOCAL)
    expected = _state(beam)
    with sqlite3.connect(beam / "documents.sqlite3") as db:
        db.execute("DELETE FROM documents WHERE collection = ?", (Collections.DEDUP_BATCHES,))

    with apache_beam.Pipeline(options=LOCAL) as again:
        decide_and_label(again | apache_beam.Create(batches), Steps.of(settings, Labeling.PIPELINE))

    assert _state(beam) == expected == _state(functions)

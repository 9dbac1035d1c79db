"""The edge agent with an embedded deployment (folders, SQLite, in-process Pub/Sub, drained
after each video): what it uploads, what a second run does, and the clear record of each input
it cannot take, while it goes on with the others."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from framesift import __version__, cli
from framesift.adapters.embedded.duckdb import DuckDbWarehouse
from framesift.adapters.embedded.sqlite import SqliteDocumentStore
from framesift.config import Backend, Settings
from framesift.edge.agent import EdgeAgent, EdgeConfig, generation_of
from framesift.edge.journal import VideoEntry, VideoState
from framesift.edge.uploader import CloudUploader
from framesift.embedded import EmbeddedPipeline
from framesift.sift import Sifter
from framesift.topology import Collections, Topics
from framesift_dev.testvideo import generate_test_video
from tests.support.media import lavfi_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("edge-videos")
    generate_test_video(str(folder / "drive.mp4"), seconds=4)
    shots = ["color=c=red:", "color=c=blue:", "testsrc2="]
    lavfi_video(folder / "shots.mp4", [f"{shot}size=320x256:rate=25:duration=2" for shot in shots])
    return folder


def _agent(tmp_path: Path, **config: object) -> tuple[EdgeAgent, EmbeddedPipeline]:
    cloud = EmbeddedPipeline(Settings(backend=Backend.EMBEDDED, workdir=tmp_path / "cloud"))
    settings = {"edge_id": "edge-a", "collector": "cam", "stable_seconds": 0.0, **config}
    agent = EdgeAgent(
        EdgeConfig(state_dir=tmp_path / "state", **settings),  # type: ignore[arg-type]
        cloud.settings,
        cloud.adapters,
        cloud.publisher.drain,
    )
    return agent, cloud


def _kept(documents: SqliteDocumentStore, collector: str) -> dict[str, list[int]]:
    """Each video's kept frames (by file name): their timestamps."""
    names = {
        v["id"]: v["object_name"].rsplit("/", 1)[1]
        for v in documents.where(Collections.VIDEOS, "collector", collector)
    }
    kept: dict[str, list[int]] = {name: [] for name in names.values()}
    for frame in documents.where(Collections.FRAMES, "collector", collector):
        if frame.get("dedup_status") == "kept":
            kept[names[frame["video_doc_id"]]].append(frame["timestamp_ms"])
    return {name: sorted(times) for name, times in kept.items()}


def test_the_edge_keeps_what_the_pipeline_keeps_and_uploads_nothing_else(videos, tmp_path):
    agent, cloud = _agent(tmp_path)
    entries = agent.run([videos])
    assert [e.state for e in entries] == [VideoState.DONE, VideoState.DONE]

    reference = EmbeddedPipeline(Settings(backend=Backend.EMBEDDED, workdir=tmp_path / "ref"))
    summary = reference.run(sorted(videos.iterdir()), "cam")
    assert summary.dropped  # the shots' repeated frames
    edge_kept = _kept(cloud.adapters.documents, "cam")
    assert edge_kept == _kept(reference.adapters.documents, "cam")

    frames = cloud.adapters.documents.where(Collections.FRAMES, "collector", "cam")
    assert len(frames) == sum(map(len, edge_kept.values()))  # the dropped ones stayed home
    assert all(f["labeling_status"] == "requested" for f in frames)
    assert {e.frames_sampled for e in entries} == {r.frames for r in summary.videos}
    for frame in frames:  # each frame's provenance, and its JPEG in the frames bucket
        assert frame["sampled_by"] == "edge" and frame["edge_id"] == "edge-a"
        assert frame["source_path"] in {str(p) for p in videos.iterdir()}
        assert frame["sampling_settings"]["policy"]["every_seconds"] == 1.0
        cloud.blobs.get(frame["bucket"], frame["object_name"])


def test_a_second_run_sends_nothing(videos, tmp_path):
    agent, cloud = _agent(tmp_path)
    first = agent.run([videos])
    frames = cloud.adapters.documents.where(Collections.FRAMES, "collector", "cam")
    published = sum(len(messages) for messages in cloud.publisher.published.values())
    again, _ = _agent(tmp_path)  # a restart, with the same state folder and deployment
    assert again.run([videos]) == first
    assert cloud.adapters.documents.where(Collections.FRAMES, "collector", "cam") == frames
    assert sum(len(messages) for messages in cloud.publisher.published.values()) == published


def test_bad_inputs_are_recorded_and_the_others_go_on(videos, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "loop.mp4").symlink_to(inputs / "loop.mp4")  # unreadable (ELOOP), even to root
    (inputs / "notes.mp4").write_text("not a video")
    (inputs / "bad name\n.mp4").write_bytes(b"\0")
    for path in inputs.iterdir():
        if not path.is_symlink():
            os.utime(path, (1, 1))  # written long ago
    growing = inputs / "growing.mp4"
    growing.write_bytes(b"\0" * 1000)  # written just now
    agent, cloud = _agent(tmp_path, stable_seconds=3600.0)
    paths = [*sorted(inputs.iterdir()), videos / "drive.mp4"]
    os.utime(videos / "drive.mp4", (1, 1))
    entries = {Path(e.path).name: e for e in agent.run(paths, until_done=False)}

    assert entries["loop.mp4"].state is VideoState.FAILED
    assert "unreadable" in (entries["loop.mp4"].error or "")
    assert entries["bad name\n.mp4"].state is VideoState.FAILED
    assert "control character" in (entries["bad name\n.mp4"].error or "")
    assert entries["growing.mp4"].state is VideoState.WAITING
    assert "still being written" in (entries["growing.mp4"].error or "")
    # Not a video: recorded in the cloud as the sampler function records it.
    assert entries["notes.mp4"].state is VideoState.DONE
    [notes] = [
        v
        for v in cloud.adapters.documents.where(Collections.VIDEOS, "collector", "cam")
        if v["object_name"] == "cam/notes.mp4"
    ]
    assert notes["status"] == "failed" and "ffprobe failed" in notes["error"]
    assert entries["drive.mp4"].state is VideoState.DONE  # the others went on


def test_a_full_disk_puts_the_video_off_and_it_resumes(videos, tmp_path, monkeypatch):
    agent, _ = _agent(tmp_path)
    sift = Sifter.sift

    def disk_full(*args: object) -> object:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Sifter, "sift", disk_full)
    [entry] = agent.run([videos / "drive.mp4"], until_done=False)
    assert entry.state is VideoState.RETRY and entry.resume_state is VideoState.HASHED
    assert "disk full" in (entry.error or "")
    monkeypatch.setattr(Sifter, "sift", sift)
    [entry] = agent.run([videos / "drive.mp4"])
    assert entry.state is VideoState.DONE and entry.frames_kept == 4


def test_the_provenance_reaches_the_warehouse_the_report_and_the_status(
    videos, tmp_path, monkeypatch
):
    """``framesift edge run`` with an embedded deployment, then its export, ``framesift
    report`` and ``framesift edge status``: each says where the frames were sampled."""
    runner = CliRunner()
    work, state = tmp_path / "work", tmp_path / "state"
    monkeypatch.setenv("FRAMESIFT_WORKDIR", str(work))
    edge = ["--state-dir", str(state), "--collector", "cam", "--edge-id", "edge-7"]
    result = runner.invoke(cli.app, ["edge", "run", str(videos / "drive.mp4"), *edge])
    assert result.exit_code == 0, result.output

    exported = runner.invoke(cli.app, ["export-warehouse"])
    assert exported.exit_code == 0, exported.output
    warehouse = DuckDbWarehouse(work / "warehouse.duckdb", Settings().bigquery_dataset)
    sha = hashlib.sha256((videos / "drive.mp4").read_bytes()).hexdigest()
    for table in ("videos", "frames"):
        rows = warehouse.query(
            f"SELECT sampled_by, edge_id, source_sha256, sampling_settings, framesift_version"
            f" FROM {{dataset}}.{table}"
        )
        assert rows and all(
            (r["sampled_by"], r["edge_id"], r["source_sha256"]) == ("edge", "edge-7", sha)
            for r in rows
        )
        assert json.loads(rows[0]["sampling_settings"])["jpeg_quality"] == 90
        assert rows[0]["framesift_version"] == __version__

    report = runner.invoke(cli.app, ["report", "--workdir", str(work), "--out", str(tmp_path)])
    assert report.exit_code == 0, report.output
    assert "sampled at edge edge-7" in (tmp_path / "index.html").read_text()
    status = runner.invoke(cli.app, ["edge", "status", "--state-dir", str(state), "--json"])
    [entry] = [json.loads(line) for line in status.output.splitlines()]
    assert (entry["state"], entry["sha256"], entry["frames_kept"]) == ("done", sha, 4)


def test_what_the_edge_keeps_on_disk_is_the_journal_and_the_recent_index(videos, tmp_path):
    """Once a video is done its local JPEGs and copy go (the local index keeps its hashes),
    and the local stores of windows older than the last two go with no unfinished video."""
    agent, _ = _agent(tmp_path)
    old_window = tmp_path / "state" / "windows" / "7"
    (old_window / "buckets").mkdir(parents=True)
    [entry] = agent.run([videos / "drive.mp4"])
    window = tmp_path / "state" / "windows" / str(entry.window)
    assert not [p for p in (window / "buckets").rglob("*") if p.is_file()]
    local = SqliteDocumentStore(window / "documents.sqlite3")
    assert len(local.where(Collections.FRAMES, "video_doc_id", entry.video_doc_id)) == 4
    assert not old_window.exists()


def test_a_sift_hands_the_video_to_the_sampler_once(videos, tmp_path):
    sifter = Sifter(Settings(backend=Backend.EMBEDDED, workdir=tmp_path / "local"))
    deliveries: list[bytes] = []
    sifter.pipeline.publisher.subscribe(
        Topics.RAW_OBJECTS, lambda data, *_: deliveries.append(data)
    )
    sifted = sifter.sift(videos / "drive.mp4", "cam", generation_of("ab" * 32))
    assert len(sifted.kept) == 4
    assert len(deliveries) == 1


@pytest.mark.parametrize("folders", [["--watch"], ["videos"], ["--watch", "videos"]])
def test_announced_files_and_folders_in_one_run_are_refused(tmp_path, monkeypatch, folders):
    """The queue is read until Ctrl-C, so folders given with it would never be looked at."""
    monkeypatch.setenv("FRAMESIFT_WORKDIR", str(tmp_path / "work"))
    url = "amqp://guest:guest@127.0.0.1:1/"  # nothing listens: the run must not get that far
    result = CliRunner().invoke(
        cli.app,
        ["edge", "run", *folders, "--rabbitmq-url", url, "--state-dir", str(tmp_path / "state")],
    )
    assert result.exit_code == 2, result.output
    assert "--rabbitmq-url takes the announced files only" in result.output


def test_a_sifter_holds_no_message_or_result_once_a_video_is_sifted(videos, tmp_path):
    """An agent's sifter lives as long as its window (a day, with --watch): what it holds
    after each video must not grow with the videos."""
    sifter = Sifter(Settings(backend=Backend.EMBEDDED, workdir=tmp_path / "local"))
    publisher, pipeline = sifter.pipeline.publisher, sifter.pipeline
    for name, seed in (("drive.mp4", "01"), ("shots.mp4", "02")):
        assert sifter.sift(videos / name, "cam", generation_of(seed * 32)).kept
        held = [
            *publisher.published.values(),
            *publisher.retained.values(),
            publisher.dead_letters,
            pipeline.summary.results,
            pipeline.summary.batches,
        ]
        assert sum(map(len, held)) == 0, name


def _unreachable(*args: object, **kwargs: object) -> None:
    raise ConnectionError("the deployment is unreachable")


def _storage_down(monkeypatch, cloud: EmbeddedPipeline) -> None:
    """The deployment's storage unreachable: a frame's JPEG cannot be put."""
    monkeypatch.setattr(cloud.blobs, "put", _unreachable)


def test_one_video_at_two_paths_publishes_no_frame_before_it_is_uploaded(
    videos, tmp_path, monkeypatch
):
    """The same bytes under the same name in two folders are one video (the same ids): the
    second path must not take the frames the first has not uploaded yet for sent, or dedup
    would decide on frames whose documents do not exist (and never get their JPEG's name)."""
    copies = [tmp_path / "inputs" / folder / "drive.mp4" for folder in ("a", "b")]
    for copy in copies:
        copy.parent.mkdir(parents=True)
        copy.write_bytes((videos / "drive.mp4").read_bytes())
    agent, cloud = _agent(tmp_path, retry_seconds=0.0)
    with monkeypatch.context() as outage:
        _storage_down(outage, cloud)
        entries = agent.run(copies, until_done=False)
    assert [e.state for e in entries] == [VideoState.RETRY, VideoState.RETRY]
    assert not cloud.adapters.documents.where(Collections.FRAMES, "collector", "cam")

    entries = agent.run(copies, until_done=False)  # one pass, storage back
    assert [e.state for e in entries] == [VideoState.DONE, VideoState.DONE]
    frames = cloud.adapters.documents.where(Collections.FRAMES, "collector", "cam")
    assert len(frames) == 4
    for frame in frames:
        assert frame["dedup_status"] == "kept"
        cloud.blobs.get(frame["bucket"], frame["object_name"])
    for copy in copies:  # each path's journal lists the frames as sent
        assert [step for _, step in agent.journal.frames(str(copy))] == ["uploaded"] * 4


def test_frames_a_sift_again_keeps_besides_the_journals_are_uploaded_before_published(
    videos, tmp_path, monkeypatch
):
    """A window's store lost, a video is sifted again and may keep frames its journal never
    listed (the videos it was deduplicated against are forgotten): here, a journal that
    lists two of its four. Each is uploaded before it is handed to dedup."""
    agent, cloud = _agent(tmp_path, retry_seconds=0.0)
    video = str(videos / "drive.mp4")
    with monkeypatch.context() as outage:
        _storage_down(outage, cloud)
        [entry] = agent.run([videos / "drive.mp4"], until_done=False)
    assert entry.state is VideoState.RETRY and entry.resume_state is VideoState.RECORDED
    db = sqlite3.connect(tmp_path / "state" / "journal.sqlite3", isolation_level=None)
    db.execute(
        "DELETE FROM frames WHERE frame_id IN (?, ?)",
        [f for f, _ in agent.journal.frames(video)][:2],
    )
    db.close()

    [entry] = agent.run([videos / "drive.mp4"], until_done=False)
    assert entry.state is VideoState.DONE
    frames = cloud.adapters.documents.where(Collections.FRAMES, "collector", "cam")
    assert len(frames) == 4
    for frame in frames:
        assert frame["dedup_status"] == "kept"
        cloud.blobs.get(frame["bucket"], frame["object_name"])
    assert [step for _, step in agent.journal.frames(video)] == ["uploaded"] * 4


def _put_off_once_recorded(
    videos: Path, tmp_path: Path, monkeypatch
) -> tuple[EdgeAgent, EmbeddedPipeline, Path, VideoEntry]:
    """A copy of drive.mp4 whose document is in the cloud, ``processing``, its frames not
    uploaded (storage was down)."""
    video = tmp_path / "inputs" / "drive.mp4"
    video.parent.mkdir()
    video.write_bytes((videos / "drive.mp4").read_bytes())
    agent, cloud = _agent(tmp_path, retry_seconds=0.0)
    with monkeypatch.context() as outage:
        _storage_down(outage, cloud)
        [entry] = agent.run([video], until_done=False)
    assert entry.resume_state is VideoState.RECORDED
    return agent, cloud, video, entry


def test_a_file_changed_mid_upload_fails_its_old_version_in_the_cloud(
    videos, tmp_path, monkeypatch
):
    """Its document was created (``processing``) when the file changed: the old version is
    recorded ``failed`` with why, in the cloud and the journal, and the file taken again as
    a new video, not left ``processing`` forever."""
    agent, cloud, video, old = _put_off_once_recorded(videos, tmp_path, monkeypatch)
    video.write_bytes((videos / "shots.mp4").read_bytes())  # rewritten, under the same name
    os.utime(video, (1, 1))  # and long enough ago to be taken
    documents = cloud.adapters.documents
    with monkeypatch.context() as outage:  # the old version cannot be failed yet: both wait
        outage.setattr(documents, "merge", _unreachable)
        [waiting] = agent.run([video], until_done=False)
    assert waiting.state is VideoState.WAITING
    [new] = agent.run([video], until_done=False)
    assert new.state is VideoState.DONE and new.video_doc_id != old.video_doc_id
    stranded = documents.get(Collections.VIDEOS, str(old.video_doc_id))
    assert stranded is not None and stranded["status"] == "failed"
    assert "source changed" in stranded["error"]
    assert documents.get(Collections.VIDEOS, str(new.video_doc_id))["status"] == "sampled"
    [(_, path, doc_id, why)] = agent.journal.superseded_versions()
    assert (path, doc_id) == (str(video), old.video_doc_id) and "source changed" in why
    agent.run([video], until_done=False)  # a pass more: nothing more is failed
    assert documents.get(Collections.VIDEOS, str(new.video_doc_id))["status"] == "sampled"
    assert len(agent.journal.superseded_versions()) == 1
    status = CliRunner().invoke(cli.app, ["edge", "status", "--state-dir", str(tmp_path / "state")])
    assert "versions failed for a newer one" in status.output


def test_a_file_only_touched_mid_upload_ends_sampled(videos, tmp_path, monkeypatch):
    """The same bytes, a new modification time: the new version is the same video, failed
    for a moment, then ended as its run ends it."""
    agent, cloud, video, old = _put_off_once_recorded(videos, tmp_path, monkeypatch)
    os.utime(video, (1, 1))
    agent.run([video], until_done=False)
    [new] = agent.run([video], until_done=False)  # a pass more: its record is failed once
    assert new.state is VideoState.DONE and new.video_doc_id == old.video_doc_id
    document = cloud.adapters.documents.get(Collections.VIDEOS, str(new.video_doc_id))
    assert document is not None and (document["status"], document["error"]) == ("sampled", None)
    assert len(agent.journal.superseded_versions()) == 1


def test_a_changed_file_leaves_the_same_video_at_another_path_sampled(
    videos, tmp_path, monkeypatch
):
    """Its old version is the video another path holds too, done already: that path's run
    ended the document, which the change must not fail."""
    copies = [tmp_path / "inputs" / folder / "drive.mp4" for folder in ("a", "b")]
    for copy in copies:
        copy.parent.mkdir(parents=True)
        copy.write_bytes((videos / "drive.mp4").read_bytes())
    agent, cloud = _agent(tmp_path, retry_seconds=0.0)
    [done] = agent.run(copies[:1], until_done=False)
    assert done.state is VideoState.DONE
    with monkeypatch.context() as outage:
        outage.setattr(CloudUploader, "publish", _unreachable)
        [old] = agent.run(copies[1:], until_done=False)
    assert old.resume_state is VideoState.RECORDED and old.video_doc_id == done.video_doc_id

    copies[1].write_bytes((videos / "shots.mp4").read_bytes())
    os.utime(copies[1], (1, 1))
    [new] = agent.run(copies[1:], until_done=False)
    assert new.state is VideoState.DONE
    document = cloud.adapters.documents.get(Collections.VIDEOS, str(done.video_doc_id))
    assert document is not None and document["status"] == "sampled"

"""The edge agent against the emulated stack, run as the process an operator runs: killed at
each of its failpoints (SIGKILL, no cleanup) and run again, it leaves the same kept frames,
documents and exactly one labeling task per kept frame as a run never killed; through a
storage outage it waits and resumes; two edges with the same footage never both send a frame
to labeling; and a folder taken by the edge gives the kept frames and tasks uploading the same
videos to the raw bucket gives."""

from __future__ import annotations

import hashlib
import random
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage

from framesift.config import Backend, Settings
from framesift.edge.agent import generation_of
from framesift.edge.failpoints import FAILPOINTS
from framesift.edge.journal import Journal, VideoState
from framesift.sift import Sifter
from framesift_dev.devstack import FRAMES_BUCKET, RAW_BUCKET
from framesift_dev.testvideo import generate_test_video
from tests.support.edge import cloud_frames, cloud_videos, edge_command, edge_env, labeled, run_edge
from tests.support.faults import CuttableLink
from tests.support.media import lavfi_video
from tests.support.waiting import wait_for

pytestmark = pytest.mark.xdist_group("edge")

SECONDS = 4  # one segment (the stack's FRAMESIFT_SEGMENT_SECONDS is 4.5): 4 frames at 1 s
# Two local dedup batches per video, so "mid-sift" stops between them.
EDGE_ENV = {"FRAMESIFT_FRAMES_PER_MESSAGE": "2"}


def _video(folder: Path, name: str, seed: str) -> Path:
    """A clip of colours of its own: dedup's content hashes are dataset-wide, so frames whose
    bytes another test sent would be dropped."""
    path = folder / name
    hue = random.Random(seed).uniform(1, 359)
    generate_test_video(str(path), seconds=SECONDS, hue=hue)
    return path


@dataclass(frozen=True)
class Clip:
    """A clip of its own under a collector of its own, the frames a local sift keeps of it
    (what every run, killed or not, must leave in the cloud) and an agent's state folder."""

    collector: str
    video: Path
    expected: list[int]
    state: Path

    def check_cloud(self, devstack, scale) -> None:
        db = firestore.Client(project=devstack.project)
        gcs = storage.Client(project=devstack.project, credentials=AnonymousCredentials())
        collector, expected = self.collector, self.expected
        frames = wait_for(lambda: labeled(db, collector, len(expected)), "the frames labeled")
        assert sorted(f["timestamp_ms"] for f in frames) == expected  # none lost or doubled
        assert all(f["dedup_status"] == "kept" for f in frames)
        assert all(f["sampled_by"] == "edge" and f["edge_id"] == "edge-a" for f in frames)
        for frame in frames:  # exactly one task per kept frame, the one the frame names
            [task] = scale.by_unique_id(frame["id"])
            assert frame["labeling_task_id"] == task["task_id"]
        [video] = cloud_videos(db, collector)
        assert video["status"] == "sampled"
        assert video["frames_sampled"] == SECONDS
        assert video["sampled_by"] == "edge" and len(video["source_sha256"]) == 64
        names = [blob.name for blob in gcs.list_blobs(FRAMES_BUCKET, prefix=f"{collector}/")]
        assert sorted(names) == sorted(f["object_name"] for f in frames)


@pytest.fixture
def clip(unique, tmp_path) -> Clip:
    collector = f"edge-{unique}"
    video = _video(tmp_path, "clip.mp4", unique)
    sha = hashlib.sha256(video.read_bytes()).hexdigest()
    settings = Settings(backend=Backend.EMBEDDED, workdir=tmp_path / "reference")
    sifted = Sifter(settings).sift(video, collector, generation_of(sha))
    expected = [int(frame["timestamp_ms"]) for frame in sifted.kept]
    return Clip(collector, video, expected, tmp_path / "state")


# Each step of a video's (an announcement's is tests/integration/test_edge_rabbitmq.py's).
KILLS = [*(name for name in FAILPOINTS if name != "announced"), "frame-put:2", "frame-recorded:3"]


@pytest.mark.parametrize("failpoint", KILLS)
def test_killed_at_a_failpoint_the_edge_resumes_without_loss_or_duplicate(
    devstack, scale, clip, failpoint
):
    killed = run_edge(devstack, clip.state, [clip.video], clip.collector, failpoint, EDGE_ENV)
    assert killed.returncode == -signal.SIGKILL, killed.stderr  # it reached the failpoint
    resumed = run_edge(devstack, clip.state, [clip.video], clip.collector, extra=EDGE_ENV)
    assert resumed.returncode == 0, resumed.stderr

    clip.check_cloud(devstack, scale)
    journal = Journal(clip.state / "journal.sqlite3")
    [entry] = journal.videos()
    assert entry.state is VideoState.DONE
    assert [step for _, step in journal.frames(entry.path)] == ["uploaded"] * len(clip.expected)


def test_through_a_storage_outage_the_edge_waits_and_resumes(devstack, scale, clip):
    state = clip.state
    link = CuttableLink(int(devstack.env["STORAGE_EMULATOR_HOST"].rsplit(":", 1)[1]))
    link.cut()
    env = edge_env(
        devstack,
        extra={
            **EDGE_ENV,
            "STORAGE_EMULATOR_HOST": f"http://{link.address}",
            "FRAMESIFT_EDGE_RETRY_SECONDS": "1",
        },
    )
    log = state.parent / "agent.log"  # a file: a pipe left unread would block its retries' logs
    agent = subprocess.Popen(
        edge_command(state, [clip.video], clip.collector), env=env, stderr=log.open("w")
    )
    try:

        def put_off() -> bool:
            if not (state / "journal.sqlite3").exists():
                return False
            entries = Journal(state / "journal.sqlite3").videos()
            return bool(entries) and entries[0].state is VideoState.RETRY

        wait_for(put_off, "the video put off by the outage")
        [entry] = Journal(state / "journal.sqlite3").videos()
        assert entry.resume_state is VideoState.RECORDED  # its document went; its JPEGs did not
        assert "Connection" in (entry.error or "")
        link.restore()
        assert agent.wait(timeout=300) == 0, log.read_text()
    finally:
        if agent.poll() is None:  # a failed check: the agent would retry forever
            agent.kill()
            agent.wait()
        link.close()
    clip.check_cloud(devstack, scale)


def test_two_edges_with_the_same_footage_never_both_send_a_frame(devstack, scale, unique, tmp_path):
    """The same scene on two edges' disks (re-encoded: other bytes, the same pictures), taken
    at once: the cloud's dedup keeps each picture once, and only that one is labeled."""
    db = firestore.Client(project=devstack.project)
    collector = f"edge-two-{unique}"
    first = _video(tmp_path, "a.mp4", unique)
    second = tmp_path / "b.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(first), "-c:v", "libx264", "-crf", "30", str(second)],
        check=True,
    )
    agents = [
        subprocess.Popen(
            edge_command(tmp_path / f"state-{edge}", [path], collector, edge),
            env=edge_env(devstack, extra=EDGE_ENV),
            stderr=subprocess.PIPE,
            text=True,
        )
        for edge, path in (("edge-a", first), ("edge-b", second))
    ]
    for agent in agents:
        _, errors = agent.communicate(timeout=300)
        assert agent.returncode == 0, errors
    frames = wait_for(lambda: labeled(db, collector, 2 * SECONDS), "both edges' frames decided")
    by_edge: dict[str, list[dict]] = {"edge-a": [], "edge-b": []}
    for frame in sorted(frames, key=lambda f: f["timestamp_ms"]):
        by_edge[frame["edge_id"]].append(frame)
    # Each second's frame from either edge (the re-encoding may move a window's first reference
    # frame by a frame: 2000 ms on one, 2040 ms on the other).
    assert [len(sent) for sent in by_edge.values()] == [SECONDS, SECONDS]
    for pair in zip(*by_edge.values(), strict=True):
        [kept] = [f for f in pair if f["dedup_status"] == "kept"]
        [dropped] = [f for f in pair if f["dedup_status"] == "dropped"]
        assert dropped["dedup_duplicate_of"] == kept["id"]
        assert len(scale.by_unique_id(kept["id"])) == 1
        assert scale.by_unique_id(dropped["id"]) == []


def test_a_folder_through_the_edge_gives_what_uploading_it_gives(devstack, scale, unique, tmp_path):
    """The same two videos uploaded to the raw bucket (the functions sample them) and taken by
    the edge: the same frames kept, the same tasks. The edge's JPEGs are encoded one quality
    lower, so they are other bytes of the same pictures (the pHash and colour layout come
    from the decoder's small copy, not the JPEG): dedup's dataset-wide content hashes would
    otherwise drop every frame of the second way as the first's."""
    db = firestore.Client(project=devstack.project)
    gcs = storage.Client(project=devstack.project, credentials=AnonymousCredentials())
    folder = tmp_path / "videos"
    folder.mkdir()
    _video(folder, "drive.mp4", unique)
    colour = random.Random(unique).randrange(1 << 24)
    shots = [f"color=c=0x{colour:06x}:", f"color=c=0x{colour ^ 0xFFFFFF:06x}:", "testsrc2="]
    lavfi_video(folder / "shots.mp4", [f"{shot}size=352x288:rate=25:duration=2" for shot in shots])
    uploaded, edged = f"edge-raw-{unique}", f"edge-eq-{unique}"
    for path in sorted(folder.iterdir()):
        gcs.bucket(RAW_BUCKET).blob(f"{uploaded}/{path.name}").upload_from_filename(str(path))
    result = run_edge(
        devstack, tmp_path / "state", [folder], edged, extra={"FRAMESIFT_JPEG_QUALITY": "89"}
    )
    assert result.returncode == 0, result.stderr

    def decided(collector: str) -> dict[str, list[int]] | None:
        videos = cloud_videos(db, collector)
        if len(videos) < 2 or any(v["status"] != "sampled" for v in videos):
            return None
        names = {v["id"]: v["object_name"].rsplit("/", 1)[1] for v in videos}
        frames = labeled(db, collector, 1)
        if frames is None:
            return None
        kept: dict[str, list[int]] = {name: [] for name in names.values()}
        for frame in frames:
            if frame["dedup_status"] == "kept":
                kept[names[frame["video_doc_id"]]].append(frame["timestamp_ms"])
        return {name: sorted(times) for name, times in kept.items()}

    by_upload = wait_for(lambda: decided(uploaded), "the uploaded videos' frames labeled")
    by_edge = wait_for(lambda: decided(edged), "the edge's frames labeled")
    assert by_edge == by_upload
    tasks = {
        c: [f for f in cloud_frames(db, c) if f.get("labeling_task_id")] for c in (uploaded, edged)
    }
    assert len(tasks[edged]) == len(tasks[uploaded]) == sum(map(len, by_upload.values()))
    dropped = [f for f in cloud_frames(db, uploaded) if f["dedup_status"] == "dropped"]
    assert dropped  # the shots' repeated frames: dropped in the cloud, never sent by the edge
    assert len(cloud_frames(db, edged)) == len(tasks[edged])

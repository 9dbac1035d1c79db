"""The suite's fixtures (a pytest plugin, loaded with ``-p tests.support.fixtures`` from
pyproject.toml): generated media, embedded settings, the Scale fake, the emulated GCP stack and
a real Label Studio. The suite makes its own media with ffmpeg's lavfi sources; nothing is
downloaded."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from framesift.adapters.embedded.sqlite import SqliteDocumentStore
from framesift.config import Backend, Settings
from framesift.media import SYSTEM, Ffmpeg
from framesift.ports import DocumentStore
from framesift_dev.devstack import DevStack, StackState, free_port
from framesift_dev.testvideo import generate_test_video
from tests.support.infra import SECRET_VALUES, Recorder, deploy_under_mocks
from tests.support.media import bad_videos, lavfi_video
from tests.support.scale import API_KEY as SCALE_API_KEY
from tests.support.scale import FakeScale
from tests.support.stack import emulator_environment
from tests.support.waiting import wait_for


# Before pytest-xdist's own hook, which names each test by its group.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``scripts/test`` runs the suite on several workers: it mostly waits on
    emulators, servers and Pub/Sub's backoff), every test of the real Label Studio runs on one
    worker, so one server starts instead of one per worker. The emulated stack is started by each
    worker that gets an emulated test: its tests are spread, and each worker's stack is its own."""
    for item in items:
        if item.get_closest_marker("labelstudio"):
            item.add_marker(pytest.mark.xdist_group("labelstudio"))


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Test videos and bad inputs, generated once per session."""
    folder = tmp_path_factory.mktemp("media")
    files = {
        "clip_5s_25fps": folder / "clip_5s_25fps.mp4",
        "clip_4s_ntsc": folder / "clip_4s_ntsc.mp4",
    }
    generate_test_video(str(files["clip_5s_25fps"]), seconds=5, fps="25")
    generate_test_video(str(files["clip_4s_ntsc"]), seconds=4, fps="30000/1001", faststart=False)
    files["clip_5s_gop50"] = folder / "clip_5s_gop50.mp4"
    generate_test_video(str(files["clip_5s_gop50"]), seconds=5, fps="25", gop=50)
    files["three_shots"] = folder / "three_shots.mp4"
    # Red for 2 s, blue for 2 s, then the moving test pattern: two hard cuts.
    lavfi_video(
        files["three_shots"],
        [
            "color=c=red:size=320x240:rate=25:duration=2",
            "color=c=blue:size=320x240:rate=25:duration=2",
            "testsrc2=size=320x240:rate=25:duration=2",
        ],
        "-g",
        "50",
    )
    files["three_scenes"] = folder / "three_scenes.mp4"
    # Three still pictures, 2 s each, whose pHashes are 28 to 36 bits apart.
    lavfi_video(
        files["three_scenes"],
        [
            "smptebars=size=320x240:rate=25:duration=2",
            "rgbtestsrc=size=320x240:rate=25:duration=2",
            "mandelbrot=size=320x240:rate=25,trim=end_frame=1,loop=loop=49:size=1:start=0",
        ],
    )
    files["flat_and_colour"] = folder / "flat_and_colour.mp4"
    # 10 s of colour bars with sensor noise (a flat still scene), then a red wall and a teal wall
    # of about the same luma, 3 s each (a change of colour only), all at 640x480.
    lavfi_video(
        files["flat_and_colour"],
        [
            "smptebars=size=640x480:rate=25:duration=10,noise=alls=10:allf=t",
            "color=c=0xC84040:size=640x480:rate=25:duration=3,noise=alls=8:allf=t",
            "color=c=0x327D7D:size=640x480:rate=25:duration=3,noise=alls=8:allf=t",
        ],
    )
    files["vfr"] = folder / "vfr.mp4"
    # 2 s at 30 fps, then 2 s at 7 fps, in one stream with its real timestamps.
    lavfi_video(
        files["vfr"],
        [
            "testsrc2=size=320x240:rate=30:duration=2",
            "testsrc2=size=320x240:rate=7:duration=2",
        ],
        "-fps_mode",
        "vfr",
    )
    files["parked"] = folder / "parked.mp4"
    # A static scene for 6 s with sensor noise: every frame differs, none is worth a label.
    lavfi_video(
        files["parked"], ["smptebars=size=320x240:rate=25:duration=6,noise=alls=12:allf=t+u"]
    )
    files.update(bad_videos(folder, files["clip_5s_25fps"]))
    files["text_as_mp4"] = folder / "notes.mp4"
    files["text_as_mp4"].write_text("this is a text file, not a video\n" * 20)
    files["empty_mp4"] = folder / "empty.mp4"
    files["empty_mp4"].write_bytes(b"")
    return files


@pytest.fixture
def embedded_settings(tmp_path: Path) -> Settings:
    return Settings(backend=Backend.EMBEDDED, workdir=tmp_path / "work")


@pytest.fixture(scope="session")
def scale() -> Iterator[FakeScale]:
    """The Scale API stand-in (tests/support/scale.py) for the whole session."""
    with FakeScale() as fake:
        yield fake


@pytest.fixture(scope="session")
def devstack_manager(
    tmp_path_factory: pytest.TempPathFactory, scale: FakeScale
) -> Iterator[DevStack]:
    """The emulated stack for the whole session, by the same code as ``framesift dev up``.

    Its labeler sends to the Scale fake; tests start other labeler instances for the others.
    """
    # Videos over 4.5 s are sampled in segments: the 5 s clips take that path, the 4 s one not.
    stack = DevStack(
        state_dir=tmp_path_factory.mktemp("devstack"),
        settings_env={
            "FRAMESIFT_SEGMENT_SECONDS": "4.5",
            "FRAMESIFT_LABELING_VENDOR": "scale",
            "FRAMESIFT_SCALE_API_URL": scale.url,
            "FRAMESIFT_SCALE_API_KEY": SCALE_API_KEY,
            "FRAMESIFT_LABELING_RETRY_SECONDS": "5",
        },
        # For the permission-coverage check (tests/emulated/test_pipeline_emulated.py).
        record_api_calls=True,
    )
    stack.up()
    try:
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="session")
def devstack(devstack_manager: DevStack) -> Iterator[StackState]:
    state = devstack_manager.state
    assert state is not None
    with emulator_environment(state):
        yield state


REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LabelStudioServer:
    url: str
    token: str


@pytest.fixture(scope="session")
def labelstudio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioServer]:
    """A real Label Studio on loopback, from the data folder scripts/install initialised."""
    template = REPO_ROOT / ".labelstudio" / "template"
    executable = REPO_ROOT / ".venv-labelstudio" / "bin" / "label-studio"
    if not executable.exists() or not (template / "token").exists():
        pytest.fail("Label Studio is not installed: run scripts/install")
    data = tmp_path_factory.mktemp("labelstudio") / "data"
    shutil.copytree(template, data)
    port = free_port()
    env = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data),
        # Label Studio refuses webhooks to private addresses unless told otherwise.
        "SSRF_PROTECTION_ENABLED": "false",
        "LATEST_VERSION_CHECK": "false",
        "SENTRY_DSN": "",
        "COLLECT_ANALYTICS": "false",
    }
    log = (data / "server.log").open("wb")
    command = [str(executable), "start", "--internal-host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--no-browser"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return requests.get(f"{url}/health", timeout=2).ok
        except requests.ConnectionError:
            return False

    try:
        wait_for(healthy, "Label Studio to start", timeout=180)
        yield LabelStudioServer(url, (template / "token").read_text().strip())
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


@pytest.fixture
def unique() -> str:
    """A fresh name part, so tests sharing the session's emulators never see each other's data."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
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


@pytest.fixture
def function_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The environment a deployed function reads, embedded in a fresh workdir, with the
    runtime's per-instance caches cleared before and after, as a new instance starts."""
    from framesift import runtime
    from framesift.config import get_settings

    monkeypatch.setenv("FRAMESIFT_BACKEND", "embedded")
    monkeypatch.setenv("FRAMESIFT_WORKDIR", str(tmp_path / "work"))
    caches = (get_settings, runtime.adapters, runtime.subscriber, runtime.callbacks)
    for cached in caches:
        cached.cache_clear()
    yield get_settings()
    for cached in caches:
        cached.cache_clear()


# The oldest ffmpeg at hand: the static 4.2.2 build inside imageio-ffmpeg 0.4.7's wheel (pinned
# in the dev extra), older than Cloud Functions' 4.4.2. The sampler's tests run with it and with
# the machine's own (5.1 on Debian 12), so no option newer than 4.4 can slip in.
OLD_FFMPEG_NEWEST_VERSION = (4, 4)


@pytest.fixture(scope="session", params=["system", "old"], ids=["ffmpeg-system", "ffmpeg-4.2"])
def ffmpeg_tools(request: pytest.FixtureRequest) -> Ffmpeg:
    if request.param == "system":
        return SYSTEM
    import imageio_ffmpeg

    tools = Ffmpeg(ffmpeg=imageio_ffmpeg.get_ffmpeg_exe())
    assert tools.version <= OLD_FFMPEG_NEWEST_VERSION, tools.version
    return tools


@pytest.fixture
def sampler_settings(embedded_settings: Settings, ffmpeg_tools: Ffmpeg) -> Settings:
    """Embedded settings whose sampler runs ``ffmpeg_tools``' ffmpeg."""
    return embedded_settings.model_copy(update={"ffmpeg_binary": ffmpeg_tools.ffmpeg})


@pytest.fixture(scope="session")
def deployed() -> tuple[Recorder, Any]:
    """The Pulumi program run once under Pulumi's mocks: with a videos/ prefix, so both bucket
    notifications exist, and Label Studio, the vendor with the most secrets."""
    return deploy_under_mocks(
        raw_prefix="videos/",
        vendor="labelstudio",
        labelstudio_url="https://labelstudio.example",
        secrets=SECRET_VALUES,
    )


@pytest.fixture(params=["sqlite", pytest.param("firestore", marks=pytest.mark.emulated)])
def index_documents(request: pytest.FixtureRequest, tmp_path: Path) -> DocumentStore:
    """A document store for dedup's index tests: SQLite, and the Firestore emulator's."""
    if request.param == "sqlite":
        return SqliteDocumentStore(tmp_path / "documents.sqlite3")
    from framesift.adapters.gcp.firestore import FirestoreDocumentStore

    return FirestoreDocumentStore(request.getfixturevalue("devstack").project)

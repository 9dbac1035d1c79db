"""Shared fixtures: generated media, the emulated GCP stack, and a polling helper.

The suite makes its own media with ffmpeg's lavfi sources; nothing is downloaded.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from framesift_dev.devstack import DevStack, StackState, free_port
from google.cloud import pubsub_v1

from framesift.config import Backend, Settings
from framesift.media import generate_test_video
from tests.fakes.scale import API_KEY as SCALE_API_KEY
from tests.fakes.scale import FakeScale

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 240.0) -> T:
    """Poll until ``probe`` returns something truthy; the timeout only bounds a hung pipeline
    (generous: on a loaded 2-core machine the Pub/Sub emulator's push retries back off)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.25)


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
    _lavfi_video(
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
    _lavfi_video(
        files["three_scenes"],
        [
            "smptebars=size=320x240:rate=25:duration=2",
            "rgbtestsrc=size=320x240:rate=25:duration=2",
            "mandelbrot=size=320x240:rate=25,trim=end_frame=1,loop=loop=49:size=1:start=0",
        ],
    )
    files["vfr"] = folder / "vfr.mp4"
    # 2 s at 30 fps, then 2 s at 7 fps, in one stream with its real timestamps.
    _lavfi_video(
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
    _lavfi_video(
        files["parked"], ["smptebars=size=320x240:rate=25:duration=6,noise=alls=12:allf=t+u"]
    )
    files.update(_bad_videos(folder, files["clip_5s_25fps"]))
    files["text_as_mp4"] = folder / "notes.mp4"
    files["text_as_mp4"].write_text("this is a text file, not a video\n" * 20)
    files["empty_mp4"] = folder / "empty.mp4"
    files["empty_mp4"].write_bytes(b"")
    return files


def _bad_videos(folder: Path, good: Path) -> dict[str, Path]:
    """Truncated, corrupt in the middle, a still image, audio only and a frame too large to
    decode safely (8000x6000, over the default FRAMESIFT_MAX_VIDEO_PIXELS), each named .mp4."""
    data = good.read_bytes()
    bad = {
        "truncated": folder / "truncated.mp4",  # faststart: the index survives, the data does not
        "corrupt_middle": folder / "corrupt_middle.mp4",
        "image_as_mp4": folder / "photo.mp4",
        "audio_only": folder / "voice.mp4",
        "huge_frames": folder / "huge.mp4",
    }
    bad["truncated"].write_bytes(data[: len(data) // 2])
    corrupt = bytearray(data)
    middle = len(data) // 2
    corrupt[middle : middle + 4000] = bytes((i * 97 + 13) % 256 for i in range(4000))
    bad["corrupt_middle"].write_bytes(bytes(corrupt))
    lavfi = ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i"]
    subprocess.run(
        [
            *lavfi,
            "testsrc2=size=320x240",
            "-frames:v",
            "1",
            "-f",
            "image2",
            "-c:v",
            "mjpeg",
            str(bad["image_as_mp4"]),
        ],
        check=True,
    )
    subprocess.run([*lavfi, "sine=duration=2", "-c:a", "aac", str(bad["audio_only"])], check=True)
    subprocess.run(
        [
            *lavfi,
            "color=c=gray:size=8000x6000:rate=1:duration=2",
            *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
            str(bad["huge_frames"]),
        ],
        check=True,
    )
    return bad


def _lavfi_video(path: Path, sources: list[str], *output_args: str) -> None:
    """H.264 from ffmpeg's lavfi sources, played one after another."""
    inputs = [arg for source in sources for arg in ("-f", "lavfi", "-i", source)]
    joined = "".join(f"[{i}:v]" for i in range(len(sources)))
    concat = (
        ["-filter_complex", f"{joined}concat=n={len(sources)}:v=1:a=0"] if len(sources) > 1 else []
    )
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            *inputs,
            *concat,
            *output_args,
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )


@pytest.fixture
def embedded_settings(tmp_path: Path) -> Settings:
    return Settings(backend=Backend.EMBEDDED, workdir=tmp_path / "work")


@pytest.fixture(scope="session")
def scale() -> Iterator[FakeScale]:
    """The Scale API stand-in (tests/fakes/scale.py) for the whole session."""
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


@contextlib.contextmanager
def emulator_environment(state: StackState) -> Iterator[None]:
    """Point this process's Google clients at the stack's emulators, and only that: the
    FRAMESIFT_* settings are the functions', and would leak into the embedded tests' settings."""
    hosts = {k: v for k, v in state.env.items() if not k.startswith("FRAMESIFT_")}
    saved = {key: os.environ.get(key) for key in hosts}
    os.environ.update(hosts)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


REPO_ROOT = Path(__file__).resolve().parent.parent


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


def tap(project: str, topics: Sequence[str]) -> Callable[..., list[tuple[str, Any]]]:
    """Pull subscriptions that see what is published on ``topics`` from now on; the returned
    ``pull(expect_some=True)`` drains them into ``(topic, message)`` pairs."""
    subscriber = pubsub_v1.SubscriberClient()
    names = {
        topic: subscriber.subscription_path(project, f"tap-{topic}-{uuid.uuid4().hex[:8]}")
        for topic in topics
    }
    for topic, name in names.items():
        subscriber.create_subscription(name=name, topic=subscriber.topic_path(project, topic))

    def pull(expect_some: bool = True) -> list[tuple[str, Any]]:
        seen: list[tuple[str, Any]] = []
        for topic, name in names.items():
            received_here = 0
            # The emulator may answer a pull before all messages are in; pull until quiet.
            for _ in range(6):
                response = subscriber.pull(subscription=name, max_messages=100, timeout=10)
                received = response.received_messages
                if received:
                    subscriber.acknowledge(subscription=name, ack_ids=[m.ack_id for m in received])
                    seen += [(topic, m.message) for m in received]
                    received_here += len(received)
                elif received_here or not expect_some:
                    break
        return seen

    return pull


def function_log(state: StackState, function: str) -> list[dict[str, Any]]:
    """The JSON entries a function of the stack has logged so far."""
    path = Path(next(s.log for s in state.services if s.name == f"function-{function}"))
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def push_to_function(
    state: StackState, function: str, topic: str, data: bytes, attributes: dict[str, str]
) -> requests.Response:
    """Deliver a message to a function exactly as a Pub/Sub push subscription does."""
    body = {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": attributes,
            "messageId": uuid.uuid4().hex,
            "publishTime": "2026-01-01T00:00:00Z",
        },
        "subscription": f"projects/{state.project}/subscriptions/{topic}-{function}",
    }
    port = state.port(f"function-{function}")
    return requests.post(
        f"http://127.0.0.1:{port}/projects/{state.project}/topics/{topic}", json=body, timeout=120
    )

"""The edge agent taking the files announced on a real RabbitMQ (a private node started here):
each acknowledged once the journal has it, so a kill between the two redelivers it and nothing
doubles; poison messages dead-lettered with a record of why, while the good ones go on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from framesift.config import Backend, Settings
from framesift.edge.agent import EdgeAgent, EdgeConfig
from framesift.edge.announcements import Announcements, dead_letter_name
from framesift.edge.failpoints import FAILPOINT_ENV
from framesift.edge.journal import Journal, VideoState
from framesift.embedded import EmbeddedPipeline
from framesift.topology import Collections
from framesift_dev.testvideo import generate_test_video
from tests.support.rabbitmq import INSTALL_HINT, installed, rabbitmq_node

pika = pytest.importorskip("pika")
pytestmark = [
    pytest.mark.skipif(not installed(), reason=INSTALL_HINT),
    pytest.mark.xdist_group("rabbitmq"),
]
QUEUE = "camera-files"


@pytest.fixture(scope="module")
def rabbitmq(tmp_path_factory) -> str:
    with rabbitmq_node(tmp_path_factory.mktemp("rabbitmq")) as url:
        yield url


@pytest.fixture
def queue(rabbitmq, request) -> str:
    """A queue of the test's own (its dead-letter exchange and queue declared by the agent)."""
    return f"{QUEUE}-{request.node.name[:40]}"


def _announce(url: str, queue: str, *bodies: bytes) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(
        queue, durable=True, arguments={"x-dead-letter-exchange": dead_letter_name(queue)}
    )
    for body in bodies:
        channel.basic_publish("", queue, body)
    connection.close()


def _drain(url: str, queue: str) -> list[tuple[bytes, dict]]:
    """The messages on ``queue`` (acked), with their headers."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    messages = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        messages.append((body, properties.headers or {}))
    connection.close()
    return messages


def _agent(tmp_path: Path) -> tuple[EdgeAgent, EmbeddedPipeline]:
    cloud = EmbeddedPipeline(Settings(backend=Backend.EMBEDDED, workdir=tmp_path / "cloud"))
    config = EdgeConfig("edge-q", "cam", tmp_path / "state", stable_seconds=0.0, poll_seconds=0)
    return EdgeAgent(config, cloud.settings, cloud.adapters, cloud.publisher.drain), cloud


def _clip(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    generate_test_video(str(path), seconds=2)
    return path


def test_announced_files_are_taken_and_poison_is_dead_lettered(rabbitmq, queue, tmp_path):
    good = [_clip(tmp_path, "a.mp4"), _clip(tmp_path, "b.mp4")]
    poison = [b"{not json", json.dumps({"file": "a.mp4"}).encode(), b'{"path": "/nowhere.mp4"}']
    agent, cloud = _agent(tmp_path)
    _announce(rabbitmq, queue, *(json.dumps({"path": str(p)}).encode() for p in good), *poison)
    agent.consume(Announcements(rabbitmq, queue), passes=1)

    entries = agent.journal.videos()
    assert [(Path(e.path), e.state) for e in entries] == [(p, VideoState.DONE) for p in good]
    assert len(cloud.adapters.documents.where(Collections.VIDEOS, "collector", "cam")) == 2
    assert _drain(rabbitmq, queue) == []  # every announcement acked or rejected
    dead = _drain(rabbitmq, dead_letter_name(queue))
    assert [body for body, _ in dead] == poison
    assert all(headers["x-death"][0]["reason"] == "rejected" for _, headers in dead)
    reasons = [reason for _, _, reason in agent.journal.rejections()]
    assert reasons[0].startswith("not JSON")
    assert reasons[1:] == ['not {"path": "..."}', "no such file: /nowhere.mp4"]


def test_killed_after_the_journal_before_the_ack_the_announcement_comes_again_once(
    rabbitmq, queue, tmp_path
):
    """Killed (SIGKILL) between the journal's commit and the ack: RabbitMQ delivers the
    announcement again, the journal has it already, and the video is taken once."""
    video = _clip(tmp_path, "c.mp4")
    _announce(rabbitmq, queue, json.dumps({"path": str(video)}).encode())
    command = [
        str(Path(sys.executable).parent / "framesift"),
        "edge",
        "run",
        "--rabbitmq-url",
        rabbitmq,
        "--rabbitmq-queue",
        queue,
        "--state-dir",
        str(tmp_path / "state"),
        "--collector",
        "cam",
        "--stable-seconds",
        "0",
    ]
    env = {**os.environ, "FRAMESIFT_WORKDIR": str(tmp_path / "cloud"), FAILPOINT_ENV: "announced"}
    killed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    [entry] = Journal(tmp_path / "state" / "journal.sqlite3").videos()
    assert entry.state is VideoState.WAITING  # in the journal; nothing else done

    agent, cloud = _agent(tmp_path)
    agent.consume(Announcements(rabbitmq, queue), passes=1)
    [entry] = agent.journal.videos()
    assert entry.state is VideoState.DONE and entry.attempts == 0
    assert _drain(rabbitmq, queue) == [] and _drain(rabbitmq, dead_letter_name(queue)) == []
    [video] = cloud.adapters.documents.where(Collections.VIDEOS, "collector", "cam")
    assert video["status"] == "sampled"

"""Reliability on the emulated stack: every message and callback three times in shuffled order,
a function killed mid-video, Firestore and Pub/Sub gone for longer than their clients retry, and
the labeling vendor answering 429 and 500 for a while.

Each test uploads its own video and then checks that, once the fault is over, every item exists
exactly once: the video sampled, each frame once (document and JPEG), each frame decided once,
each kept frame with one task at the vendor, and nothing dead-lettered.

The stack is this module's own (the faults would disturb the session's): its functions reach
Firestore and Pub/Sub through links the tests cut (tests/faults.py), and its labeler sends to
its own Scale fake.
"""

from __future__ import annotations

import base64
import functools
import random
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, pubsub_v1, storage

from framesift.adapters.gcp.pubsub import PubSubHeldMessages, PubSubPublisher
from framesift.config import Settings
from framesift.delivery import replay_held
from framesift.documents import VideoRecord
from framesift.topology import (
    FUNCTIONS,
    LABELER,
    Collections,
    Topics,
    pubsub_max_delivery_attempts,
)
from framesift_dev.devstack import FRAMES_BUCKET, RAW_BUCKET, DevStack
from framesift_dev.testvideo import generate_test_video
from tests.support.faults import CuttableLink
from tests.support.payloads import scale_completes
from tests.support.scale import API_KEY as SCALE_API_KEY
from tests.support.scale import FakeScale
from tests.support.stack import emulator_environment, function_log, push_to_function, tap
from tests.support.waiting import wait_for

pytestmark = pytest.mark.emulated

# Longer than the Google clients retry an unavailable backend (about 60 s), so invocations fail
# and Pub/Sub has to redeliver, not only wait.
OUTAGE_SECONDS = 75
EVERY_SECONDS = 0.25  # 240 frames from the 60 s video: a sampler run long enough to interrupt


@dataclass
class FaultStack:
    manager: DevStack
    scale: FakeScale
    firestore_link: CuttableLink
    pubsub_link: CuttableLink
    gcs: storage.Client
    db: firestore.Client
    folder: Path


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    folder = tmp_path_factory.mktemp("faults")
    with FakeScale() as scale:
        manager = DevStack(
            state_dir=folder / "devstack",
            settings_env={
                "FRAMESIFT_LABELING_VENDOR": "scale",
                "FRAMESIFT_SCALE_API_URL": scale.url,
                "FRAMESIFT_SCALE_API_KEY": SCALE_API_KEY,
                "FRAMESIFT_LABELING_RETRY_SECONDS": "3",
            },
        )
        state = manager.up()
        firestore_link = CuttableLink(state.port("firestore"))
        pubsub_link = CuttableLink(state.port("pubsub"))
        try:
            through_links = {
                "FIRESTORE_EMULATOR_HOST": firestore_link.address,
                "PUBSUB_EMULATOR_HOST": pubsub_link.address,
            }
            for spec in FUNCTIONS:
                manager.restart(f"function-{spec.name}", env=through_links)
            with emulator_environment(state):
                yield FaultStack(
                    manager,
                    scale,
                    firestore_link,
                    pubsub_link,
                    storage.Client(project=state.project, credentials=AnonymousCredentials()),
                    firestore.Client(project=state.project),
                    folder,
                )
        finally:
            firestore_link.close()
            pubsub_link.close()
            manager.down()


def _upload(stack: FaultStack, collector: str) -> tuple[storage.Blob, str]:
    """A 60 s drive of its own colours under ``collector``: dedup drops frames whose bytes are
    anywhere in the dataset already, and each test needs frames of its own kept."""
    video = stack.folder / f"{collector}.mp4"
    generate_test_video(str(video), seconds=60, fps="25", hue=zlib.crc32(collector.encode()) % 360)
    blob = stack.gcs.bucket(RAW_BUCKET).blob(f"{collector}/drive.mp4")
    blob.metadata = {"framesift-every-seconds": str(EVERY_SECONDS)}
    blob.upload_from_filename(str(video), content_type="video/mp4")
    return blob, VideoRecord.make_id(RAW_BUCKET, blob.name, int(blob.generation))


def _frames(stack: FaultStack, video_doc_id: str) -> list[dict]:
    query = stack.db.collection("frames").where(
        filter=firestore.FieldFilter("video_doc_id", "==", video_doc_id)
    )
    return [snapshot.to_dict() for snapshot in query.stream()]


def _video(stack: FaultStack, video_doc_id: str) -> dict:
    return stack.db.collection("videos").document(video_doc_id).get().to_dict() or {}


def _wait_mid_video(stack: FaultStack, video_doc_id: str) -> None:
    """Until the sampler is part-way through the video: some frames stored, not all."""

    def started() -> bool:
        return _video(stack, video_doc_id).get("status") == "processing" and (
            len(_frames(stack, video_doc_id)) >= 5
        )

    wait_for(started, "the sampler to be part-way through the video")


def _assert_each_item_once(
    stack: FaultStack, blob: storage.Blob, video_doc_id: str, labeling: str = "requested"
) -> None:
    expected = int(60 / EVERY_SECONDS)

    def labeled() -> list[dict] | None:
        if _video(stack, video_doc_id).get("status") != "sampled":
            return None
        frames = _frames(stack, video_doc_id)
        decided = len(frames) == expected and all(f.get("dedup_status") for f in frames)
        kept = [f for f in frames if f.get("dedup_status") == "kept"]
        return frames if decided and all(f.get("labeling_status") for f in kept) else None

    frames = wait_for(labeled, "every frame decided and every kept frame sent", timeout=600)
    video = _video(stack, video_doc_id)
    assert video["frames_sampled"] == expected
    timestamps = [f["timestamp_ms"] for f in frames]
    assert len(set(timestamps)) == expected
    collector, _ = blob.name.split("/", 1)
    objects = {b.name for b in stack.gcs.bucket(FRAMES_BUCKET).list_blobs(prefix=f"{collector}/")}
    assert objects == {f["object_name"] for f in frames}
    kept = [f for f in frames if f["dedup_status"] == "kept"]
    assert kept, "the test pattern's frames are not all near duplicates of the first"
    for frame in kept:
        assert frame["labeling_status"] == labeling, frame
        [task] = stack.scale.by_unique_id(frame["id"])  # exactly one task at the vendor
        assert frame["labeling_task_id"] == task["task_id"]
    assert list(stack.db.collection("dead_letters").stream()) == []
    _assert_no_secret_logged(stack)


def _assert_no_secret_logged(stack: FaultStack) -> None:
    """Not the vendor's API key nor the webhook's secrets, in any log of any service."""
    state = stack.manager.state
    assert state is not None
    secrets = [
        SCALE_API_KEY,
        state.env["FRAMESIFT_SCALE_CALLBACK_AUTH_KEY"],
        state.env["FRAMESIFT_LABELSTUDIO_WEBHOOK_SECRET"],
    ]
    for service in state.services:
        text = Path(service.log).read_text(errors="replace")
        assert not [secret for secret in secrets if secret in text], service.name


def test_a_sampler_killed_mid_video_is_redelivered_and_leaves_each_item_once(faults, unique):
    blob, video_doc_id = _upload(faults, f"kill-{unique}")
    _wait_mid_video(faults, video_doc_id)

    faults.manager.restart("function-sampler")  # SIGKILL, as an out-of-memory kill would

    assert _video(faults, video_doc_id)["status"] == "processing"  # it was cut short
    _assert_each_item_once(faults, blob, video_doc_id)


def _failed_deliveries(stack: FaultStack, function: str) -> list[str]:
    """What the function logged for operators about deliveries that failed."""
    state = stack.manager.state
    assert state is not None
    return [
        entry["message"]
        for entry in function_log(state, function)
        if entry.get("severity") == "WARNING" and entry["message"].startswith("delivery failed")
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "logged"),
    [
        # The client's own error, after its retries: "... 503 failed to connect ..."
        ("firestore", "503"),
        ("pubsub", "BackendUnavailable: Pub/Sub did not accept a message to frames-sampled"),
    ],
)
def test_a_backend_gone_mid_video_leaves_each_item_once_after_it_is_back(
    faults, unique, backend, logged
):
    link = faults.firestore_link if backend == "firestore" else faults.pubsub_link
    logged_before = len(_failed_deliveries(faults, "sampler"))
    blob, video_doc_id = _upload(faults, f"{backend}-{unique}")
    _wait_mid_video(faults, video_doc_id)

    link.cut()
    try:
        time.sleep(OUTAGE_SECONDS)  # the outage's length; nothing here asserts on time
    finally:
        link.restore()

    _assert_each_item_once(faults, blob, video_doc_id)
    # The sampler's interrupted delivery is on record for operators, with the backend's error.
    assert any(logged in m for m in _failed_deliveries(faults, "sampler")[logged_before:])


def test_a_vendor_refusing_for_a_while_gets_one_task_per_frame_once_it_recovers(faults, unique):
    earlier = {d.id for d in faults.db.collection("deliveries").stream()}
    faults.scale.fail_always(429, 500)
    try:
        blob, video_doc_id = _upload(faults, f"vendor-{unique}")

        def redelivered() -> bool:
            # The labeler gave up within an invocation, and Pub/Sub delivered again.
            return any(
                d.id.startswith("labeler~")
                and d.id not in earlier
                and d.to_dict().get("failures", 0) >= 2
                for d in faults.db.collection("deliveries").stream()
            )

        wait_for(redelivered, "the labeler to fail twice on the vendor's 429s and 500s")
    finally:
        faults.scale.recover()

    _assert_each_item_once(faults, blob, video_doc_id)


def test_every_message_and_callback_three_times_in_any_order_leaves_each_item_once(faults, unique):
    state = faults.manager.state
    assert state is not None
    tapped = tap(state.project, [Topics.RAW_OBJECTS, Topics.FRAMES_SAMPLED, Topics.FRAMES_KEPT])
    blob, video_doc_id = _upload(faults, f"thrice-{unique}")
    _assert_each_item_once(faults, blob, video_doc_id)
    decisions = {f["id"]: _decision(f) for f in _frames(faults, video_doc_id)}
    kept = [frame_id for frame_id, (status, _) in decisions.items() if status == "kept"]

    # Each message of this video twice more, and each kept frame's callback three times, all
    # shuffled together; the first delivery of each message was the pipeline's own.
    subscriber_of = {
        Topics.RAW_OBJECTS: "sampler",
        Topics.FRAMES_SAMPLED: "dedup",
        Topics.FRAMES_KEPT: "labeler",
    }
    deliveries: list[Callable[[], requests.Response]] = []
    messages = [
        (t, m)
        for t, m in tapped()
        if video_doc_id in m.data.decode()
        or (t == Topics.RAW_OBJECTS and blob.name in m.data.decode())
    ]
    assert {t for t, _ in messages} == set(subscriber_of), messages
    for topic, message in messages * 2:
        deliveries.append(
            functools.partial(
                push_to_function,
                state,
                subscriber_of[topic],
                topic,
                message.data,
                dict(message.attributes),
            )
        )
    webhook = f"{state.env['FRAMESIFT_WEBHOOK_URL']}/scale"
    auth = {"scale-callback-auth": state.env["FRAMESIFT_SCALE_CALLBACK_AUTH_KEY"]}
    for frame_id in kept * 3:
        [task] = faults.scale.by_unique_id(frame_id)
        deliveries.append(
            functools.partial(
                requests.post, webhook, json=scale_completes(task), headers=auth, timeout=120
            )
        )
    random.Random(7).shuffle(deliveries)
    for deliver in deliveries:
        response = deliver()
        assert response.status_code in (200, 204), response.text

    _assert_each_item_once(faults, blob, video_doc_id, labeling="labeled")
    assert {f["id"]: _decision(f) for f in _frames(faults, video_doc_id)} == decisions
    for frame_id in kept:
        query = faults.db.collection("annotations").where(
            filter=firestore.FieldFilter("frame_id", "==", frame_id)
        )
        assert len(list(query.stream())) == 1
    assert not any(
        f.get("labeling_status") for f in _frames(faults, video_doc_id) if f["id"] not in kept
    )


def _decision(frame: dict) -> tuple[str, str | None]:
    return frame["dedup_status"], frame.get("dedup_duplicate_of")


def test_a_message_whose_function_dies_on_every_delivery_is_held_then_replayed(faults, unique):
    # The function never gets to count its failures (a crash, an out-of-memory kill): Pub/Sub's
    # own dead-letter policy is the backstop, as deployed.
    dead_letters = tap(faults.db.project, [LABELER.dead_letter_topic(Topics.FRAMES_KEPT)])
    faults.manager.kill("function-labeler")
    try:
        publisher = pubsub_v1.PublisherClient()
        topic = publisher.topic_path(faults.db.project, Topics.FRAMES_KEPT)
        publisher.publish(topic, f"poison {unique}".encode()).result()
        [(_, message)] = wait_for(
            lambda: dead_letters(expect_some=False), "Pub/Sub to dead-letter the message"
        )
    finally:
        faults.manager.restart("function-labeler")

    assert message.data == f"poison {unique}".encode()
    attempts = pubsub_max_delivery_attempts(Settings().max_delivery_attempts)
    assert message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == str(attempts)
    assert message.attributes["CloudPubSubDeadLetterSourceSubscription"] == "frames-kept-labeler"

    # The dead-letter topic's own subscription kept it; once the labeler is back, replay
    # publishes it to frames-kept again, where the labeler now handles it (this one is not a
    # message it can parse, so it records it as its own dead letter, which is how to see it).
    project = faults.db.project
    held = PubSubHeldMessages(project)
    assert replay_held(held, PubSubPublisher(project), subscriber="labeler") >= 1
    poison = base64.b64encode(f"poison {unique}".encode()).decode()
    recorded = wait_for(
        lambda: [
            d.to_dict()
            for d in faults.db.collection(Collections.DEAD_LETTERS)
            .where(filter=firestore.FieldFilter("data", "==", poison))
            .stream()
        ],
        "the replayed message to reach the labeler",
    )
    assert [(r["subscriber"], r["permanent"]) for r in recorded] == [("labeler", True)]
    assert replay_held(held, PubSubPublisher(project), subscriber="labeler") == 0

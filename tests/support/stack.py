"""Working with a running emulated stack: its environment, its topics, its functions' logs, and
pushes to a function exactly as a Pub/Sub push subscription makes them."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import requests
from google.cloud import pubsub_v1, storage

from framesift.adapters.gcp.bigquery import BigQueryWarehouse
from framesift.bootstrap import Adapters, build_adapters
from framesift.config import Backend, Settings
from framesift.events import PubSubMessage, push_body
from framesift.topology import subscription_name
from framesift_dev.devstack import StackState, environ


def emulator_environment(state: StackState) -> contextlib.AbstractContextManager[None]:
    """Point this process's Google clients at the stack's emulators, and only that: the
    FRAMESIFT_* settings are the functions', and would leak into the embedded tests' settings."""
    return environ({k: v for k, v in state.env.items() if not k.startswith("FRAMESIFT_")})


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


def notification_of(blob: storage.Blob) -> tuple[bytes, dict[str, str]]:
    """The message GCS (here fake-gcs-server) sent for this upload, rebuilt from the object."""
    blob.reload()
    payload = {
        "kind": "storage#object",
        "name": blob.name,
        "bucket": blob.bucket.name,
        "generation": str(blob.generation),
        "size": str(blob.size),
        "contentType": blob.content_type,
    }
    attributes = {
        "eventType": "OBJECT_FINALIZE",
        "payloadFormat": "JSON_API_V1",
        "bucketId": blob.bucket.name,
        "objectId": blob.name,
        "objectGeneration": str(blob.generation),
    }
    return json.dumps(payload).encode(), attributes


def push_to_function(
    state: StackState, function: str, topic: str, data: bytes, attributes: dict[str, str]
) -> requests.Response:
    """Deliver a message to a function exactly as a Pub/Sub push subscription does."""
    message = PubSubMessage.of(data, attributes, uuid.uuid4().hex)
    subscription = subscription_name(topic, function)
    body = push_body(message, f"projects/{state.project}/subscriptions/{subscription}")
    port = state.port(f"function-{function}")
    return requests.post(
        f"http://127.0.0.1:{port}/projects/{state.project}/topics/{topic}", json=body, timeout=120
    )


def warehouse_stack(request: Any, workdir: Path, unique: str) -> tuple[Adapters, Settings]:
    """The adapters and settings of a stack whose dataset is this test's: embedded (SQLite ->
    DuckDB in ``workdir``), or for ``request.param == "emulated"`` the Firestore emulator ->
    the BigQuery emulator of the session's dev stack."""
    if request.param == "embedded":
        settings = Settings(
            backend=Backend.EMBEDDED, workdir=workdir, bigquery_dataset=f"ds_{unique}"
        )
    else:
        state = request.getfixturevalue("devstack")
        settings = Settings(
            backend=Backend.GCP,
            project=state.project,
            bigquery_dataset=f"ds_{unique}",
            bigquery_endpoint=state.env["FRAMESIFT_BIGQUERY_ENDPOINT"],
        )
    return with_dataset(build_adapters(settings)), settings


def with_dataset(adapters: Adapters) -> Adapters:
    """``adapters`` with its BigQuery dataset created, as the infra creates it when deployed (no
    function may: see BigQueryWarehouse.create_dataset)."""
    if isinstance(adapters.warehouse, BigQueryWarehouse):
        adapters.warehouse.create_dataset()
    return adapters

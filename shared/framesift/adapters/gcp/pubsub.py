"""Pub/Sub through google-cloud-pubsub (``PUBSUB_EMULATOR_HOST`` for the emulator): the
publisher, and the pull of messages a subscription holds (Pub/Sub's dead letters)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from framesift.errors import BackendUnavailable
from framesift.ports import (
    HeldMessage,
)

PUBLISH_TIMEOUT_SECONDS = 60
# A pull "may wait (for a bounded amount of time) until at least one message is available"
# (https://cloud.google.com/pubsub/docs/reference/rpc/google.pubsub.v1#pullrequest): on a
# subscription holding nothing it waits out its deadline, so the deadline is what an empty
# holding subscription costs `replay-dead-letters`; one that holds messages answers at once.
HELD_PULL_TIMEOUT_SECONDS = 10


class PubSubPublisher:
    def __init__(self, project: str) -> None:
        self._project = project
        self._client = pubsub_v1.PublisherClient()

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str] | None = None) -> str:
        future = self._client.publish(
            self._client.topic_path(self._project, topic), data, **dict(attributes or {})
        )
        try:
            return str(future.result(timeout=PUBLISH_TIMEOUT_SECONDS))
        except TimeoutError as exc:
            raise BackendUnavailable(
                f"Pub/Sub did not accept a message to {topic} within {PUBLISH_TIMEOUT_SECONDS} s"
            ) from exc


class PubSubHeldMessages:
    """Pulls what a subscription holds (see :class:`~framesift.ports.HeldMessages`)."""

    def __init__(self, project: str) -> None:
        self._project = project
        self._client = pubsub_v1.SubscriberClient()

    def pull(self, subscription: str, limit: int) -> list[HeldMessage]:
        path = self._client.subscription_path(self._project, subscription)
        try:
            response = self._client.pull(
                subscription=path, max_messages=limit, timeout=HELD_PULL_TIMEOUT_SECONDS
            )
        except gexc.DeadlineExceeded:
            return []  # nothing held: a pull waits for messages until its deadline
        return [
            HeldMessage(m.message.data, dict(m.message.attributes), m.ack_id)
            for m in response.received_messages
        ]

    def take(self, subscription: str, messages: Sequence[HeldMessage]) -> None:
        if messages:
            self._client.acknowledge(
                subscription=self._client.subscription_path(self._project, subscription),
                ack_ids=[m.ack_id for m in messages],
            )

"""Delivery around every stage (framesift.delivery) over in-memory fakes: failures counted per
message, the dead letter at the limit (or at once for a permanent error) with the stage's
``give_up``, an uncountable failure left to Pub/Sub, and both replays publishing once."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from framesift.delivery import PUBSUB_DEAD_LETTER_ATTRIBUTES, deliver, replay, replay_held
from framesift.errors import BadEvent
from framesift.events import PubSubMessage
from framesift.topology import LABELER, Collections, Topics, holding_subscription
from tests.support.fakes import (
    FlakyDocumentStore,
    InMemoryDocumentStore,
    InMemoryHeldMessages,
    RecordingPublisher,
)

MESSAGE = PubSubMessage.of(b'{"batch_id": "b1"}', {"batch_id": "b1"}, "m1")


class Stack:
    def __init__(self, documents: InMemoryDocumentStore | None = None) -> None:
        self.documents = documents or InMemoryDocumentStore()
        self.publisher = RecordingPublisher()
        self.given_up: list[str] = []

    def deliver(self, handle: Callable[[PubSubMessage], Any], max_attempts: int = 3) -> Any:
        return deliver(
            MESSAGE,
            handle,
            subscriber=LABELER.name,
            topic=Topics.FRAMES_KEPT,
            documents=self.documents,
            publisher=self.publisher,
            max_attempts=max_attempts,
            give_up=lambda message, reason: self.given_up.append(reason),
        )

    def dead_letters(self) -> list[dict[str, Any]]:
        return self.documents.where(Collections.DEAD_LETTERS, "subscriber", LABELER.name)


def _failing(error: Exception) -> Callable[[PubSubMessage], Any]:
    def handle(message: PubSubMessage) -> Any:
        raise error

    return handle


def test_failures_are_counted_and_the_message_dead_lettered_at_the_limit():
    stack = Stack()
    handle = _failing(RuntimeError("vendor 500"))
    for _ in range(2):  # raised: Pub/Sub redelivers
        with pytest.raises(RuntimeError, match="vendor 500"):
            stack.deliver(handle)
    assert stack.publisher.published[Topics.DEAD_LETTERS] == []

    assert stack.deliver(handle) is None  # acknowledged: no message loops forever

    [dead] = stack.publisher.published[Topics.DEAD_LETTERS]
    assert dead.data == MESSAGE.payload()
    assert {key: dead.attributes[key] for key in ("subscriber", "source_topic", "attempts")} == {
        "subscriber": LABELER.name,
        "source_topic": Topics.FRAMES_KEPT,
        "attempts": "3",
    }
    assert json.loads(dead.attributes["original_attributes"]) == MESSAGE.attributes
    [record] = stack.dead_letters()
    assert (record["permanent"], record["attempts"]) == (False, 3)
    assert stack.given_up == ["RuntimeError: vendor 500"]


def test_a_permanent_error_is_dead_lettered_at_once_and_a_success_writes_nothing():
    stack = Stack()
    assert stack.deliver(lambda message: "done") == "done"
    assert list(stack.documents.changed_since(Collections.DELIVERIES, None)) == []

    assert stack.deliver(_failing(BadEvent("malformed kept-frames message"))) is None

    [dead] = stack.publisher.published[Topics.DEAD_LETTERS]
    assert dead.attributes["attempts"] == "1"
    [record] = stack.dead_letters()
    assert record["permanent"] is True
    assert stack.given_up == ["BadEvent: malformed kept-frames message"]


def test_a_failure_that_cannot_be_counted_is_left_to_pubsub():
    """The document store down too: the handler's own error is raised, nothing dead-lettered."""
    documents = FlakyDocumentStore()
    documents.down = True
    stack = Stack(documents)

    for _ in range(5):
        with pytest.raises(RuntimeError, match="vendor 500"):
            stack.deliver(_failing(RuntimeError("vendor 500")), max_attempts=1)

    assert stack.publisher.published[Topics.DEAD_LETTERS] == []
    assert stack.given_up == []


def test_dead_letters_are_replayed_to_their_topic_once():
    stack = Stack()
    stack.deliver(_failing(BadEvent("refused")))

    assert replay(stack.documents, stack.publisher, LABELER.name) == 1
    assert replay(stack.documents, stack.publisher, LABELER.name) == 0

    [again] = stack.publisher.published[Topics.FRAMES_KEPT]
    assert (again.data, again.attributes) == (MESSAGE.payload(), MESSAGE.attributes)


def test_what_pubsub_held_is_republished_without_its_marks_and_taken():
    held = InMemoryHeldMessages()
    publisher = RecordingPublisher()
    hold = holding_subscription(LABELER.dead_letter_topic(Topics.FRAMES_KEPT))
    for batch in ("b1", "b2", "b3"):
        marks = {f"{PUBSUB_DEAD_LETTER_ATTRIBUTES}Subscription": "labeler-sub"}
        held.hold(hold, batch.encode(), {"batch_id": batch, **marks})

    assert replay_held(held, publisher, LABELER.name, batch=2) == 3
    assert replay_held(held, publisher, LABELER.name) == 0

    republished = publisher.published[Topics.FRAMES_KEPT]
    assert [(m.data, m.attributes) for m in republished] == [
        (batch.encode(), {"batch_id": batch}) for batch in ("b1", "b2", "b3")
    ]
    assert held.pull(hold, 10) == []


def test_replaying_what_pubsub_held_says_which_subscription_it_waits_on_once_each():
    from framesift.deadletters import Announced

    held = InMemoryHeldMessages()
    publisher = RecordingPublisher()
    holds = [holding_subscription(LABELER.dead_letter_topic(t)) for t in LABELER.subscribes]
    held.hold(holds[0], b"b1", {"batch_id": "b1"})
    said: list[str] = []

    replayed = replay_held(Announced(held, said.append, 10), publisher, LABELER.name, batch=1)

    assert replayed == 1
    assert said == [
        f"looking in {hold} for what Pub/Sub dead-lettered (up to 10 s when it holds nothing)"
        for hold in holds
    ]

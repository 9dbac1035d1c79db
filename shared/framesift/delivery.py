"""At-least-once delivery with a bound: what happens to a message a stage cannot handle.

Every subscriber (a deployed function, or a handler in embedded mode) hands its messages to
:func:`deliver`. It counts the failed deliveries of each message in the document store
(``deliveries/{subscriber}~{message id}``, written only on failure), and gives up on a message
when retrying cannot help: at once for a :class:`~framesift.errors.PermanentError` (a malformed
event, a vendor refusing the request), or after ``max_delivery_attempts`` failures otherwise.
Giving up means: the message goes to the ``dead-letters`` topic with the reason in its
attributes, a ``dead_letters`` document records it for operators (replayable from there), the
stage's ``give_up`` hook marks what it concerned as failed, and the delivery is acknowledged, so
no message loops forever. Any other failure is raised, so Pub/Sub redelivers with backoff.

Cloud Pub/Sub's own dead-letter policy (set by the infra on every subscription, with more
attempts) stays as a backstop for a function that crashes before it can count.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from framesift.bookkeeping import DeliveryFailures
from framesift.documents import DeadLetterRecord, utcnow
from framesift.errors import PermanentError
from framesift.events import PubSubMessage
from framesift.logs import get_logger
from framesift.ports import DocKey, DocumentStore, HeldMessages, Publisher
from framesift.topology import FUNCTIONS, Collections, Topics, holding_subscription

log = get_logger(__name__)

_MAX_ERROR_CHARS = 1000
# The attributes Pub/Sub adds to a message it dead-letters (where from, after how many tries).
PUBSUB_DEAD_LETTER_ATTRIBUTES = "CloudPubSubDeadLetterSource"

GiveUp = Callable[[PubSubMessage, str], None]


def deliver(
    message: PubSubMessage,
    handle: Callable[[PubSubMessage], Any],
    *,
    subscriber: str,
    topic: str,
    documents: DocumentStore,
    publisher: Publisher,
    max_attempts: int,
    give_up: GiveUp | None = None,
) -> Any:
    """Handle ``message`` (from ``topic``); on failure either raise (to be redelivered) or
    dead-letter it."""
    where = (subscriber, topic)
    ports = (documents, publisher)
    try:
        return handle(message)
    except PermanentError as exc:
        _dead_letter(message, where, exc, 1, ports, give_up, permanent=True)
        return None
    except Exception as exc:
        try:
            attempts: int | None = _count_failure(message, subscriber, documents)
        except Exception as counting:
            # The document store is down too (a Firestore outage fails both): the failure goes
            # uncounted, and Pub/Sub's own dead-letter policy still bounds the redeliveries.
            log.warning(
                "delivery failed, not counted, Pub/Sub will redeliver: %s; counting: %s",
                _describe(exc),
                _describe(counting),
                extra={"fields": {"subscriber": subscriber}},
            )
            attempts = None
        if attempts is None:
            raise  # the handler's own error, with its causes
        if attempts >= max_attempts:
            _dead_letter(message, where, exc, attempts, ports, give_up, permanent=False)
            return None
        log.warning(
            "delivery failed, Pub/Sub will redeliver: %s",
            _describe(exc),
            extra={"fields": {"subscriber": subscriber, "attempt": attempts}},
        )
        raise


def replay(documents: DocumentStore, publisher: Publisher, subscriber: str | None = None) -> int:
    """Publish every dead letter not replayed yet (of one subscriber, or all) to its topic
    again, with its original attributes; returns how many. A replayed message is a new
    message: its failures are counted afresh."""
    count = 0
    for record in documents.where(Collections.DEAD_LETTERS, "replayed_at", None):
        if subscriber and record.get("subscriber") != subscriber:
            continue
        if not record.get("topic"):
            continue  # recorded before topics were; replay it by hand from its data
        message = PubSubMessage.model_validate(
            {"data": record.get("data", ""), "attributes": record.get("attributes") or {}}
        )
        publisher.publish(record["topic"], message.payload(), message.attributes)
        documents.merge(
            Collections.DEAD_LETTERS, record["id"], DeadLetterRecord.fields(replayed_at=utcnow())
        )
        count += 1
    return count


def replay_held(
    held: HeldMessages, publisher: Publisher, subscriber: str | None = None, batch: int = 100
) -> int:
    """Publish what Pub/Sub itself dead-lettered for each function (of one subscriber, or all)
    to the topic it came from again, with its own attributes, then take it from the holding
    subscription; returns how many. A crash between the two publishes a message twice, which
    the stages' idempotency absorbs."""
    count = 0
    for spec in FUNCTIONS:
        if subscriber and spec.name != subscriber:
            continue
        for topic in spec.subscribes:
            hold = holding_subscription(spec.dead_letter_topic(topic))
            while messages := held.pull(hold, batch):
                for message in messages:
                    attributes = {
                        key: value
                        for key, value in message.attributes.items()
                        if not key.startswith(PUBSUB_DEAD_LETTER_ATTRIBUTES)
                    }
                    publisher.publish(topic, message.data, attributes)
                held.take(hold, messages)
                count += len(messages)
    return count


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_CHARS]


def _delivery_id(message: PubSubMessage, subscriber: str) -> str:
    return DeadLetterRecord.make_id(subscriber, message.message_id)


def _count_failure(message: PubSubMessage, subscriber: str, documents: DocumentStore) -> int:
    key: DocKey = (Collections.DELIVERIES, _delivery_id(message, subscriber))

    def change(docs: dict[DocKey, dict | None]) -> tuple[dict[DocKey, dict], int]:
        attempts = int((docs[key] or {}).get("failures", 0)) + 1
        return {key: DeliveryFailures(failures=attempts).stored()}, attempts

    return documents.transact([key], change)


def _dead_letter(
    message: PubSubMessage,
    where: tuple[str, str],
    exc: BaseException,
    attempts: int,
    ports: tuple[DocumentStore, Publisher],
    give_up: GiveUp | None,
    *,
    permanent: bool,
) -> None:
    subscriber, topic = where
    documents, publisher = ports
    reason = _describe(exc)
    record_id = _delivery_id(message, subscriber)
    publisher.publish(
        Topics.DEAD_LETTERS,
        message.payload(),
        {
            "subscriber": subscriber,
            # Not "topic": the Pub/Sub client takes attributes as keyword arguments beside it.
            "source_topic": topic,
            "message_id": message.message_id,
            "error": reason,
            "attempts": str(attempts),
            "original_attributes": json.dumps(message.attributes),
        },
    )
    record = DeadLetterRecord(
        id=record_id,
        subscriber=subscriber,
        topic=topic,
        message_id=message.message_id,
        attributes=message.attributes,
        data=message.data,
        error=reason,
        permanent=permanent,
        attempts=attempts,
    )
    documents.merge(Collections.DEAD_LETTERS, record_id, record.stored())
    if give_up is not None:
        give_up(message, reason)
    log.error(
        "message dead-lettered: %s",
        reason,
        extra={"fields": {"subscriber": subscriber, "attempts": attempts}},
    )

"""Pub/Sub in-process: delivers at least once, like the real thing: a handler that raises is
retried, and after ``max_attempts`` the message goes to a dead-letter list."""

from __future__ import annotations

import random
import threading
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from framesift.logs import get_logger

log = get_logger(__name__)


MessageHandler = Callable[[bytes, Mapping[str, str], str], None]


@dataclass
class _Message:
    topic: str
    data: bytes
    attributes: dict[str, str]
    message_id: str
    attempts: int = 0


@dataclass
class InProcessPublisher:
    """Pub/Sub stand-in: FIFO delivery to subscribed handlers when ``drain()`` runs."""

    max_attempts: int = 5
    # The reliability tests' knobs: deliver every message this many times, in random order.
    copies: int = 1
    shuffle: random.Random | None = None
    _subscribers: dict[str, list[MessageHandler]] = field(default_factory=lambda: defaultdict(list))
    _queue: deque[tuple[_Message, MessageHandler]] = field(default_factory=deque)
    # Every message published, by topic, in order (what a topic's audit subscription would see).
    published: dict[str, list[_Message]] = field(default_factory=lambda: defaultdict(list))
    # Messages to topics nobody subscribes to yet, kept so nothing is silently lost.
    retained: dict[str, list[_Message]] = field(default_factory=lambda: defaultdict(list))
    dead_letters: list[tuple[_Message, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def subscribe(self, topic: str, handler: MessageHandler) -> None:
        self._subscribers[topic].append(handler)

    def unsubscribe_all(self, topic: str) -> None:
        """Detach the topic's handlers: later messages are retained (a stage that is down)."""
        self._subscribers.pop(topic, None)

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str] | None = None) -> str:
        message = _Message(topic, data, dict(attributes or {}), uuid.uuid4().hex)
        with self._lock:
            self.published[topic].append(message)
            handlers = self._subscribers.get(topic)
            if not handlers:
                self.retained[topic].append(message)
            for handler in handlers or ():
                for _ in range(self.copies):  # redeliveries keep the message id, as Pub/Sub's
                    self._queue.append((replace(message), handler))
        return message.message_id

    def forget(self) -> None:
        """Drop the record of the messages published (``published``, ``retained`` and
        ``dead_letters``; the queue stays): a long-lived pipeline that reads none of them (an
        edge agent's sifter) would otherwise keep every message of its life."""
        with self._lock:
            self.published.clear()
            self.retained.clear()
            self.dead_letters.clear()

    def drain(self) -> int:
        """Deliver until the queue is empty; returns the number of successful deliveries."""
        delivered = 0
        while True:
            with self._lock:
                if not self._queue:
                    return delivered
                if self.shuffle is not None:  # any order, as Pub/Sub without ordering keys
                    self._queue.rotate(-self.shuffle.randrange(len(self._queue)))
                message, handler = self._queue.popleft()
            message.attempts += 1
            try:
                handler(message.data, message.attributes, message.message_id)
                delivered += 1
            except Exception as exc:
                if message.attempts >= self.max_attempts:
                    log.error(
                        "message dead-lettered after %d attempts",
                        message.attempts,
                        extra={"fields": {"topic": message.topic, "error": str(exc)}},
                    )
                    self.dead_letters.append((message, repr(exc)))
                else:
                    log.warning(
                        "delivery failed, will retry",
                        extra={"fields": {"topic": message.topic, "error": str(exc)}},
                    )
                    with self._lock:
                        self._queue.append((message, handler))

"""Dead letters published to their topics again, on the backend the settings pick: the
functions' own (the dead_letters collection) and, on Google Cloud, the messages Pub/Sub itself
dead-lettered (held by the dead-letter topics' subscriptions)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from framesift.bootstrap import build_adapters
from framesift.config import Backend, Settings
from framesift.delivery import replay, replay_held
from framesift.ports import HeldMessage, HeldMessages


@dataclass(frozen=True)
class Replayed:
    dead_letters: int  # the functions' own
    held: int | None  # what Pub/Sub had dead-lettered; None embedded, where Pub/Sub is not


class Announced:
    """Held messages that say which subscription they are about to wait on, once each: an
    empty one costs a pull's whole deadline, which must not pass in silence."""

    def __init__(self, held: HeldMessages, say: Callable[[str], None], wait_s: float) -> None:
        self._held = held
        self._say = say
        self._wait_s = wait_s
        self._announced: set[str] = set()

    def pull(self, subscription: str, limit: int) -> list[HeldMessage]:
        if subscription not in self._announced:
            self._announced.add(subscription)
            self._say(
                f"looking in {subscription} for what Pub/Sub dead-lettered"
                f" (up to {self._wait_s:g} s when it holds nothing)"
            )
        return self._held.pull(subscription, limit)

    def take(self, subscription: str, messages: Sequence[HeldMessage]) -> None:
        self._held.take(subscription, messages)


def replay_dead_letters(
    settings: Settings, subscriber: str | None, say: Callable[[str], None] = lambda _: None
) -> Replayed:
    """Publish the dead letters not replayed yet (of one function, or all) again; ``say``
    hears what it is waiting for."""
    if settings.backend is Backend.EMBEDDED:  # the stages run here, on the in-process topics
        from framesift.embedded import EmbeddedPipeline

        pipeline = EmbeddedPipeline(settings)
        count = replay(pipeline.adapters.documents, pipeline.publisher, subscriber)
        pipeline.publisher.drain()
        return Replayed(count, None)
    from framesift.adapters.gcp.pubsub import HELD_PULL_TIMEOUT_SECONDS, PubSubHeldMessages

    adapters = build_adapters(settings)
    count = replay(adapters.documents, adapters.publisher, subscriber)
    pulled = Announced(PubSubHeldMessages(settings.project), say, HELD_PULL_TIMEOUT_SECONDS)
    held = replay_held(pulled, adapters.publisher, subscriber)
    return Replayed(count, held)

"""Dead letters published to their topics again, on the backend the settings pick: the
functions' own (the dead_letters collection) and, on Google Cloud, the messages Pub/Sub itself
dead-lettered (held by the dead-letter topics' subscriptions)."""

from __future__ import annotations

from dataclasses import dataclass

from framesift.bootstrap import build_adapters
from framesift.config import Backend, Settings
from framesift.delivery import replay, replay_held


@dataclass(frozen=True)
class Replayed:
    dead_letters: int  # the functions' own
    held: int | None  # what Pub/Sub had dead-lettered; None embedded, where Pub/Sub is not


def replay_dead_letters(settings: Settings, subscriber: str | None) -> Replayed:
    """Publish the dead letters not replayed yet (of one function, or all) again."""
    if settings.backend is Backend.EMBEDDED:  # the stages run here, on the in-process topics
        from framesift.embedded import EmbeddedPipeline

        pipeline = EmbeddedPipeline(settings)
        count = replay(pipeline.adapters.documents, pipeline.publisher, subscriber)
        pipeline.publisher.drain()
        return Replayed(count, None)
    from framesift.adapters.gcp.pubsub import PubSubHeldMessages

    adapters = build_adapters(settings)
    count = replay(adapters.documents, adapters.publisher, subscriber)
    held = replay_held(PubSubHeldMessages(settings.project), adapters.publisher, subscriber)
    return Replayed(count, held)

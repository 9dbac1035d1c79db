"""What every function entry point shares: logging, wiring once per instance, event parsing."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from cloudevents.http import CloudEvent

from framesift.config import get_settings
from framesift.delivery import GiveUp, deliver
from framesift.logs import configure_logging, get_logger, traced
from framesift.models import BadEvent, PubSubMessage
from framesift.stages.dedup import Dedup
from framesift.stages.exporter import Exporter
from framesift.stages.labeler import Labeler
from framesift.stages.sampler import Sampler
from framesift.vendors import build_vendor
from framesift.webhook import CallbackReceiver
from framesift.wiring import Adapters, build_adapters

log = get_logger(__name__)


@lru_cache(maxsize=1)
def adapters() -> Adapters:
    """Built once per function instance, so clients and connections are reused across events."""
    settings = get_settings()
    configure_logging(settings.log_level)
    return build_adapters(settings)


@lru_cache(maxsize=1)
def sampler() -> Sampler:
    return Sampler(adapters(), get_settings())


@lru_cache(maxsize=1)
def dedup() -> Dedup:
    return Dedup(adapters(), get_settings())


@lru_cache(maxsize=1)
def labeler() -> Labeler:
    return Labeler(adapters(), get_settings(), build_vendor(get_settings(), adapters()))


@lru_cache(maxsize=1)
def exporter() -> Exporter:
    return Exporter(adapters(), get_settings())


@lru_cache(maxsize=1)
def callbacks() -> CallbackReceiver:
    return CallbackReceiver(get_settings(), adapters().documents)


def run_pubsub_event(
    cloud_event: CloudEvent,
    handle: Callable[[PubSubMessage], Any],
    subscriber: str,
    give_up: GiveUp | None = None,
) -> None:
    """Parse a Pub/Sub CloudEvent and deliver its message (see :mod:`framesift.delivery`).

    Returning acknowledges the message; an exception makes Pub/Sub redeliver it.
    """
    settings = get_settings()
    wired = adapters()
    with traced(settings.project, cloud_event.get("traceparent")):
        try:
            message = PubSubMessage.from_cloud_event_data(cloud_event.data)
        except BadEvent as exc:  # not even a message: nothing to dead-letter
            log.error(
                "bad event acknowledged without retry: %s",
                exc,
                extra={"fields": {"event_id": cloud_event.get("id")}},
            )
            return
        deliver(
            message,
            handle,
            subscriber=subscriber,
            topic=_topic_of(cloud_event),
            adapters=wired,
            settings=settings,
            give_up=give_up,
        )


def _topic_of(cloud_event: CloudEvent) -> str:
    """The topic a Pub/Sub CloudEvent came from: its source ends ``.../topics/{topic}``."""
    return str(cloud_event.get("source") or "").rsplit("/topics/", 1)[-1]

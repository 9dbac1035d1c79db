"""What every deployed function's entry point shares: settings and adapters built once per
instance (so clients and connections are reused across events), its subscriber built once
(:mod:`framesift.bootstrap`), and the Pub/Sub CloudEvent it is invoked with."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from cloudevents.http import CloudEvent

from framesift import bootstrap
from framesift.config import get_settings
from framesift.events import PubSubMessage, topic_of
from framesift.logs import configure_logging
from framesift.topology import FunctionSpec

if TYPE_CHECKING:
    from framesift.stages.webhook import CallbackReceiver


@cache
def adapters() -> bootstrap.Adapters:
    settings = get_settings()
    configure_logging(settings.log_level)
    return bootstrap.build_adapters(settings)


@cache
def subscriber(function: str) -> bootstrap.Subscriber:
    return bootstrap.Subscriber(function, adapters(), get_settings())


@cache
def callbacks() -> CallbackReceiver:
    return bootstrap.callback_receiver(get_settings(), adapters().documents)


def run_pubsub_event(cloud_event: CloudEvent, function: FunctionSpec) -> None:
    """Deliver a Pub/Sub CloudEvent's message to ``function``. Returning acknowledges the
    message; an exception makes Pub/Sub redeliver it."""
    subscriber(function.name).receive(
        lambda: PubSubMessage.from_cloud_event_data(cloud_event.data),
        topic=topic_of(cloud_event.get("source")),
        traceparent=cloud_event.get("traceparent"),
        event_id=cloud_event.get("id"),
    )

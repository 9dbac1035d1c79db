"""What every deployed function's entry point shares: settings and adapters built once per
instance (so clients and connections are reused across events), its handler built once, and
the parsing of the Pub/Sub CloudEvent it is invoked with."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from cloudevents.http import CloudEvent

from framesift import bootstrap
from framesift.config import get_settings
from framesift.delivery import deliver
from framesift.errors import BadEvent
from framesift.events import PubSubMessage, topic_of
from framesift.logs import configure_logging, get_logger, traced
from framesift.topology import FunctionSpec
from framesift.wiring import Adapters, build_adapters

if TYPE_CHECKING:
    from framesift.webhook import CallbackReceiver

log = get_logger(__name__)


@cache
def adapters() -> Adapters:
    settings = get_settings()
    configure_logging(settings.log_level)
    return build_adapters(settings)


@cache
def handler(function: str) -> bootstrap.Handler:
    return bootstrap.handler(function, adapters(), get_settings())


@cache
def callbacks() -> CallbackReceiver:
    return bootstrap.callback_receiver(get_settings(), adapters().documents)


def run_pubsub_event(cloud_event: CloudEvent, function: FunctionSpec) -> None:
    """Parse a Pub/Sub CloudEvent and deliver its message to ``function``'s handler (see
    :mod:`framesift.delivery`). Returning acknowledges the message; an exception makes Pub/Sub
    redeliver it."""
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
        stage = handler(function.name)
        deliver(
            message,
            stage.handle,
            subscriber=function.name,
            topic=topic_of(cloud_event.get("source")),
            adapters=wired,
            settings=settings,
            give_up=stage.give_up,
        )

"""What every function entry point shares: logging, wiring once per instance, event parsing."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from cloudevents.http import CloudEvent

from framesift.config import get_settings
from framesift.logs import bind_trace, clear_context, configure_logging, get_logger
from framesift.models import BadEvent, PubSubMessage
from framesift.stages.dedup import BatchResult, Dedup
from framesift.stages.sampler import Sampler, SampleResult
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


def run_pubsub_event(cloud_event: CloudEvent, handle: Callable[[PubSubMessage], Any]) -> None:
    """Parse a Pub/Sub CloudEvent and hand its message on.

    A message that can never be processed is logged and acknowledged (returning normally), so it
    does not loop; any other exception propagates and Pub/Sub redelivers.
    """
    adapters()
    bind_trace(get_settings().project, cloud_event.get("traceparent"))
    try:
        message = PubSubMessage.from_cloud_event_data(cloud_event.data)
        handle(message)
    except BadEvent as exc:
        log.error(
            "bad event acknowledged without retry: %s",
            exc,
            extra={"fields": {"event_id": cloud_event.get("id")}},
        )
    finally:
        clear_context()


def sample_notification(message: PubSubMessage) -> SampleResult:
    return sampler().handle_message(message)


def dedup_message(message: PubSubMessage) -> BatchResult:
    return dedup().handle_message(message)

"""The one composition root: which stage object serves each function of the bundle.

:func:`handler` builds the stage of a Pub/Sub function from adapters and settings, importing
only that stage (and, for the labeler, only the configured vendor), so a deployed function
loads what it runs and nothing else. The runtime (deployed functions) and the embedded pipeline
both build their stages here; which topics feed each function is in :mod:`framesift.topology`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from framesift.config import Settings
from framesift.delivery import GiveUp
from framesift.events import PubSubMessage
from framesift.ports import DocumentStore
from framesift.topology import DEDUP, EXPORTER, LABELER, SAMPLER
from framesift.wiring import Adapters, Lazy

if TYPE_CHECKING:
    from framesift.prelabels import Prelabeler
    from framesift.webhook import CallbackReceiver


@dataclass(frozen=True)
class Handler:
    """What a Pub/Sub function does with a message, and what it marks when it gives up on one
    (the sampler marks the video or segment ``failed``, the labeler the message's frames
    ``labeling_failed``)."""

    handle: Callable[[PubSubMessage], Any]
    give_up: GiveUp | None = None


def handler(function: str, adapters: Adapters, settings: Settings) -> Handler:
    """The handler of the Pub/Sub function called ``function``."""
    if function == SAMPLER.name:
        from framesift.stages.sampler import Sampler

        sampler = Sampler(adapters, settings)
        return Handler(sampler.handle_message, sampler.give_up)
    if function == DEDUP.name:
        from framesift.stages.dedup import Dedup

        return Handler(Dedup(adapters, settings).handle_message)
    if function == LABELER.name:
        from framesift.stages.labeler import Labeler
        from framesift.vendors import build_vendor

        labeler = Labeler(
            adapters,
            settings,
            build_vendor(settings, adapters),
            prelabeler=_prelabeler(adapters, settings),
        )
        return Handler(labeler.handle_message, labeler.give_up)
    if function == EXPORTER.name:
        from framesift.stages.exporter import Exporter

        return Handler(Exporter(adapters, settings).handle_message)
    raise KeyError(f"{function!r} is not a Pub/Sub function of the bundle")


def _prelabeler(adapters: Adapters, settings: Settings) -> Lazy[Prelabeler] | None:
    """The configured model's pre-labeler, loaded on the first batch: a model that cannot load
    then fails that delivery (dead-lettered when permanent), not the instance's start."""
    if not settings.model_uri:
        return None

    def load() -> Prelabeler:
        from framesift.adapters.onnx import load_detector
        from framesift.prelabels import Prelabeler

        detector = load_detector(settings, adapters.blobs)
        return Prelabeler(detector, settings, adapters.documents, adapters.blobs)

    return Lazy(load)


def callback_receiver(settings: Settings, documents: DocumentStore) -> CallbackReceiver:
    """The webhook's receiver of vendor callbacks."""
    from framesift.webhook import CallbackReceiver

    return CallbackReceiver(settings, documents)

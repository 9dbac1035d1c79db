"""The composition root: which adapter serves each port, which stage serves each function, and
how a function's messages reach its stage.

Deployed functions (:mod:`framesift.runtime`), the embedded pipeline (:mod:`framesift.embedded`),
the dev stack and the command line all build here. Each stage is given only the ports it uses
and its own section of the settings (:func:`framesift.config.section`), so its signature says
what it depends on. Stages, vendors and Google clients are imported when first built, so a
deployed function loads what it runs and nothing else (``tests/deploy/test_cold_start_imports``).
Which topics feed each function is in :mod:`framesift.topology`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from framesift.config import Backend, Settings, section
from framesift.delivery import GiveUp, deliver
from framesift.errors import BadEvent
from framesift.events import PubSubMessage
from framesift.logs import get_logger, traced
from framesift.ports import BlobStore, DocumentStore, LabelingVendor, Lazy, Publisher, Warehouse
from framesift.topology import DEDUP, EXPORTER, LABELER, SAMPLER

if TYPE_CHECKING:
    from framesift.prelabels import Prelabeler
    from framesift.stages.dedup import Dedup
    from framesift.stages.exporter import Exporter
    from framesift.stages.labeler import Labeler
    from framesift.stages.sampler import Sampler
    from framesift.stages.webhook import CallbackReceiver

log = get_logger(__name__)
P = TypeVar("P")


def _lazy(port: P | Lazy[P]) -> Lazy[P]:
    return port if isinstance(port, Lazy) else Lazy(lambda: port)


class Adapters:
    """The four storage and transport ports: each given built, or as a :class:`Lazy` built on
    first use."""

    def __init__(
        self,
        blobs: BlobStore | Lazy[BlobStore],
        publisher: Publisher | Lazy[Publisher],
        documents: DocumentStore | Lazy[DocumentStore],
        warehouse: Warehouse | Lazy[Warehouse],
    ) -> None:
        self._blobs = _lazy(blobs)
        self._publisher = _lazy(publisher)
        self._documents = _lazy(documents)
        self._warehouse = _lazy(warehouse)

    @property
    def blobs(self) -> BlobStore:
        return self._blobs.get()

    @property
    def publisher(self) -> Publisher:
        return self._publisher.get()

    @property
    def documents(self) -> DocumentStore:
        return self._documents.get()

    @property
    def warehouse(self) -> Warehouse:
        return self._warehouse.get()


def build_blob_store(settings: Settings) -> BlobStore:
    """The blob store alone (an uploading device needs no other backend)."""
    if settings.backend is Backend.GCP:
        from framesift.adapters.gcp.gcs import GcsBlobStore

        return GcsBlobStore(
            settings.project, settings.signed_url_minutes, settings.signer_service_account
        )
    from framesift.adapters.embedded.folder import FolderBlobStore

    return FolderBlobStore(settings.workdir / "buckets")


def _gcp_publisher(settings: Settings) -> Publisher:
    from framesift.adapters.gcp.pubsub import PubSubPublisher

    return PubSubPublisher(settings.project)


def _gcp_documents(settings: Settings) -> DocumentStore:
    from framesift.adapters.gcp.firestore import FirestoreDocumentStore

    return FirestoreDocumentStore(settings.project)


def _gcp_warehouse(settings: Settings) -> Warehouse:
    from framesift.adapters.gcp.bigquery import BigQueryWarehouse

    return BigQueryWarehouse(
        settings.project,
        settings.bigquery_dataset,
        settings.bigquery_location,
        settings.bigquery_endpoint,
    )


def build_adapters(settings: Settings) -> Adapters:
    """Deployed (``gcp``), each client is built when a stage first uses it, so a function
    builds at cold start only what its stage touches (the sampler never loads BigQuery)."""
    if settings.backend is Backend.GCP:
        return Adapters(
            blobs=Lazy(lambda: build_blob_store(settings)),
            publisher=Lazy(lambda: _gcp_publisher(settings)),
            documents=Lazy(lambda: _gcp_documents(settings)),
            warehouse=Lazy(lambda: _gcp_warehouse(settings)),
        )
    from framesift.adapters.embedded.duckdb import DuckDbWarehouse
    from framesift.adapters.embedded.inprocess import InProcessPublisher
    from framesift.adapters.embedded.sqlite import SqliteDocumentStore

    workdir = settings.workdir
    return Adapters(
        blobs=build_blob_store(settings),
        publisher=InProcessPublisher(),
        documents=SqliteDocumentStore(workdir / "documents.sqlite3"),
        warehouse=DuckDbWarehouse(workdir / "warehouse.duckdb", settings.bigquery_dataset),
    )


def sampler(adapters: Adapters, settings: Settings) -> Sampler:
    from framesift.stages.sampler import Sampler, SamplerConfig

    config = section(SamplerConfig, settings, policy=settings.sampling_policy())
    return Sampler(adapters.blobs, adapters.documents, adapters.publisher, config)


def dedup(adapters: Adapters, settings: Settings) -> Dedup:
    from framesift.stages.dedup import Dedup, DedupConfig

    return Dedup(
        adapters.blobs, adapters.documents, adapters.publisher, section(DedupConfig, settings)
    )


def vendor(adapters: Adapters, settings: Settings) -> LabelingVendor:
    """The configured vendor, as the vendor registry builds it (its adapter imported here: a
    deployment loads only its own client), given its ports and its own settings."""
    from framesift.vendors.registry import VENDORS, load

    spec = VENDORS[settings.labeling_vendor]
    ports = [getattr(adapters, port) for port in spec.ports]
    built: LabelingVendor = load(spec.adapter)(*ports, section(load(spec.config), settings))
    return built


def labeler(
    adapters: Adapters, settings: Settings, labeling_vendor: LabelingVendor | None = None
) -> Labeler:
    """The labeler at ``labeling_vendor`` (the configured vendor if None)."""
    from framesift.selection import load_policy
    from framesift.stages.labeler import Labeler, LabelerConfig

    return Labeler(
        adapters.blobs,
        adapters.documents,
        labeling_vendor or vendor(adapters, settings),
        section(LabelerConfig, settings),
        load_policy(settings),
        prelabeler=_prelabeler(adapters, settings),
    )


def _prelabeler(adapters: Adapters, settings: Settings) -> Lazy[Prelabeler] | None:
    """The configured model's pre-labeler, loaded on the first batch: a model that cannot load
    then fails that delivery (dead-lettered when permanent), not the instance's start."""
    if not settings.model_uri:
        return None

    def load() -> Prelabeler:
        from framesift.adapters.onnx import load_detector
        from framesift.prelabels import Prelabeler, PrelabelerConfig

        detector = load_detector(settings, adapters.blobs)
        config = section(PrelabelerConfig, settings)
        return Prelabeler(detector, adapters.documents, adapters.blobs, config)

    return Lazy(load)


def exporter(adapters: Adapters, settings: Settings) -> Exporter:
    from framesift.stages.exporter import Exporter, ExporterConfig

    return Exporter(adapters.documents, adapters.warehouse, section(ExporterConfig, settings))


def callback_receiver(settings: Settings, documents: DocumentStore) -> CallbackReceiver:
    """The webhook's receiver of vendor callbacks."""
    from framesift.annotations import LabelRules
    from framesift.stages.webhook import CallbackReceiver, WebhookConfig
    from framesift.vendors.registry import callback_secrets

    config = section(
        WebhookConfig,
        settings,
        callback_secrets=callback_secrets(settings),
        rules=LabelRules.of(settings),
    )
    return CallbackReceiver(documents, config)


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
        sampling = sampler(adapters, settings)
        return Handler(sampling.handle_message, sampling.give_up)
    if function == DEDUP.name:
        return Handler(dedup(adapters, settings).handle_message)
    if function == LABELER.name:
        labeling = labeler(adapters, settings)
        return Handler(labeling.handle_message, labeling.give_up)
    if function == EXPORTER.name:
        return Handler(exporter(adapters, settings).handle_message)
    raise KeyError(f"{function!r} is not a Pub/Sub function of the bundle")


class Subscriber:
    """A Pub/Sub function as its messages reach it, deployed or embedded: each delivery in its
    own trace and logging context, through the delivery rules (:func:`framesift.delivery.deliver`:
    counted failures, dead letters, the stage's ``give_up``)."""

    def __init__(
        self,
        function: str,
        adapters: Adapters,
        settings: Settings,
        on_result: Callable[[Any], None] | None = None,
    ) -> None:
        self.function = function
        self._adapters = adapters
        self._settings = settings
        self._handler = handler(function, adapters, settings)
        self._on_result = on_result

    def _handle(self, message: PubSubMessage) -> Any:
        result = self._handler.handle(message)
        if self._on_result is not None:
            self._on_result(result)
        return result

    def receive(
        self,
        read: Callable[[], PubSubMessage],
        topic: str,
        traceparent: str | None = None,
        event_id: str | None = None,
    ) -> Any:
        """Deliver the message ``read`` gives (from ``topic``). Returning acknowledges it; an
        exception makes Pub/Sub redeliver it. What is not even a message (``BadEvent``) is
        logged and acknowledged: there is nothing to dead-letter."""
        with traced(self._settings.project, traceparent):
            try:
                message = read()
            except BadEvent as exc:
                log.error(
                    "bad event acknowledged without retry: %s",
                    exc,
                    extra={"fields": {"event_id": event_id}},
                )
                return None
            return deliver(
                message,
                self._handle,
                subscriber=self.function,
                topic=topic,
                documents=self._adapters.documents,
                publisher=self._adapters.publisher,
                max_attempts=self._settings.max_delivery_attempts,
                give_up=self._handler.give_up,
            )

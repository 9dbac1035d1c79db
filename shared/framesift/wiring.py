"""The one place that decides which adapters are wired, from the settings.

Deployed, each port's client is built when a stage first uses it, so a function imports and
builds at cold start only the clients its stage touches (the sampler never loads BigQuery).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from framesift.config import Backend, Settings
from framesift.ports import BlobStore, DocumentStore, Publisher, Warehouse

P = TypeVar("P")


class Lazy(Generic[P]):
    """A port built by ``make`` on first use, once, whichever thread asks first."""

    def __init__(self, make: Callable[[], P]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._made: P | None = None

    def get(self) -> P:
        with self._lock:
            if self._made is None:
                self._made = self._make()
            return self._made


def _lazy(port: P | Lazy[P]) -> Lazy[P]:
    return port if isinstance(port, Lazy) else Lazy(lambda: port)


class Adapters:
    """The stages' four ports: each given built, or as a :class:`Lazy` built on first use."""

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
    from framesift.adapters import embedded

    return embedded.FolderBlobStore(settings.workdir / "buckets")


def _publisher(settings: Settings) -> Publisher:
    from framesift.adapters.gcp.pubsub import PubSubPublisher

    return PubSubPublisher(settings.project)


def _documents(settings: Settings) -> DocumentStore:
    from framesift.adapters.gcp.firestore import FirestoreDocumentStore

    return FirestoreDocumentStore(settings.project)


def _warehouse(settings: Settings) -> Warehouse:
    from framesift.adapters.gcp.bigquery import BigQueryWarehouse

    return BigQueryWarehouse(
        settings.project,
        settings.bigquery_dataset,
        settings.bigquery_location,
        settings.bigquery_endpoint,
    )


def build_adapters(settings: Settings) -> Adapters:
    if settings.backend is Backend.GCP:
        return Adapters(
            blobs=Lazy(lambda: build_blob_store(settings)),
            publisher=Lazy(lambda: _publisher(settings)),
            documents=Lazy(lambda: _documents(settings)),
            warehouse=Lazy(lambda: _warehouse(settings)),
        )

    from framesift.adapters import embedded

    workdir = settings.workdir
    return Adapters(
        blobs=build_blob_store(settings),
        publisher=embedded.InProcessPublisher(),
        documents=embedded.SqliteDocumentStore(workdir / "documents.sqlite3"),
        warehouse=embedded.DuckDbWarehouse(workdir / "warehouse.duckdb", settings.bigquery_dataset),
    )

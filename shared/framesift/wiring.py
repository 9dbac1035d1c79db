"""The one place that decides which adapters are wired, from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from framesift.config import Backend, Settings
from framesift.ports import BlobStore, DocumentStore, Publisher, Warehouse


@dataclass(frozen=True)
class Adapters:
    blobs: BlobStore
    publisher: Publisher
    documents: DocumentStore
    warehouse: Warehouse


def build_blob_store(settings: Settings) -> BlobStore:
    """The blob store alone (an uploading device needs no other backend)."""
    if settings.backend is Backend.GCP:
        from framesift.adapters import gcp

        return gcp.GcsBlobStore(
            settings.project, settings.signed_url_minutes, settings.signer_service_account
        )
    from framesift.adapters import embedded

    return embedded.FolderBlobStore(settings.workdir / "buckets")


def build_adapters(settings: Settings) -> Adapters:
    if settings.backend is Backend.GCP:
        from framesift.adapters import gcp

        return Adapters(
            blobs=build_blob_store(settings),
            publisher=gcp.PubSubPublisher(settings.project),
            documents=gcp.FirestoreDocumentStore(settings.project),
            warehouse=gcp.BigQueryWarehouse(
                settings.project,
                settings.bigquery_dataset,
                settings.bigquery_location,
                settings.bigquery_endpoint,
            ),
        )

    from framesift.adapters import embedded

    workdir = settings.workdir
    return Adapters(
        blobs=build_blob_store(settings),
        publisher=embedded.InProcessPublisher(),
        documents=embedded.SqliteDocumentStore(workdir / "documents.sqlite3"),
        warehouse=embedded.DuckDbWarehouse(workdir / "warehouse.duckdb", settings.bigquery_dataset),
    )

"""Google Cloud adapters over the official clients.

Pointed at the emulators by the clients' own variables (``STORAGE_EMULATOR_HOST``,
``PUBSUB_EMULATOR_HOST``, ``FIRESTORE_EMULATOR_HOST``) and, for BigQuery, which has none, by
``FRAMESIFT_BIGQUERY_ENDPOINT`` with anonymous credentials.
"""

from __future__ import annotations

import io
import mimetypes
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import google.auth
import google.auth.transport.requests
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery, firestore, pubsub_v1, storage

from framesift.errors import BackendUnavailable, NotFound, PreconditionFailed
from framesift.ports import (
    UPDATED_AT,
    BlobInfo,
    Change,
    Column,
    DocKey,
    HeldMessage,
    T,
    TableSchema,
    run_change,
    stamped,
)


def _blob_info(blob: storage.Blob) -> BlobInfo:
    return BlobInfo(
        bucket=blob.bucket.name,
        name=blob.name,
        generation=int(blob.generation or 0),
        size=int(blob.size or 0),
        content_type=blob.content_type,
        metadata=dict(blob.metadata or {}),
    )


RESUMABLE_CHUNK_BYTES = 8 * 1024 * 1024  # a multiple of 256 KiB, as resumable uploads require


class _ReadCounter(io.RawIOBase):
    """A file that reports how many bytes were read from it (an upload's progress)."""

    def __init__(self, stream: BinaryIO, report: Callable[[int], None]) -> None:
        self._stream = stream
        self._report = report
        self._sent = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._sent += len(data)
        self._report(self._sent)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        position = self._stream.seek(offset, whence)
        self._sent = position
        return position

    def tell(self) -> int:
        return self._stream.tell()


class GcsBlobStore:
    def __init__(
        self,
        project: str,
        signed_url_minutes: int = 30,
        signer_service_account: str | None = None,
    ) -> None:
        self._emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        if self._emulator:
            self._client = storage.Client(project=project, credentials=AnonymousCredentials())
        else:
            self._client = storage.Client(project=project)
        self._signed_url_ttl = timedelta(minutes=signed_url_minutes)
        self._signer = signer_service_account

    def stream_url(self, bucket: str, name: str, lifetime: timedelta | None = None) -> str:
        blob = self._client.bucket(bucket).blob(name)
        if self._emulator:
            # The emulators serve media without auth; this is the object's media link.
            blob.reload()
            return str(blob.media_link)
        # In Cloud Functions there is no key file: sign through the IAM signBlob API with the
        # function's own service account (it needs iam.serviceAccountTokenCreator on itself).
        credentials, _ = google.auth.default()
        credentials.refresh(google.auth.transport.requests.Request())
        return str(
            blob.generate_signed_url(
                version="v4",
                expiration=lifetime or self._signed_url_ttl,
                method="GET",
                service_account_email=self._signer or credentials.service_account_email,
                access_token=credentials.token,
            )
        )

    def put(
        self,
        bucket: str,
        name: str,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        if_generation_match: int | None = None,
    ) -> BlobInfo:
        blob = self._client.bucket(bucket).blob(name)
        blob.metadata = dict(metadata or {})
        try:
            blob.upload_from_string(
                data, content_type=content_type, if_generation_match=if_generation_match
            )
        except gexc.PreconditionFailed as exc:
            raise PreconditionFailed(f"{bucket}/{name} changed") from exc
        return _blob_info(blob)

    def put_file(
        self,
        bucket: str,
        name: str,
        source: Path,
        metadata: Mapping[str, str],
        progress: Callable[[int], None] | None = None,
    ) -> BlobInfo:
        # A chunk size makes it a resumable upload: a failed chunk is retried, not the file.
        blob = self._client.bucket(bucket).blob(name, chunk_size=RESUMABLE_CHUNK_BYTES)
        blob.metadata = dict(metadata)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        with source.open("rb") as stream:
            blob.upload_from_file(
                _ReadCounter(stream, progress or (lambda _: None)),
                size=source.stat().st_size,
                content_type=content_type,
            )
        return _blob_info(blob)

    def get(self, bucket: str, name: str) -> bytes:
        try:
            return bytes(self._client.bucket(bucket).blob(name).download_as_bytes())
        except gexc.NotFound as exc:
            raise NotFound(f"{bucket}/{name}") from exc

    def stat(self, bucket: str, name: str) -> BlobInfo:
        blob = self._client.bucket(bucket).get_blob(name)
        if blob is None:
            raise NotFound(f"{bucket}/{name}")
        return _blob_info(blob)

    def list(self, bucket: str, prefix: str = "") -> Iterator[BlobInfo]:
        for blob in self._client.list_blobs(bucket, prefix=prefix or None):
            yield _blob_info(blob)


PUBLISH_TIMEOUT_SECONDS = 60


class PubSubPublisher:
    def __init__(self, project: str) -> None:
        self._project = project
        self._client = pubsub_v1.PublisherClient()

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str] | None = None) -> str:
        future = self._client.publish(
            self._client.topic_path(self._project, topic), data, **dict(attributes or {})
        )
        try:
            return str(future.result(timeout=PUBLISH_TIMEOUT_SECONDS))
        except TimeoutError as exc:
            raise BackendUnavailable(
                f"Pub/Sub did not accept a message to {topic} within {PUBLISH_TIMEOUT_SECONDS} s"
            ) from exc


class PubSubHeldMessages:
    """Pulls what a subscription holds (see :class:`~framesift.ports.HeldMessages`)."""

    def __init__(self, project: str) -> None:
        self._project = project
        self._client = pubsub_v1.SubscriberClient()

    def pull(self, subscription: str, limit: int) -> list[HeldMessage]:
        path = self._client.subscription_path(self._project, subscription)
        try:
            response = self._client.pull(
                subscription=path, max_messages=limit, timeout=PUBLISH_TIMEOUT_SECONDS
            )
        except gexc.DeadlineExceeded:
            return []  # nothing held: a pull waits for messages until its deadline
        return [
            HeldMessage(m.message.data, dict(m.message.attributes), m.ack_id)
            for m in response.received_messages
        ]

    def take(self, subscription: str, messages: Sequence[HeldMessage]) -> None:
        if messages:
            self._client.acknowledge(
                subscription=self._client.subscription_path(self._project, subscription),
                ack_ids=[m.ack_id for m in messages],
            )


class FirestoreDocumentStore:
    def __init__(self, project: str) -> None:
        self._client = firestore.Client(project=project)

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        snapshot = self._client.collection(collection).document(doc_id).get()
        return snapshot.to_dict() if snapshot.exists else None

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> bool:
        try:
            self._client.collection(collection).document(doc_id).create(stamped(data))
        except gexc.AlreadyExists:
            return False
        return True

    def merge(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        self._client.collection(collection).document(doc_id).set(stamped(data), merge=True)

    def transact(self, keys: Sequence[DocKey], change: Change[T]) -> T:
        client = self._client

        def read(wanted: Sequence[DocKey], transaction: firestore.Transaction) -> dict:
            refs = [client.collection(c).document(d) for c, d in wanted]
            snapshots = {
                (s.reference.parent.id, s.reference.id): s
                for s in client.get_all(refs, transaction=transaction)
            }
            return {
                key: (snap.to_dict() if (snap := snapshots.get(key)) and snap.exists else None)
                for key in wanted
            }

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> T:
            docs = read(keys, transaction)
            # Firestore allows reads after reads until the first write.
            writes, result = run_change(change, docs, lambda more: read(more, transaction))
            for (collection, doc_id), data in writes.items():
                transaction.set(
                    client.collection(collection).document(doc_id), stamped(data), merge=True
                )
            return result

        try:
            return run(client.transaction(max_attempts=20))
        except ValueError as exc:
            # A transaction that cannot begin (Firestore unreachable) is rolled back by the
            # client, which then raises "no transaction ID" over the real error: raise that one.
            cause = exc.__context__
            if isinstance(cause, gexc.GoogleAPICallError | gexc.RetryError):
                raise BackendUnavailable(f"Firestore transaction failed: {cause}") from cause
            raise

    def changed_since(self, collection: str, since: datetime | None) -> Iterator[dict[str, Any]]:
        query: Any = self._client.collection(collection)
        if since is not None:
            query = query.where(filter=firestore.FieldFilter(UPDATED_AT, ">=", since))
        for snapshot in query.order_by(UPDATED_AT).stream():
            yield {**(snapshot.to_dict() or {}), "_id": snapshot.id}

    def where(self, collection: str, field: str, value: Any) -> list[dict[str, Any]]:
        query = self._client.collection(collection).where(
            filter=firestore.FieldFilter(field, "==", value)
        )
        docs = [doc.to_dict() or {} for doc in query.stream()]
        return sorted(docs, key=lambda doc: str(doc.get("id", "")))


def _bigquery_field(column: Column) -> bigquery.SchemaField:
    return bigquery.SchemaField(
        column.name,
        column.type,
        mode="REQUIRED" if column.required else "NULLABLE",
        description=column.description or None,  # type: ignore[arg-type]
    )


class BigQueryWarehouse:
    def __init__(
        self, project: str, dataset: str, location: str = "US", endpoint: str | None = None
    ) -> None:
        if endpoint:
            self._client = bigquery.Client(
                project=project,
                credentials=AnonymousCredentials(),
                client_options=ClientOptions(api_endpoint=endpoint),
            )
        else:
            self._client = bigquery.Client(project=project)
        self._project = project
        self.dataset = dataset
        self._location = location

    def _table_id(self, name: str) -> str:
        return f"{self._project}.{self.dataset}.{name}"

    def create_dataset(self) -> None:
        """Create the dataset if missing: what the infra does when deployed, for the dev stack
        and the tests. Never called by a function: creating a dataset needs
        ``bigquery.datasets.create`` even when it exists, which the exporter's account (data
        editor on its dataset) does not hold."""
        dataset = bigquery.Dataset(f"{self._project}.{self.dataset}")
        dataset.location = self._location
        self._client.create_dataset(dataset, exists_ok=True)

    def ensure_tables(self, schemas: Sequence[TableSchema]) -> None:
        for schema in schemas:
            table = bigquery.Table(
                self._table_id(schema.name), schema=[_bigquery_field(c) for c in schema.columns]
            )
            if schema.partition_by:
                table.time_partitioning = bigquery.TimePartitioning(
                    type_=bigquery.TimePartitioningType.DAY, field=schema.partition_by
                )
            if schema.cluster_by:
                table.clustering_fields = list(schema.cluster_by)
            self._client.create_table(table, exists_ok=True)

    def upsert(self, schema: TableSchema, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        staging_id = self._table_id(f"_staging_{schema.name}_{uuid.uuid4().hex[:12]}")
        fields = [_bigquery_field(c) for c in schema.columns]
        load = self._client.load_table_from_json(
            [{c.name: _jsonable(row.get(c.name)) for c in schema.columns} for row in rows],
            staging_id,
            job_config=bigquery.LoadJobConfig(
                schema=fields, write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE
            ),
        )
        load.result()
        names = [c.name for c in schema.columns]
        try:
            self._client.query(
                f"""
                MERGE `{self._table_id(schema.name)}` AS t
                USING (SELECT * FROM `{staging_id}`
                       QUALIFY ROW_NUMBER() OVER (PARTITION BY `{schema.key}`
                                                  ORDER BY updated_at DESC) = 1) AS s
                ON t.`{schema.key}` = s.`{schema.key}`
                WHEN MATCHED AND s.updated_at > t.updated_at THEN UPDATE SET
                    {", ".join(f"`{n}` = s.`{n}`" for n in names)}
                WHEN NOT MATCHED THEN INSERT ({", ".join(f"`{n}`" for n in names)})
                    VALUES ({", ".join(f"s.`{n}`" for n in names)})
                """
            ).result()
        finally:
            self._client.delete_table(staging_id, not_found_ok=True)

    def ensure_views(self, views: Mapping[str, str]) -> None:
        for name, sql in views.items():
            view = bigquery.Table(self._table_id(name))
            view.view_query = sql.replace("{dataset}", f"`{self._project}.{self.dataset}`")
            try:
                existing = self._client.get_table(view.reference)
            except gexc.NotFound:
                self._client.create_table(view, exists_ok=True)
                continue
            if existing.view_query != view.view_query:
                existing.view_query = view.view_query
                self._client.update_table(existing, ["view_query"])

    def query(self, sql: str) -> list[dict[str, Any]]:
        job = self._client.query(sql.replace("{dataset}", f"`{self._project}.{self.dataset}`"))
        return [dict(row.items()) for row in job.result()]


def _jsonable(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value

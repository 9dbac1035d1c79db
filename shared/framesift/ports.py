"""The small interfaces the stages talk to. Each has one adapter per backend (gcp, embedded)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
DocKey = tuple[str, str]  # (collection, document id)
# Given the documents read (None where absent), the writes to make (merged into each document,
# created if absent) and the result to return.
Change = Callable[[dict[DocKey, dict[str, Any] | None]], tuple[dict[DocKey, dict[str, Any]], T]]


class NotFound(LookupError):
    """The blob or document does not exist."""


@dataclass(frozen=True)
class BlobInfo:
    bucket: str
    name: str
    generation: int
    size: int
    content_type: str | None
    metadata: Mapping[str, str]


class BlobStore(Protocol):
    def stream_url(self, bucket: str, name: str) -> str:
        """A URL or path ffmpeg can read the object from without it being copied first."""
        ...

    def put(
        self,
        bucket: str,
        name: str,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
    ) -> BlobInfo: ...

    def get(self, bucket: str, name: str) -> bytes: ...

    def stat(self, bucket: str, name: str) -> BlobInfo:
        """Raises NotFound."""
        ...

    def list(self, bucket: str, prefix: str = "") -> Iterator[BlobInfo]: ...


class Publisher(Protocol):
    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str] | None = None) -> str:
        """Publish and wait until the backend accepted it; returns the message id."""
        ...


class DocumentStore(Protocol):
    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None: ...

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> bool:
        """Create the document if absent. True if this call created it, False if it existed."""
        ...

    def merge(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        """Upsert: set the given top-level fields, keep the others."""
        ...

    def where(self, collection: str, field: str, value: Any) -> list[dict[str, Any]]:
        """All documents whose top-level ``field`` equals ``value``."""
        ...

    def transact(self, keys: Sequence[DocKey], change: Change[T]) -> T:
        """Read ``keys``, apply ``change`` and write its result as one serializable transaction.

        Two transactions that read a common document never both commit on stale reads: one
        is retried (Firestore) or waits (SQLite), so ``change`` may run more than once.
        """
        ...


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # BigQuery standard SQL type: STRING, INT64, FLOAT64, BOOL, TIMESTAMP
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class TableSchema:
    name: str
    columns: Sequence[Column]
    key: str = "id"
    partition_by: str | None = None  # a TIMESTAMP column, partitioned by day
    cluster_by: Sequence[str] = ()


class Warehouse(Protocol):
    def ensure_tables(self, schemas: Sequence[TableSchema]) -> None:
        """Create the dataset and tables if missing (idempotent)."""
        ...

    def upsert(self, schema: TableSchema, rows: Sequence[Mapping[str, Any]]) -> None:
        """Stage the rows, then MERGE them in by key, keeping the row with the newest updated_at."""
        ...

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run SQL in which ``{dataset}`` stands for the warehouse's dataset."""
        ...

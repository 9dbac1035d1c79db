"""In-memory fakes of every port in :mod:`framesift.ports`, for stage tests in the unit layer:
plain dicts and lists behind a lock, no disk, no server, no ffmpeg.

They keep the promises the adapters keep (tests/integration/test_adapters.py runs the same
contract over them as over SQLite, DuckDB, the folder and the emulators): the document store
stamps every write with ``updated_at``, creates only if absent, merges top-level fields and runs
a transaction under one lock (serializable); the warehouse keeps the newest row per key; the
blob store's generations grow with every write. Values come back as a real store returns them:
copies, enums as their values, tuples as lists; a value no store holds is refused as SQLite
refuses it, a document Firestore refuses (over 1 MiB, a reserved name) as it does. Tests read
:attr:`RecordingPublisher.published`, :attr:`RecordingVendor.requests`, the warehouse's tables.
"""

from __future__ import annotations

import itertools
import mimetypes
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

# The embedded warehouse's column types, so a query here sees the values DuckDB's tables hold.
from framesift.adapters.embedded.duckdb import _DUCKDB_TYPES as DUCKDB_TYPES
from framesift.detection import Detection
from framesift.errors import BackendUnavailable, NotFound, ObjectGone, PreconditionFailed
from framesift.ports import (
    UPDATED_AT,
    BlobInfo,
    Change,
    DocKey,
    HeldMessage,
    LabelingRequest,
    LabelingTask,
    T,
    TableSchema,
    run_change,
    stamped,
)
from tests.support.firestore_rules import refuse_what_firestore_would

# The scheme of the fake blob store's URLs: nothing outside the test process can read them.
MEMORY_URL = "memory://"


class InMemoryBlobStore:
    """Buckets as a dict; each write gets a new, larger generation."""

    def __init__(self) -> None:
        self._objects: dict[tuple[str, str], tuple[bytes, BlobInfo]] = {}
        self._generations = itertools.count(1)
        self._lock = threading.Lock()

    def stream_url(
        self,
        bucket: str,
        name: str,
        lifetime: timedelta | None = None,
        generation: int | None = None,
    ) -> str:
        if generation is not None:
            with self._lock:
                stored = self._objects.get((bucket, name))
            if stored is None or stored[1].generation != generation:
                raise ObjectGone(bucket, name, generation)
        return f"{MEMORY_URL}{bucket}/{name}"

    def put(
        self,
        bucket: str,
        name: str,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        if_generation_match: int | None = None,
    ) -> BlobInfo:
        with self._lock:  # the generation check and the write are one step
            if if_generation_match is not None:
                stored = self._objects.get((bucket, name))
                current = stored[1].generation if stored else 0
                if current != if_generation_match:
                    raise PreconditionFailed(f"{bucket}/{name} changed")
            info = BlobInfo(
                bucket, name, next(self._generations), len(data), content_type, dict(metadata or {})
            )
            self._objects[(bucket, name)] = (bytes(data), info)
        return info

    def put_file(
        self,
        bucket: str,
        name: str,
        source: Path,
        metadata: Mapping[str, str],
        progress: Callable[[int], None] | None = None,
    ) -> BlobInfo:
        data = source.read_bytes()
        if progress is not None:
            progress(len(data))
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return self.put(bucket, name, data, content_type, metadata)

    def get(self, bucket: str, name: str) -> bytes:
        return self._stored(bucket, name)[0]

    def stat(self, bucket: str, name: str) -> BlobInfo:
        return self._stored(bucket, name)[1]

    def _stored(self, bucket: str, name: str) -> tuple[bytes, BlobInfo]:
        with self._lock:
            stored = self._objects.get((bucket, name))
        if stored is None:
            raise NotFound(f"{bucket}/{name}")
        return stored

    def list(self, bucket: str, prefix: str = "") -> Iterator[BlobInfo]:
        with self._lock:
            infos = [
                info
                for (in_bucket, name), (_, info) in self._objects.items()
                if in_bucket == bucket and name.startswith(prefix)
            ]
        yield from sorted(infos, key=lambda info: info.name)


@dataclass(frozen=True)
class Published:
    data: bytes
    attributes: Mapping[str, str]
    message_id: str


class RecordingPublisher:
    """Accepts every message and records it under its topic, in order."""

    def __init__(self) -> None:
        self.published: dict[str, list[Published]] = defaultdict(list)
        self._lock = threading.Lock()

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str] | None = None) -> str:
        message = Published(bytes(data), dict(attributes or {}), uuid.uuid4().hex)
        with self._lock:
            self.published[topic].append(message)
        return message.message_id


class InMemoryHeldMessages:
    """Pull subscriptions holding what :meth:`hold` put there until it is taken. Pub/Sub's ack
    deadline is not modelled: a message pulled and not taken is pulled again."""

    def __init__(self) -> None:
        self._held: dict[str, list[HeldMessage]] = defaultdict(list)
        self._lock = threading.Lock()

    def hold(self, subscription: str, data: bytes, attributes: Mapping[str, str]) -> None:
        with self._lock:
            self._held[subscription].append(HeldMessage(data, dict(attributes), uuid.uuid4().hex))

    def pull(self, subscription: str, limit: int) -> list[HeldMessage]:
        with self._lock:
            return list(self._held[subscription][:limit])

    def take(self, subscription: str, messages: Sequence[HeldMessage]) -> None:
        taken = {message.ack_id for message in messages}
        with self._lock:
            self._held[subscription] = [
                message for message in self._held[subscription] if message.ack_id not in taken
            ]


def _storable(value: Any) -> Any:
    """A fresh copy of ``value`` as a document store gives it back (Firestore's value types:
    an enum as its value, a tuple as a list); anything else is refused, as SQLite refuses it."""
    if isinstance(value, Enum):
        return _storable(value.value)
    if value is None or isinstance(value, bool | int | float | str | bytes | datetime):
        return value
    if isinstance(value, Mapping):
        return {str(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(item) for item in value]
    raise TypeError(f"cannot store {type(value).__name__} in a document")


class InMemoryDocumentStore:
    """Collections of documents in dicts. One lock serialises every write and transaction (as
    SQLite's ``BEGIN IMMEDIATE`` does), so a transaction never commits on stale reads."""

    def __init__(self) -> None:
        self._collections: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self._lock = threading.RLock()

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        with self._lock:
            doc = self._collections[collection].get(doc_id)
            return None if doc is None else _storable(doc)

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            stored = self._collections[collection]
            return {doc_id: _storable(stored[doc_id]) for doc_id in doc_ids if doc_id in stored}

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> bool:
        with self._lock:
            if doc_id in self._collections[collection]:
                return False
            self._apply({(collection, doc_id): data})
            return True

    def merge(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        with self._lock:
            self._apply({(collection, doc_id): data})

    def _apply(self, writes: Mapping[DocKey, Mapping[str, Any]]) -> None:
        """Merge all the writes, or none if Firestore would refuse one."""
        merged = {
            (c, i): {**self._collections[c].get(i, {}), **_storable(stamped(data))}
            for (c, i), data in writes.items()
        }
        for key, doc in merged.items():
            refuse_what_firestore_would(key, doc)
        for (collection, doc_id), doc in merged.items():
            self._collections[collection][doc_id] = doc

    def where(self, collection: str, field: str, value: Any) -> list[dict[str, Any]]:
        """By id; ``None`` also finds documents without the field (as SQLite's ``IS NULL``)."""
        wanted = _storable(value)
        with self._lock:
            stored = self._collections[collection]
            return [
                _storable(stored[doc_id])
                for doc_id in sorted(stored)
                if stored[doc_id].get(field) == wanted
            ]

    def changed_since(self, collection: str, since: datetime | None) -> Iterator[dict[str, Any]]:
        with self._lock:
            found = [
                {**_storable(doc), "_id": doc_id}
                for doc_id, doc in self._collections[collection].items()
                if since is None or (doc.get(UPDATED_AT) is not None and doc[UPDATED_AT] >= since)
            ]
        found.sort(key=lambda doc: (doc[UPDATED_AT], doc["_id"]))  # every write is stamped
        yield from found

    def transact(self, keys: Sequence[DocKey], change: Change[T]) -> T:
        with self._lock:
            docs = {key: self.get(*key) for key in keys}
            writes, result = run_change(
                change, docs, lambda more: {key: self.get(*key) for key in more}
            )
            self._apply(writes)
            return result


class FlakyDocumentStore(InMemoryDocumentStore):
    """A document store whose transactions fail while ``down``, as Firestore's in an outage."""

    down = False

    def transact(self, keys: Sequence[DocKey], change: Change[T]) -> T:
        if self.down:
            raise BackendUnavailable("Firestore transaction failed: 503 unavailable")
        return super().transact(keys, change)


class InMemoryWarehouse:
    """Tables as dicts of rows by key, with the adapters' MERGE (the newest ``updated_at`` per
    key wins, an equal one changes nothing). :meth:`query` runs its SQL, and the views', in
    DuckDB in memory over a copy of the tables, with the embedded warehouse's column types: no
    fake can interpret SQL honestly."""

    def __init__(self, dataset: str = "framesift") -> None:
        self.dataset = dataset
        self.schemas: dict[str, TableSchema] = {}
        self.tables: dict[str, dict[Any, dict[str, Any]]] = {}
        self.views: dict[str, str] = {}
        self._lock = threading.Lock()

    def ensure_tables(self, schemas: Sequence[TableSchema]) -> None:
        with self._lock:
            for schema in schemas:
                self.schemas[schema.name] = schema
                self.tables.setdefault(schema.name, {})

    def upsert(self, schema: TableSchema, rows: Sequence[Mapping[str, Any]]) -> None:
        names = [column.name for column in schema.columns]
        with self._lock:
            table = self.tables[schema.name]  # a KeyError, as a missing table fails a MERGE
            for given in rows:
                row = {name: given.get(name) for name in names}
                missing = [c.name for c in schema.columns if c.required and row[c.name] is None]
                if missing:
                    raise ValueError(f"{schema.name}: required columns missing: {missing}")
                current = table.get(row[schema.key])
                if current is None or _newer(row, current):
                    table[row[schema.key]] = row

    def ensure_views(self, views: Mapping[str, str]) -> None:
        with self._lock:
            self.views.update(views)

    def query(self, sql: str) -> list[dict[str, Any]]:
        with self._lock, duckdb.connect(":memory:") as db:
            db.execute("SET TimeZone = 'UTC'")
            db.execute(f'CREATE SCHEMA "{self.dataset}"')
            for name, schema in self.schemas.items():
                target = f'"{self.dataset}"."{name}"'
                columns = ", ".join(f'"{c.name}" {DUCKDB_TYPES[c.type]}' for c in schema.columns)
                db.execute(f"CREATE TABLE {target} ({columns})")
                rows = [list(row.values()) for row in self.tables[name].values()]
                if rows:
                    marks = ", ".join("?" * len(schema.columns))
                    db.executemany(f"INSERT INTO {target} VALUES ({marks})", rows)
            for name, body in self.views.items():
                db.execute(
                    f'CREATE VIEW "{self.dataset}"."{name}" AS '
                    + body.replace("{dataset}", f'"{self.dataset}"')
                )
            cursor = db.execute(sql.replace("{dataset}", f'"{self.dataset}"'))
            names = [d[0] for d in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def rows(self, table: str) -> list[dict[str, Any]]:
        """The table's rows, by key."""
        with self._lock:
            return [dict(self.tables[table][key]) for key in sorted(self.tables[table])]


def _newer(row: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    new, old = row.get(UPDATED_AT), current.get(UPDATED_AT)
    return new is not None and old is not None and new > old


@dataclass
class RecordingVendor:
    """A labeling vendor that creates one task per frame id, once (``task-{frame id}``), and
    records every request; :meth:`fail_next` makes the next requests raise instead."""

    name: str = "fake-vendor"
    requests: list[tuple[str, list[LabelingRequest]]] = field(default_factory=list)
    tasks: dict[str, LabelingTask] = field(default_factory=dict)
    _failures: list[Exception] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, *errors: Exception) -> None:
        with self._lock:
            self._failures.extend(errors)

    def request(self, batch_id: str, frames: Sequence[LabelingRequest]) -> list[LabelingTask]:
        with self._lock:
            self.requests.append((batch_id, list(frames)))
            if self._failures:
                raise self._failures.pop(0)
            for frame in frames:
                self.tasks.setdefault(
                    frame.frame_id, LabelingTask(frame.frame_id, f"task-{frame.frame_id}")
                )
            return [self.tasks[frame.frame_id] for frame in frames]


@dataclass
class FixedDetector:
    """A detector that finds the same boxes on every image, and counts the images it saw."""

    detections: Sequence[Detection]
    classes: Sequence[str] = ("car", "person")
    version: str = "fixed-detector-1"
    seen: int = 0

    def detect(self, image: bytes) -> list[Detection]:
        self.seen += 1
        return list(self.detections)


if TYPE_CHECKING:  # mypy checks that each fake is its port (run it on this file)
    from framesift.ports import (
        BlobStore,
        Detector,
        DocumentStore,
        HeldMessages,
        LabelingVendor,
        Publisher,
        Warehouse,
    )

    _blobs: BlobStore = InMemoryBlobStore()
    _publisher: Publisher = RecordingPublisher()
    _held: HeldMessages = InMemoryHeldMessages()
    _documents: DocumentStore = InMemoryDocumentStore()
    _warehouse: Warehouse = InMemoryWarehouse()
    _vendor: LabelingVendor = RecordingVendor()
    _detector: Detector = FixedDetector(())

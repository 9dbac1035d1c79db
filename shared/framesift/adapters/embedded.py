"""Embedded adapters: the whole pipeline on one machine with no cloud account and no Java.

Buckets are folders, documents live in SQLite, the warehouse is a DuckDB file and Pub/Sub is an
in-process queue that delivers at least once, like the real thing: a handler that raises is
retried, and after ``max_attempts`` the message goes to a dead-letter list.
"""

from __future__ import annotations

import base64
import json
import math
import mimetypes
import random
import sqlite3
import tempfile
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from framesift.errors import NotFound, ObjectGone, PreconditionFailed
from framesift.logs import get_logger
from framesift.ports import BlobInfo, Change, DocKey, T, TableSchema, run_change, stamped

log = get_logger(__name__)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        # One fixed width, so ISO strings compare in time order (changed_since).
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, bytes):  # Firestore's bytes type, which JSON lacks
        return {_BYTES: base64.b64encode(value).decode()}
    raise TypeError(f"cannot store {type(value).__name__} in a document")


_BYTES = "$bytes"
# A number that is not finite, which Firestore stores as a double and JSON cannot hold (written
# as NaN, it makes every SQLite JSON function fail on the collection: "malformed JSON").
_FLOAT = "$float"
# Ids per SQL statement in a batched read (well under SQLite's limit on parameters).
_BATCH = 500


def _tagged_hook(obj: dict[str, Any]) -> Any:
    if obj.keys() == {_BYTES}:
        return base64.b64decode(obj[_BYTES])
    if obj.keys() == {_FLOAT}:
        return float(obj[_FLOAT])
    return obj


def _load_document(text: str) -> dict[str, Any]:
    return json.loads(text, object_hook=_tagged_hook)


def _strict(value: Any) -> Any:
    """The value with every non-finite float tagged, so the document is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return {_FLOAT: repr(value)}
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(item) for item in value]
    return value


def _dump_document(data: Mapping[str, Any]) -> str:
    return json.dumps(_strict(stamped(data)), default=_json_default, allow_nan=False)


class FolderBlobStore:
    """``<root>/<bucket>/<object name>``; content type, metadata and generation in a sidecar."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._lock = threading.Lock()

    def _path(self, bucket: str, name: str) -> Path:
        bucket_dir = (self.root / bucket).resolve()
        path = (bucket_dir / name).resolve()
        # Object names are untrusted: "../x" must never leave the bucket's folder.
        if not name or bucket_dir not in path.parents:
            raise ValueError(f"object name {name!r} is not a valid name in bucket {bucket!r}")
        return path

    def _sidecar(self, bucket: str, name: str) -> Path:
        return self._path(f".meta/{bucket}", f"{name}.json")

    def stream_url(
        self,
        bucket: str,
        name: str,
        lifetime: timedelta | None = None,
        generation: int | None = None,
    ) -> str:
        if generation is not None:
            try:
                live: int | None = self.stat(bucket, name).generation
            except NotFound:
                live = None
            if live != generation:
                raise ObjectGone(bucket, name, generation)
        return str(self._path(bucket, name))

    def put(
        self,
        bucket: str,
        name: str,
        data: bytes,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        if_generation_match: int | None = None,
    ) -> BlobInfo:
        path = self._path(bucket, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:  # makes the generation check and the write one step
            if if_generation_match is not None:
                try:
                    current = self.stat(bucket, name).generation
                except NotFound:
                    current = 0
                if current != if_generation_match:
                    raise PreconditionFailed(f"{bucket}/{name} changed")
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
            tmp.write_bytes(data)
            tmp.replace(path)  # readers never see half an object
            info = BlobInfo(
                bucket, name, time.time_ns(), len(data), content_type, dict(metadata or {})
            )
            self._write_sidecar(info)
        return info

    def put_file(
        self,
        bucket: str,
        name: str,
        source: Path,
        metadata: Mapping[str, str],
        progress: Callable[[int], None] | None = None,
    ) -> BlobInfo:
        """Upload a local file by streaming copy (videos can be larger than memory)."""
        path = self._path(bucket, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        sent = 0
        with source.open("rb") as src, tmp.open("wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
                sent += len(chunk)
                if progress is not None:
                    progress(sent)
        tmp.replace(path)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        info = BlobInfo(bucket, name, time.time_ns(), path.stat().st_size, content_type, metadata)
        self._write_sidecar(info)
        return info

    def _write_sidecar(self, info: BlobInfo) -> None:
        sidecar = self._sidecar(info.bucket, info.name)
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        sidecar.write_text(
            json.dumps(
                {
                    "generation": info.generation,
                    "content_type": info.content_type,
                    "metadata": dict(info.metadata),
                }
            )
        )

    def get(self, bucket: str, name: str) -> bytes:
        try:
            return self._path(bucket, name).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"{bucket}/{name}") from exc

    def stat(self, bucket: str, name: str) -> BlobInfo:
        path = self._path(bucket, name)
        try:
            size = path.stat().st_size
            side = json.loads(self._sidecar(bucket, name).read_text())
        except FileNotFoundError as exc:
            raise NotFound(f"{bucket}/{name}") from exc
        return BlobInfo(
            bucket, name, side["generation"], size, side["content_type"], side["metadata"]
        )

    def list(self, bucket: str, prefix: str = "") -> Iterator[BlobInfo]:
        bucket_dir = self.root / bucket
        if not bucket_dir.is_dir():
            return
        for path in sorted(bucket_dir.rglob("*")):
            name = path.relative_to(bucket_dir).as_posix()
            if path.is_file() and not path.name.startswith(".") and name.startswith(prefix):
                yield self.stat(bucket, name)


MessageHandler = Callable[[bytes, Mapping[str, str], str], None]


@dataclass
class _Message:
    topic: str
    data: bytes
    attributes: dict[str, str]
    message_id: str
    attempts: int = 0


@dataclass
class InProcessPublisher:
    """Pub/Sub stand-in: FIFO delivery to subscribed handlers when ``drain()`` runs."""

    max_attempts: int = 5
    # The reliability tests' knobs: deliver every message this many times, in random order.
    copies: int = 1
    shuffle: random.Random | None = None
    _subscribers: dict[str, list[MessageHandler]] = field(default_factory=lambda: defaultdict(list))
    _queue: deque[tuple[_Message, MessageHandler]] = field(default_factory=deque)
    # Every message published, by topic, in order (what a topic's audit subscription would see).
    published: dict[str, list[_Message]] = field(default_factory=lambda: defaultdict(list))
    # Messages to topics nobody subscribes to yet, kept so nothing is silently lost.
    retained: dict[str, list[_Message]] = field(default_factory=lambda: defaultdict(list))
    dead_letters: list[tuple[_Message, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def subscribe(self, topic: str, handler: MessageHandler) -> None:
        self._subscribers[topic].append(handler)

    def unsubscribe_all(self, topic: str) -> None:
        """Detach the topic's handlers: later messages are retained (a stage that is down)."""
        self._subscribers.pop(topic, None)

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str] | None = None) -> str:
        message = _Message(topic, data, dict(attributes or {}), uuid.uuid4().hex)
        with self._lock:
            self.published[topic].append(message)
            handlers = self._subscribers.get(topic)
            if not handlers:
                self.retained[topic].append(message)
            for handler in handlers or ():
                for _ in range(self.copies):  # redeliveries keep the message id, as Pub/Sub's
                    self._queue.append((replace(message), handler))
        return message.message_id

    def drain(self) -> int:
        """Deliver until the queue is empty; returns the number of successful deliveries."""
        delivered = 0
        while True:
            with self._lock:
                if not self._queue:
                    return delivered
                if self.shuffle is not None:  # any order, as Pub/Sub without ordering keys
                    self._queue.rotate(-self.shuffle.randrange(len(self._queue)))
                message, handler = self._queue.popleft()
            message.attempts += 1
            try:
                handler(message.data, message.attributes, message.message_id)
                delivered += 1
            except Exception as exc:
                if message.attempts >= self.max_attempts:
                    log.error(
                        "message dead-lettered after %d attempts",
                        message.attempts,
                        extra={"fields": {"topic": message.topic, "error": str(exc)}},
                    )
                    self.dead_letters.append((message, repr(exc)))
                else:
                    log.warning(
                        "delivery failed, will retry",
                        extra={"fields": {"topic": message.topic, "error": str(exc)}},
                    )
                    with self._lock:
                        self._queue.append((message, handler))


class SqliteDocumentStore:
    """Documents as JSON in one SQLite table; writes are serialised by SQLite's own locking."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS documents ("
                " collection TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,"
                " PRIMARY KEY (collection, id))"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, timeout=30, isolation_level=None)

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT data FROM documents WHERE collection = ? AND id = ?", (collection, doc_id)
            ).fetchone()
        return _load_document(row[0]) if row else None

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        unique = sorted(set(doc_ids))
        with self._connect() as db:
            for start in range(0, len(unique), _BATCH):
                chunk = unique[start : start + _BATCH]
                rows = db.execute(
                    "SELECT id, data FROM documents WHERE collection = ? AND id IN"
                    f" ({', '.join('?' * len(chunk))})",
                    (collection, *chunk),
                ).fetchall()
                found.update({doc_id: _load_document(data) for doc_id, data in rows})
        return found

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> bool:
        with self._connect() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO documents (collection, id, data) VALUES (?, ?, ?)",
                (collection, doc_id, _dump_document(data)),
            )
            return cursor.rowcount == 1

    def merge(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        self.transact([(collection, doc_id)], lambda _: ({(collection, doc_id): dict(data)}, None))

    def transact(self, keys: Sequence[DocKey], change: Change[T]) -> T:
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")  # one writer at a time: reads cannot go stale
            docs = {key: self._read(db, key) for key in keys}
            writes, result = run_change(
                change, docs, lambda more: {key: self._read(db, key) for key in more}
            )
            for key, data in writes.items():
                current = docs[key] if key in docs else self._read(db, key)
                db.execute(
                    "INSERT OR REPLACE INTO documents (collection, id, data) VALUES (?, ?, ?)",
                    (
                        *key,
                        _dump_document({**(current or {}), **data}),
                    ),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            db.close()
        return result

    @staticmethod
    def _read(db: sqlite3.Connection, key: DocKey) -> dict[str, Any] | None:
        row = db.execute(
            "SELECT data FROM documents WHERE collection = ? AND id = ?", key
        ).fetchone()
        return _load_document(row[0]) if row else None

    def changed_since(self, collection: str, since: datetime | None) -> Iterator[dict[str, Any]]:
        bound = _json_default(since) if since is not None else ""
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, data FROM documents WHERE collection = ?"
                " AND coalesce(json_extract(data, '$.updated_at'), '') >= ?"
                " ORDER BY json_extract(data, '$.updated_at'), id",
                (collection, bound),
            ).fetchall()
        for doc_id, data in rows:
            yield {**_load_document(data), "_id": doc_id}

    def where(self, collection: str, field: str, value: Any) -> list[dict[str, Any]]:
        # "= NULL" matches nothing in SQL; a null field is found with IS NULL.
        test = "IS NULL" if value is None else "= ?"
        with self._connect() as db:
            rows = db.execute(
                "SELECT data FROM documents WHERE collection = ? AND json_extract(data, ?) "
                f"{test} ORDER BY id",
                (collection, f"$.{field}", *(() if value is None else (value,))),
            ).fetchall()
        return [_load_document(row[0]) for row in rows]


_DUCKDB_TYPES = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "BOOL": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMPTZ",
    "JSON": "JSON",
}


class DuckDbWarehouse:
    """The warehouse as a DuckDB file, with the BigQuery tables' names, columns and MERGE."""

    def __init__(self, path: Path, dataset: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self.dataset = dataset

    def _connect(self) -> duckdb.DuckDBPyConnection:
        connection = duckdb.connect(str(self._path))
        # Set after connecting: duckdb 2.0 rejects TimeZone in the connect config without icu.
        connection.execute("SET TimeZone = 'UTC'")
        return connection

    def ensure_tables(self, schemas: Sequence[TableSchema]) -> None:
        with self._connect() as db:
            db.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.dataset}"')
            for schema in schemas:
                columns = ", ".join(
                    f'"{c.name}" {_DUCKDB_TYPES[c.type]}{" NOT NULL" if c.required else ""}'
                    for c in schema.columns
                )
                db.execute(
                    f'CREATE TABLE IF NOT EXISTS "{self.dataset}"."{schema.name}" ({columns})'
                )
                # A table made by an older version lacks the columns added since.
                for column in schema.columns:
                    if not column.required:
                        db.execute(
                            f'ALTER TABLE "{self.dataset}"."{schema.name}" ADD COLUMN IF NOT'
                            f' EXISTS "{column.name}" {_DUCKDB_TYPES[column.type]}'
                        )

    def upsert(self, schema: TableSchema, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        names = [c.name for c in schema.columns]
        quoted = ", ".join(f'"{n}"' for n in names)
        target = f'"{self.dataset}"."{schema.name}"'
        source_values = ", ".join(f's."{n}"' for n in names)
        columns = ", ".join(f"'{c.name}': '{_DUCKDB_TYPES[c.type]}'" for c in schema.columns)
        with tempfile.TemporaryDirectory() as folder, self._connect() as db:
            # A load job's equivalent: the rows as a JSON Lines file read in one statement
            # (executemany inserts row by row, hundreds of times slower).
            staged = Path(folder) / "rows.jsonl"
            with staged.open("w") as out:
                for row in rows:
                    out.write(json.dumps({n: row.get(n) for n in names}, default=_json_default))
                    out.write("\n")
            db.execute(
                f"CREATE TEMP TABLE staging AS SELECT {quoted} FROM read_json("
                f"'{staged}', format = 'newline_delimited', columns = {{{columns}}})"
            )
            # Several versions of one document in a batch: only the newest is merged.
            db.execute(
                f"""
                MERGE INTO {target} AS t
                USING (SELECT * FROM staging
                       QUALIFY row_number() OVER (PARTITION BY "{schema.key}"
                                                  ORDER BY updated_at DESC) = 1) AS s
                ON t."{schema.key}" = s."{schema.key}"
                WHEN MATCHED AND s.updated_at > t.updated_at THEN UPDATE SET
                    {", ".join(f'"{n}" = s."{n}"' for n in names)}
                WHEN NOT MATCHED THEN INSERT ({quoted}) VALUES ({source_values})
                """
            )

    def ensure_views(self, views: Mapping[str, str]) -> None:
        with self._connect() as db:
            for name, sql in views.items():
                body = sql.replace("{dataset}", f'"{self.dataset}"')
                db.execute(f'CREATE OR REPLACE VIEW "{self.dataset}"."{name}" AS {body}')

    def query(self, sql: str) -> list[dict[str, Any]]:
        with self._connect() as db:
            cursor = db.execute(sql.replace("{dataset}", f'"{self.dataset}"'))
            names = [d[0] for d in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

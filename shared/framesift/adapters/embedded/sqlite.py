"""Documents in SQLite: the embedded document store, with Firestore's value types kept in JSON."""

from __future__ import annotations

import base64
import json
import math
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from framesift.logs import get_logger
from framesift.ports import Change, DocKey, T, run_change, stamped

log = get_logger(__name__)


def json_default(value: Any) -> Any:
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
    return json.dumps(_strict(stamped(data)), default=json_default, allow_nan=False)


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
        bound = json_default(since) if since is not None else ""
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

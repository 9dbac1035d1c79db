"""Firestore through google-cloud-firestore (``FIRESTORE_EMULATOR_HOST`` for the emulator): the
document store, with transactions."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from framesift.errors import BackendUnavailable, DocumentRefused
from framesift.ports import (
    UPDATED_AT,
    Change,
    DocKey,
    T,
    run_change,
    stamped,
)

# Documents per batched read (a transaction's too: a dedup lookup reads hundreds at scale).
_BATCH = 300
# Lock contention (many callbacks about one frame at once) aborts transactions. The client
# retries an aborted commit at once, _COMMIT_ATTEMPTS times, and an abort while reading not at
# all; either way the transaction is begun again here, after a random pause that grows up to
# _CONTENTION_MAX_PAUSE_S, up to _CONTENTION_ATTEMPTS times (about 5 s in all at worst), before
# answering BackendUnavailable (the caller's retry: a vendor's, Pub/Sub's).
_COMMIT_ATTEMPTS = 5
_CONTENTION_ATTEMPTS = 10
_CONTENTION_PAUSE_S = 0.05
_CONTENTION_MAX_PAUSE_S = 1.0


def _contended(exc: Exception) -> bool:
    """An abort, or the client's "failed to commit in N attempts" over one."""
    return isinstance(exc, gexc.Aborted) or isinstance(exc.__cause__, gexc.Aborted)


class FirestoreDocumentStore:
    def __init__(self, project: str) -> None:
        self._client = firestore.Client(project=project)

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        snapshot = self._client.collection(collection).document(doc_id).get()
        return snapshot.to_dict() if snapshot.exists else None

    def get_many(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        refs = [self._client.collection(collection).document(i) for i in sorted(set(doc_ids))]
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(refs), _BATCH):
            for snapshot in self._client.get_all(refs[start : start + _BATCH]):
                if snapshot.exists:
                    found[snapshot.id] = snapshot.to_dict() or {}
        return found

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
                for start in range(0, len(refs), _BATCH)
                for s in client.get_all(refs[start : start + _BATCH], transaction=transaction)
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

        attempt = 0
        while True:
            try:
                return run(client.transaction(max_attempts=_COMMIT_ATTEMPTS))
            except gexc.InvalidArgument as exc:
                if "transaction" in str(exc.message).lower():
                    # "Transaction is invalid or closed": it expired or a commit failed under
                    # it, which a new transaction does not.
                    raise BackendUnavailable(f"Firestore transaction failed: {exc}") from exc
                raise DocumentRefused(f"Firestore refused the write: {exc.message}") from exc
            except (gexc.Aborted, ValueError) as exc:
                if not _contended(exc):
                    # A transaction that cannot begin (Firestore unreachable) is rolled back by
                    # the client, which then raises "no transaction ID" over the real error.
                    cause = exc.__context__
                    if isinstance(cause, gexc.GoogleAPICallError | gexc.RetryError):
                        raise BackendUnavailable(
                            f"Firestore transaction failed: {cause}"
                        ) from cause
                    raise
                attempt += 1
                if attempt == _CONTENTION_ATTEMPTS:
                    raise BackendUnavailable(f"Firestore transaction contended: {exc}") from exc
                pause = min(_CONTENTION_MAX_PAUSE_S, _CONTENTION_PAUSE_S * 2**attempt)
                time.sleep(random.uniform(0, pause))  # noqa: S311

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

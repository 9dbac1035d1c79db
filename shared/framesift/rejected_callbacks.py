"""Authenticated callbacks the webhook could not store, and that no retry of the vendor's would:
kept, body and reason, so an operator sees them and replays them once the cause is fixed.

``rejected_callbacks/{vendor}~{sha256 of the body}``: a vendor retrying the same body (Scale
does, for 24 h, until it gets a 2xx) adds to its ``attempts`` instead of a second record. The
body is kept as it came, in chunks, in parts when over a document (:mod:`framesift.parts`).
``framesift replay-callbacks`` stores each record not replayed yet as the webhook would have,
and marks it replayed, or records why it still cannot be stored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from framesift.annotations import LabelRules, store_all
from framesift.bookkeeping import RejectedCallback
from framesift.documents import utcnow
from framesift.errors import NotYetSent, PermanentError
from framesift.logs import get_logger
from framesift.parts import joined, split, transact
from framesift.ports import DocKey, DocumentStore
from framesift.topology import Collections
from framesift.vendors.registry import VENDORS

log = get_logger(__name__)

REJECTED = Collections.REJECTED_CALLBACKS
_CHUNK_BYTES = 256 * 1024  # a body is kept in chunks this size, so a part holds several


def record(documents: DocumentStore, vendor: str, raw: bytes, reason: str, http_status: int) -> str:
    """Keep a refused callback (once per distinct body); returns its record's id."""
    digest = hashlib.sha256(raw).hexdigest()
    key: DocKey = (REJECTED, f"{vendor}~{digest}")
    now = utcnow()

    def change(docs: dict[DocKey, dict | None]) -> tuple[dict[DocKey, dict], None]:
        stored = docs[key]
        if stored is not None:
            # Refused again (a replay's fix did not hold): to be replayed again.
            again = RejectedCallback.fields(
                attempts=int(stored.get("attempts") or 1) + 1,
                last_received_at=now,
                reason=reason,
                http_status=http_status,
                replayed_at=None,
            )
            return {key: again}, None
        rejected = RejectedCallback(
            id=key[1],
            vendor=vendor,
            reason=reason,
            http_status=http_status,
            body_sha256=digest,
            body_bytes=len(raw),
            body=[raw[i : i + _CHUNK_BYTES] for i in range(0, len(raw), _CHUNK_BYTES)],
            received_at=now,
            last_received_at=now,
        )
        return split(key, rejected.stored(), RejectedCallback.LISTS, None), None

    transact(documents, [key], change)
    log.error(
        "callback rejected and kept to replay",
        extra={"fields": {"rejected_callback": key[1], "reason": reason, "status": http_status}},
    )
    return key[1]


def body_of(documents: DocumentStore, doc: dict[str, Any]) -> bytes:
    """A rejected callback's body as the vendor sent it."""
    return b"".join(joined(documents, REJECTED, doc, RejectedCallback.LISTS)["body"])


@dataclass
class Replayed:
    """What replaying the rejected callbacks did: ids stored, and ids still refused with why."""

    stored: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def replay(documents: DocumentStore, rules: LabelRules) -> Replayed:
    """Store each rejected callback not replayed yet as the webhook would (they were
    authenticated when received); a stored one is marked replayed, a refused one keeps its
    record with the new reason. A backend failure raises: run it again."""
    result = Replayed()
    callbacks = {spec.name: spec.callback for spec in VENDORS.values() if spec.callback}
    for doc in documents.where(REJECTED, "replayed_at", None):
        callback = callbacks[doc["vendor"]]
        try:
            records = callback.records(json.loads(body_of(documents, doc)))
            store_all(documents, records, rules)
        except (PermanentError, NotYetSent, ValueError) as exc:
            # One that cannot be stored yet (its frame's task not recorded) or at all waits with
            # why, and the others are replayed.
            result.refused[doc["id"]] = str(exc)
            documents.merge(REJECTED, doc["id"], RejectedCallback.fields(reason=str(exc)))
            continue
        documents.merge(REJECTED, doc["id"], RejectedCallback.fields(replayed_at=utcnow()))
        result.stored.append(doc["id"])
    return result

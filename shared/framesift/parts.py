"""Documents larger than a Firestore document, stored in parts and read back whole.

A Firestore document holds at most 1 MiB (1,048,576 bytes), counted as
https://firebase.google.com/docs/firestore/storage-size computes it. A callback body may be up
to ``FRAMESIFT_WEBHOOK_MAX_BYTES`` (2 MiB), and each box takes about twice its JSON's size once
stored (fractions and pixels, every field named). The Firestore emulator refuses such a
document too ("maximum entity size is 1048576 bytes"), and SQLite would not: so the rule is
computed here, the same for every store, rather than learned from a refused commit.

A document that fits is written as it is. One that does not keeps its other fields, with its
long lists (named by its writer: an annotation's ``boxes`` and ``model_matches``) empty and
``parts`` listing the ids of the ``document_parts`` holding them, in order. A part's id is
its content's digest (``{collection}~{id}~{sha256}~{n}``), so the parts are written before
the transaction that writes the document (:func:`transact`): a reader never finds a document
without its parts, a repeated write rewrites the same parts, and the commit stays small (one
commit takes 10 MiB at most in production and 4 MiB on the emulator, less than 2 MiB of boxes
become). A version that replaces it blanks the parts it no longer lists; parts written for a
transaction that then failed are listed by no document and never read (a retry writes the same
ids again). An item larger than a document cannot be stored:
:class:`~framesift.errors.DocumentTooLarge`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import Field

from framesift.documents import Document
from framesift.errors import DocumentTooLarge, NotFound, TransientError
from framesift.ports import UPDATED_AT, Change, DocKey, DocumentStore, T
from framesift.topology import Collections

# https://firebase.google.com/docs/firestore/quotas: "Maximum size for a document: 1 MiB
# (1,048,576 bytes)".
MAX_DOCUMENT_BYTES = 1_048_576
# The same page: "Maximum number of writes that can be passed to a Commit operation or performed
# in a transaction: 500".
MAX_COMMIT_WRITES = 500
PARTS = Collections.DOCUMENT_PARTS
LISTED = "parts"  # the field of a split document listing its parts' ids
# Attempts at writing a document whose parts changed under it (a concurrent writer's).
_ATTEMPTS = 3


class DocumentPart(Document):
    """``document_parts/{collection}~{id}~{digest}~{n}``: a run of a large document's lists."""

    collection: str
    doc_id: str
    lists: dict[str, list[Any]] = Field(default_factory=dict)


def value_size(value: Any) -> int:
    """A field value's stored size (storage-size: "Field value size")."""
    kind = type(value)  # the common types first, exactly (a bool is no int here): boxes are many
    if kind is float or kind is int:
        return 8
    if kind is str:
        return len(value.encode()) + 1
    if kind is dict:
        return sum(len(str(key).encode()) + 1 + value_size(item) for key, item in value.items())
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, int | float | dt.datetime):
        return 8
    if isinstance(value, str):
        return len(value.encode()) + 1
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, Mapping):
        return sum(value_size(str(key)) + value_size(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return sum(value_size(item) for item in value)
    return value_size(str(value))  # an enum member is stored as its text


def document_size(collection: str, doc_id: str, data: Mapping[str, Any]) -> int:
    """A document's stored size: its name (its collection and id's string sizes, plus 16), its
    fields as a map, plus 32; with the ``updated_at`` every adapter stamps on it."""
    name = value_size(collection) + value_size(doc_id) + 16
    return name + value_size({**data, UPDATED_AT: dt.datetime.now(dt.UTC)}) + 32


def split(
    key: DocKey, data: dict[str, Any], fields: Sequence[str], stored: dict[str, Any] | None
) -> dict[DocKey, dict[str, Any]]:
    """The writes storing ``data`` under ``key`` (over the ``stored`` version): itself when it
    fits a document, else itself with its ``fields`` (lists) moved to parts; the stored
    version's parts it no longer lists are blanked. Raises DocumentTooLarge."""
    collection, doc_id = key
    items = [(name, item, value_size(item)) for name in fields for item in data.get(name) or []]
    head = {**data, **{name: [] for name in fields}}
    if document_size(collection, doc_id, head) + sum(size for *_, size in items) <= (
        MAX_DOCUMENT_BYTES
    ):
        # A document read back split (an annotation's deletion keeps it) keeps its parts.
        writes = {key: data}
    else:
        parts = _packed(key, head, items)
        head[LISTED] = list(parts)
        writes = {key: head} | {(PARTS, part): doc.stored() for part, doc in parts.items()}
    listed = set(writes[key].get(LISTED) or [])
    blanks = [part for part in (stored or {}).get(LISTED) or [] if part not in listed]
    blank = DocumentPart(collection=collection, doc_id=doc_id).stored()
    return writes | {(PARTS, part): blank for part in blanks}


def _packed(
    key: DocKey, head: dict[str, Any], items: Sequence[tuple[str, Any, int]]
) -> dict[str, DocumentPart]:
    """The items (field name, item, its size) in order, in as few parts as fit a document
    each, by id: a digest of the items and of the document they belong to, so a later version
    with the same items (parts are written outside its transaction) never reuses the ids of
    parts an earlier version blanked."""
    collection, doc_id = key
    digest = hashlib.sha256(
        json.dumps([head, [item for _, item, _ in items]], sort_keys=True, default=str).encode()
    ).hexdigest()
    # A part's own fields, with room for an index far larger than any part count.
    blank = DocumentPart(collection=collection, doc_id=doc_id).stored()
    blank["lists"] = {name: [] for name, *_ in items}
    prefix = f"{collection}~{doc_id}~{digest}~"
    room = MAX_DOCUMENT_BYTES - document_size(PARTS, f"{prefix}{10**6}", blank)
    runs: list[DocumentPart] = [DocumentPart(collection=collection, doc_id=doc_id)]
    used = 0
    for name, item, size in items:
        if size > room:
            raise DocumentTooLarge(
                f"{collection} {doc_id} has an item of its {name} of {size:,} bytes stored, "
                f"over the {room:,} a document holds"
            )
        if used + size > room:
            runs.append(DocumentPart(collection=collection, doc_id=doc_id))
            used = 0
        runs[-1].lists.setdefault(name, []).append(item)
        used += size
    return {f"{prefix}{n}": run for n, run in enumerate(runs)}


class _PartsFirst(Exception):
    """Raised out of a transaction whose change made parts not written yet: they are."""

    def __init__(self, parts: dict[DocKey, dict[str, Any]]) -> None:
        super().__init__(f"{len(parts)} parts to write first")
        self.parts = parts


def transact(documents: DocumentStore, keys: Sequence[DocKey], change: Change[T]) -> T:
    """``documents.transact(keys, change)`` for a change whose writes may hold parts
    (:func:`split`): those are written first, each as its own document, then the transaction
    commits the rest. Raises TransientError if the parts keep changing under it."""
    written: set[DocKey] = set()

    def committed(docs: dict[DocKey, dict[str, Any] | None]) -> tuple[dict[DocKey, Any], T]:
        writes, result = change(docs)
        new = {k: v for k, v in writes.items() if k[0] == PARTS and v.get("lists")}
        if new.keys() - written:
            raise _PartsFirst(new)
        return {k: v for k, v in writes.items() if k not in new}, result

    for _ in range(_ATTEMPTS):
        try:
            return documents.transact(keys, committed)
        except _PartsFirst as first:
            for (collection, doc_id), data in first.parts.items():
                documents.merge(collection, doc_id, data)
            written.update(first.parts)
    raise TransientError(f"the parts of {keys[0]} changed {_ATTEMPTS} times while stored")


def joined(
    documents: DocumentStore, collection: str, doc: dict[str, Any], fields: Sequence[str]
) -> dict[str, Any]:
    """The document ``doc`` of ``collection`` whole: its parts' lists put back, in order."""
    ids = [str(part) for part in doc.get(LISTED) or []]
    if not ids:
        return doc
    found = documents.get_many(PARTS, ids)
    # A blanked part (a newer version stopped listing it) is as lost as a deleted one.
    missing = [i for i in ids if not (found.get(i) or {}).get("lists")]
    if missing:
        # Written before the document was: they can only have been deleted since.
        raise NotFound(f"{collection} {doc.get('id') or doc.get('_id')} lost its parts {missing}")
    whole: dict[str, Any] = {**doc, **{name: [] for name in fields}}
    for part in ids:
        for name, items in (found[part].get("lists") or {}).items():
            whole[name].extend(items)
    return whole

"""What Firestore refuses to store, for the in-memory fake to refuse it too (the emulator does:
tests/emulated/test_webhook_emulated.py), raised as the adapter raises it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from framesift.errors import DocumentRefused
from framesift.parts import MAX_DOCUMENT_BYTES, document_size
from framesift.ports import DocKey

# https://firebase.google.com/docs/firestore/quotas#collections_documents_and_fields: a field
# name "must not match __.*__".
_RESERVED = re.compile(r"__.*__")


def refuse_what_firestore_would(key: DocKey, doc: Mapping[str, Any]) -> None:
    """Raise DocumentRefused for a document over 1 MiB or with a reserved field name."""
    size = document_size(*key, doc)
    if size > MAX_DOCUMENT_BYTES:
        raise DocumentRefused(f"maximum entity size is {MAX_DOCUMENT_BYTES} bytes ({size})")
    reserved = _reserved_name(doc)
    if reserved:
        raise DocumentRefused(f"field name {reserved!r} is reserved")


def _reserved_name(value: Any) -> str | None:
    if isinstance(value, Mapping):
        for name, item in value.items():
            if _RESERVED.fullmatch(str(name)):
                return str(name)
            if found := _reserved_name(item):
                return found
    if isinstance(value, list):
        return next((found for item in value if (found := _reserved_name(item))), None)
    return None

"""A near-duplicate index of 64-bit perceptual hashes kept in the document store.

Multi-index hashing. With a Hamming threshold ``t`` the hash is cut into ``t + 1`` contiguous
bands. If two hashes differ in at most ``t`` bits, those bits cannot touch all ``t + 1`` bands,
so at least one band is identical (pigeonhole): looking up the exact band values of a hash finds
every hash within ``t``, which gives recall 1.0 by construction, and the candidates are then
verified by their full distance.

Storage: one *bucket* document per (scope, band, band value), holding the hashes of its kept frames
packed as 8-byte big-endian integers in one bytes field (``hashes``), and their colour layouts (12
bytes each, :mod:`framesift.imagestats`) in the same order in another (``layouts``; a bucket written
before them has fewer, and the missing ones are unknown). Packing is what makes a lookup fast and
the index large: the candidates of a lookup are verified with one vectorised XOR and popcount
(numpy) instead of a Python loop, a hash costs 8 bytes, and a bytes field gives Firestore no per-
entry index entries to build. Which frame owns a hash is kept apart, in one *owner* document per
(scope, hash), read only when a lookup found a match.

A lookup therefore reads exactly ``t + 1`` bucket documents, plus one owner document on a match,
whatever the index size. A bucket holds about ``n / 2^width`` hashes for ``n`` uniformly spread
ones (at ``t = 10`` the bands are 5 and 6 bits wide: at most about 3 % of the scope), so
Firestore's 1 MiB document limit caps one scope (a collector, or everything) at about 1.6 million
kept frames (20 bytes each). Dedup therefore keeps a video's index here (a video keeps few
frames) and a dataset scope's in :mod:`framesift.dedupindex`'s size-bounded chains, which store
their leaves in this format.

Concurrency: a decision reads the bucket documents and writes the kept hash into them in one
transaction. Two near-identical hashes share a band value, so their transactions read and write
a common document and cannot both commit on what they read before the other wrote: the second
sees the first and drops its frame. That is the guarantee: no two frames within ``t`` of each
other are both kept in one scope, across instances and restarts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from framesift.errors import CorruptIndex, InvalidName
from framesift.imagestats import LAYOUT_UNKNOWN
from framesift.naming import document_id_refusal
from framesift.samescene import layouts_agree

_PACKED = np.dtype(">u8")
_LAYOUT = len(LAYOUT_UNKNOWN) // 2  # bytes per colour layout


@dataclass(frozen=True)
class Neighbour:
    """The nearest stored hash; its frame is in the owner document ``owner_id(scope, phash)``."""

    phash: str
    distance: int


@cache  # every lookup and split asks, for one threshold
def bands(threshold: int) -> tuple[tuple[int, int], ...]:
    """(shift, width) of each of the ``threshold + 1`` contiguous bands of a 64-bit hash."""
    count = threshold + 1
    if not 0 <= threshold <= 63:
        raise ValueError("the threshold must be between 0 and 63 bits")
    widths = [64 // count + (1 if i < 64 % count else 0) for i in range(count)]
    result, shift = [], 64
    for width in widths:
        shift -= width
        result.append((shift, width))
    return tuple(result)


def bucket_ids(scope: str, phash: str, threshold: int) -> list[str]:
    """The ids of the bucket documents a hash belongs to, one per band."""
    value = int(phash, 16)
    return [
        _document_id(f"{scope}~b{index}~{(value >> shift) & ((1 << width) - 1):x}")
        for index, (shift, width) in enumerate(bands(threshold))
    ]


def owner_id(scope: str, phash: str) -> str:
    """The id of the document naming the kept frame that put ``phash`` into ``scope``."""
    return _document_id(f"{scope}~{phash}")


def _document_id(doc_id: str) -> str:
    # A scope built from a name no validator saw (a message published by hand) must fail as
    # permanent here: Firestore's own refusal would look transient and be retried to the limit.
    if reason := document_id_refusal(doc_id):
        raise InvalidName(f"dedup index: {reason}")
    return doc_id


def check(doc_id: str, doc: Mapping[str, Any] | None) -> None:
    """Raise CorruptIndex unless ``doc`` is absent or a bucket (or a chain node: the same
    fields and ``split``) as this module and :mod:`framesift.dedupindex` write them."""
    if doc is None:
        return
    hashes, layouts = doc.get("hashes", b""), doc.get("layouts", b"")
    if not isinstance(hashes, bytes) or not isinstance(layouts, bytes):
        raise CorruptIndex(f"dedup index document {doc_id}: hashes and layouts must be bytes")
    if len(hashes) % 8 or len(layouts) % _LAYOUT or len(layouts) // _LAYOUT > len(hashes) // 8:
        raise CorruptIndex(
            f"dedup index document {doc_id}: {len(hashes)} bytes of hashes (8 each) and"
            f" {len(layouts)} of colour layouts ({_LAYOUT} each, at most one per hash)"
        )
    if not isinstance(doc.get("split", False), bool):
        raise CorruptIndex(f"dedup index document {doc_id}: split must be true or false")
    if doc.get("split") and hashes:
        raise CorruptIndex(f"dedup index document {doc_id}: a split node holds no hashes")
    rate, rate_at = doc.get("rate"), doc.get("rate_at")
    if (rate is None) != (rate_at is None) or not (
        rate is None or (_finite(rate) and _finite(rate_at) and rate >= 0)
    ):
        raise CorruptIndex(
            f"dedup index document {doc_id}: a write rate needs a finite rate >= 0 (writes/s)"
            " and the finite time it was estimated at (rate_at, Unix seconds)"
        )


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def nearest(
    phash: str,
    buckets: Iterable[Mapping[str, Any] | None],
    threshold: int,
    layout: str = LAYOUT_UNKNOWN,
    layout_threshold: float = 255.0,
) -> Neighbour | None:
    """The closest hash within ``threshold`` in the buckets read whose colour layout is within
    ``layout_threshold`` of ``layout`` (an unknown layout agrees with any); ties: the smallest
    hash."""
    read = [bucket for bucket in buckets if bucket and bucket.get("hashes")]
    if not read:
        return None
    stored = np.frombuffer(b"".join(bytes(b["hashes"]) for b in read), _PACKED)
    distances = np.bitwise_count(stored ^ np.uint64(int(phash, 16)))
    close = np.flatnonzero(distances <= threshold)
    if not close.size:
        return None
    if layout != LAYOUT_UNKNOWN:
        layouts = b"".join(bucket_layouts(b) for b in read)
        close = np.array(
            [
                i
                for i in close.tolist()
                if layouts_agree(
                    layout, layouts[i * _LAYOUT : (i + 1) * _LAYOUT].hex(), layout_threshold
                )
            ],
            dtype=np.int64,
        )
        if not close.size:
            return None
    best = min(zip(distances[close].tolist(), stored[close].tolist(), strict=True))
    return Neighbour(phash=f"{best[1]:016x}", distance=best[0])


def bucket_layouts(bucket: Mapping[str, Any]) -> bytes:
    """The bucket's colour layouts, one per hash (unknown for hashes stored before them)."""
    count = len(bucket["hashes"]) // 8
    known = bytes(bucket.get("layouts") or b"")
    return known + bytes.fromhex(LAYOUT_UNKNOWN) * (count - len(known) // _LAYOUT)


def added(
    buckets: Mapping[str, Mapping[str, Any] | None], phash: str, layout: str = LAYOUT_UNKNOWN
) -> dict[str, dict[str, Any]]:
    """The writes that add a hash and its colour layout to the bucket documents read."""
    packed = int(phash, 16).to_bytes(8, "big")
    return {
        bucket_id: {
            "hashes": bytes((bucket or {}).get("hashes") or b"") + packed,
            "layouts": (bucket_layouts(bucket) if bucket and bucket.get("hashes") else b"")
            + bytes.fromhex(layout),
        }
        for bucket_id, bucket in buckets.items()
    }

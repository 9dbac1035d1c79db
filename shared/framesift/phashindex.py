"""A near-duplicate index of 64-bit perceptual hashes kept in the document store.

Multi-index hashing. With a Hamming threshold ``t`` the hash is cut into ``t + 1`` contiguous
bands. If two hashes differ in at most ``t`` bits, those bits cannot touch all ``t + 1`` bands,
so at least one band is identical (pigeonhole): looking up the exact band values of a hash finds
every hash within ``t``, which gives recall 1.0 by construction, and the candidates are then
verified by their full distance.

Storage: one *bucket* document per (scope, band, band value), holding ``{frame id: hash}`` of
the kept frames in it. A lookup reads exactly ``t + 1`` bucket documents, whatever the index
size; a bucket holds about ``n / 2^width`` entries for ``n`` uniformly spread hashes (at
``t = 10`` the bands are 5 and 6 bits wide: up to some 3 % of the scope, about 45 bytes each),
so Firestore's 1 MiB document limit caps a scope (a collector, a video) at about 500,000 kept
frames. Beyond that the split must change: fewer, wider bands searched within a radius.

Concurrency: a decision reads the bucket documents and writes the kept hash into them in one
transaction. Two near-identical hashes share a band value, so their transactions read and write
a common document and cannot both commit on what they read before the other wrote: the second
sees the first and drops its frame. That is the guarantee: no two frames within ``t`` of each
other are both kept in one scope, across instances and restarts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from framesift.imagestats import hamming

BUCKETS = "phash_buckets"


@dataclass(frozen=True)
class Match:
    frame_id: str
    distance: int


def bands(threshold: int) -> list[tuple[int, int]]:
    """(shift, width) of each of the ``threshold + 1`` contiguous bands of a 64-bit hash."""
    count = threshold + 1
    if not 0 <= threshold <= 63:
        raise ValueError("the threshold must be between 0 and 63 bits")
    widths = [64 // count + (1 if i < 64 % count else 0) for i in range(count)]
    result, shift = [], 64
    for width in widths:
        shift -= width
        result.append((shift, width))
    return result


def bucket_ids(scope: str, phash: str, threshold: int) -> list[str]:
    """The ids of the bucket documents a hash belongs to, one per band."""
    value = int(phash, 16)
    return [
        f"{scope}~b{index}~{(value >> shift) & ((1 << width) - 1):x}"
        for index, (shift, width) in enumerate(bands(threshold))
    ]


def nearest(
    phash: str,
    buckets: Iterable[Mapping[str, Any] | None],
    threshold: int,
    exclude: str | None = None,
) -> Match | None:
    """The closest entry within ``threshold`` in the bucket documents read (ties: smallest id)."""
    best: Match | None = None
    for bucket in buckets:
        for frame_id, other in ((bucket or {}).get("entries") or {}).items():
            if frame_id == exclude:
                continue
            distance = hamming(phash, other)
            if distance <= threshold and (
                best is None or (distance, frame_id) < (best.distance, best.frame_id)
            ):
                best = Match(frame_id, distance)
    return best


def added(
    buckets: Mapping[str, Mapping[str, Any] | None], frame_id: str, phash: str
) -> dict[str, dict[str, Any]]:
    """The writes that add a hash to the bucket documents read."""
    return {
        bucket_id: {"entries": {**((bucket or {}).get("entries") or {}), frame_id: phash}}
        for bucket_id, bucket in buckets.items()
    }

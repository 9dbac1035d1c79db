"""Dedup lookup benchmark: latency and document reads of a near-duplicate lookup by index size.

    .venv/bin/python benchmarks/dedup_lookup.py                 # in memory and SQLite
    eval "$(.venv/bin/framesift dev up | grep ^export)"
    .venv/bin/python benchmarks/dedup_lookup.py --firestore     # and the Firestore emulator

For 10^4, 10^5 and 10^6 uniformly random 64-bit hashes in one scope, each with a random colour
layout, it builds the bucket documents of :mod:`framesift.phashindex` and times lookups (half
of them within the threshold of a stored hash, with its layout, half random), each checked
against a brute-force scan with numpy (recall).
A lookup in a store is what dedup does per frame and scope: one read of the ``t + 1`` buckets.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from framesift import phashindex
from framesift.adapters.embedded.sqlite import SqliteDocumentStore
from framesift.config import Settings
from framesift.imagestats import LAYOUT_UNKNOWN
from framesift.ports import DocKey, DocumentStore
from framesift.topology import Collections

THRESHOLD = 10
LAYOUT_THRESHOLD = Settings().dedup_layout_threshold
LAYOUT_BYTES = len(LAYOUT_UNKNOWN) // 2
FIRESTORE_DOC_LIMIT = 1_048_576


def build(hashes: np.ndarray, layouts: np.ndarray) -> dict[str, dict[str, Any]]:
    """The bucket documents :func:`phashindex.added` would have written (each hash with its
    colour layout), built in one pass."""
    members: dict[str, list[int]] = defaultdict(list)
    for index, value in enumerate(hashes.tolist()):
        for bucket_id in phashindex.bucket_ids("bench", f"{value:016x}", THRESHOLD):
            members[bucket_id].append(index)
    return {
        bucket_id: {
            "hashes": hashes[indexes].astype(">u8").tobytes(),
            "layouts": layouts[indexes].tobytes(),
        }
        for bucket_id, indexes in members.items()
    }


def document_size(bucket: dict[str, Any]) -> int:
    # The fields' names and Firestore's per-document overhead: 32 bytes.
    return len(bucket["hashes"]) + len(bucket["layouts"]) + 32


def queries(
    hashes: np.ndarray, layouts: np.ndarray, count: int, rng: np.random.Generator
) -> list[tuple[str, str]]:
    """(hash, colour layout) pairs: half near a stored hash with its layout, half random."""
    result = []
    for i in range(count):
        if i % 2:
            layout = bytes(rng.integers(0, 128, LAYOUT_BYTES, dtype=np.uint8).tolist()).hex()
            result.append((f"{int(rng.integers(0, 2**63)) * 2 + 1:016x}", layout))
        else:
            index = int(rng.integers(len(hashes)))
            value = int(hashes[index])
            for bit in rng.choice(64, size=int(rng.integers(0, THRESHOLD + 1)), replace=False):
                value ^= 1 << int(bit)
            result.append((f"{value:016x}", layouts[index].tobytes().hex()))
    return result


def brute_force(hashes: np.ndarray, layouts: np.ndarray, query: str, layout: str) -> int:
    """The distance to the nearest stored hash whose colour layout agrees (a scan)."""
    distances = np.bitwise_count(hashes ^ np.uint64(int(query, 16))).astype(np.int64)
    wanted = np.frombuffer(bytes.fromhex(layout), np.uint8).astype(np.int16)
    apart = np.abs(layouts.astype(np.int16) - wanted).mean(axis=1) * 2
    distances[apart > LAYOUT_THRESHOLD] = 64 + 1
    return int(distances.min())


def time_memory(
    buckets: dict[str, dict[str, Any]], qs: list[str]
) -> tuple[float, list[int | None]]:
    found, times = [], []
    for query, layout in qs:
        start = time.perf_counter()
        ids = phashindex.bucket_ids("bench", query, THRESHOLD)
        match = phashindex.nearest(
            query, (buckets.get(i) for i in ids), THRESHOLD, layout, LAYOUT_THRESHOLD
        )
        times.append(time.perf_counter() - start)
        found.append(match.distance if match else None)
    return statistics.median(times) * 1000, found


def time_store(store: DocumentStore, qs: list[tuple[str, str]]) -> float:
    times = []
    for query, layout in qs:
        keys = [
            (Collections.PHASH_BUCKETS, i) for i in phashindex.bucket_ids("bench", query, THRESHOLD)
        ]

        def lookup(
            docs: dict[DocKey, dict[str, Any] | None], q: str = query, c: str = layout
        ) -> tuple[dict[DocKey, dict[str, Any]], phashindex.Neighbour | None]:
            return {}, phashindex.nearest(q, docs.values(), THRESHOLD, c, LAYOUT_THRESHOLD)

        start = time.perf_counter()
        store.transact(keys, lookup)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def load(store: DocumentStore, buckets: dict[str, dict[str, Any]]) -> None:
    for bucket_id, data in buckets.items():
        store.merge(Collections.PHASH_BUCKETS, bucket_id, data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--firestore", action="store_true", help="also the Firestore emulator")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    print(f"threshold {THRESHOLD}: {THRESHOLD + 1} buckets read per lookup and scope,")
    print("plus one owner document when the lookup finds a match")
    print("| hashes | store | ms per lookup | reads per lookup | largest bucket KB | recall |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        hashes = rng.integers(0, 2**63, size=size, dtype=np.uint64) * np.uint64(2)
        hashes |= rng.integers(0, 2, size=size, dtype=np.uint64)
        layouts = rng.integers(0, 128, size=(size, LAYOUT_BYTES), dtype=np.uint8)
        buckets = build(hashes, layouts)
        largest = max(document_size(b) for b in buckets.values())
        qs = queries(hashes, layouts, args.queries, rng)
        memory_ms, found = time_memory(buckets, qs)
        truth = [brute_force(hashes, layouts, q, c) for q, c in qs]
        expected = [d if d <= THRESHOLD else None for d in truth]
        recall_hits = sum(
            1 for f, e in zip(found, expected, strict=True) if e is not None and f == e
        )
        recall = recall_hits / max(1, sum(e is not None for e in expected))
        fixed = f"{THRESHOLD + 1} | {largest / 1024:.0f} | {recall:.3f}"
        row = f"| {size:,} | {{}} | {{:.2f}} | {fixed} |"
        print(row.format("in memory", memory_ms), flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            sqlite = SqliteDocumentStore(Path(tmp) / "index.sqlite3")
            load(sqlite, buckets)
            print(row.format("SQLite (embedded)", time_store(sqlite, qs[:50])), flush=True)
        if args.firestore:
            if largest > FIRESTORE_DOC_LIMIT:
                print(f"| {size:,} | Firestore emulator | n/a: buckets over 1 MiB | | | |")
                continue
            from framesift.adapters.gcp.firestore import FirestoreDocumentStore

            firestore = FirestoreDocumentStore(
                os.environ.get("FRAMESIFT_PROJECT", "framesift-local")
            )
            load(firestore, buckets)
            print(row.format("Firestore emulator", time_store(firestore, qs[:50])), flush=True)


if __name__ == "__main__":
    main()

"""Dedup index benchmark: today's buckets and the size-bounded chains, side by side, by size.

    framesift bench index                                       # the table
    framesift bench index --json                                # one JSON object per row
    framesift bench index --sizes 1e5,1e6 --simulate 1e7,1e8 --cap 2048

    framesift bench index --firestore                           # + the emulator (dev up)

(or ``python -m framesift_dev.indexbench``, or ``benchmarks/index.py`` in a clone.) With
``--firestore`` the chains also decide 400 hashes and 200 lookups through the Firestore
adapter's transactions on the emulator, each against a numpy scan (:func:`through_store`; the
emulator checks correctness, not Firestore's limits or latency).

For each data set (``uniform`` 64-bit hashes, and ``clustered``: a model of real pHashes, see
:func:`clustered`) and each real size (in memory), both designs are built over the same hashes
with their documents' Firestore sizes (framesift_dev.firestore_limits), and looked up with the
same queries: planted near duplicates of a stored hash at 1..t bits (recall, and exactness
against a numpy scan) and fresh hashes from the same generator (false matches: a distinct hash
within t of a stored one). Each lookup is the designs' real code (phashindex.nearest;
dedupindex.plan, reading what it asks for, then nearest). Per row:

- ``bytes_read_per_lookup``, ``docs_read_per_lookup`` (missing documents count as reads),
  ``rounds`` (read round trips of the transaction), ``docs_written_per_kept`` and
  ``bytes_written_per_kept`` (whole documents: Firestore rewrites them; the chains' splits
  amortised over the kept frames), ``max_doc_bytes`` and ``fits`` (every document under 1 MiB);
- ``kept_per_s``: the contention model's sustained kept frames per second (no decision out of
  attempts, at most one abort per two decisions, the hottest document at 1 write/s);
  ``p99_ms``: the decision time at an offered 100 kept frames/s (retries included), from a
  latency model: ``RTT_MS`` per read round, ``COMMIT_MS``, bytes at ``BANDWIDTH``, plus a
  compute model (``COMPUTE_MS_PER_DOC`` and ``COMPUTE_MS_PER_MB``, fitted to this project's
  2-core machine) so that the row repeats whatever the machine's load; the lookups' measured
  compute time is reported beside it (``compute_ms_measured``, median; ``compute_ms``: the
  model's, mean) and used nowhere else;
- ``ramp_minutes``: the 500/50/5 rule's wait before the index's collection takes 500 kept
  frames/s of its reads and writes.

Sizes given to ``--simulate`` are extrapolated (``simulated: true``): the real sample's tries and
buckets scaled by ``n / sample`` (a node's count is its sample count times that factor; a chain
node splits where that exceeds the cap), and the lookups walked over that shape with
dedupindex.plan; recall there checks that each planted neighbour's leaf is among the leaves read;
false matches extrapolate the sample's mean number of neighbours within t (Poisson; for uniform
hashes the exact Hamming-ball volume instead).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from framesift import dedupindex, phashindex
from framesift.config import Settings
from framesift.errors import ReadMore
from framesift.ports import DocKey, DocumentStore
from framesift.topology import Collections
from framesift_dev import firestore_limits as fl

THRESHOLD = Settings().dedup_threshold
RTT_MS = 8.0  # one batched read round inside a transaction (model)
COMMIT_MS = 15.0  # a commit (model)
BANDWIDTH = 100e6  # bytes per second a function reads documents at (model)
# Compute per lookup (model): walking the plan and decoding a document, and the numpy scan of the
# packed entries. Fitted 2026-12 on the project's idle 2-core machine (chains at 10^6 uniform: 75
# documents, 0.34 ms; buckets at 10^6: 4.1 MB, 0.21 ms); the measured times are reported apart.
COMPUTE_MS_PER_DOC = 0.0045
COMPUTE_MS_PER_MB = 0.05
FLEET_RATE = 100.0  # offered kept frames per second for p99_ms
# Firestore Standard list prices per 100 000 operations, regional (assumed; check the pricing
# page before quoting): reads and writes.
USD_READS, USD_WRITES = 0.03, 0.09
COLLECTION = Collections.PHASH_BUCKETS
OWNER_BYTES = fl.document_size(
    Collections.PHASH_OWNERS, "collector:x~" + "0" * 16, {"frame_id": "f" * 40}
)
SCOPE = "collector:bench"


def uniform(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 2**64, n, dtype=np.uint64)


class Clustered:
    """A model of real pHashes, not a measurement: a mixture around ``centres`` random centres
    (night, sky, road, walls...) weighted 1/rank (a few scenes dominate), each hash its centre
    with every bit flipped with probability 1/4 (two hashes of one centre differ in about 24
    bits), plus 10 % uniform hashes. One mixture per data set: stored and fresh hashes are drawn
    from the same centres."""

    def __init__(self, rng: np.random.Generator, centres: int = 300) -> None:
        self.middle = rng.integers(0, 2**64, centres, dtype=np.uint64)
        weights = 1.0 / np.arange(1, centres + 1)
        self.weights = weights / weights.sum()

    def __call__(self, n: int, rng: np.random.Generator) -> np.ndarray:
        which = rng.choice(len(self.middle), size=n, p=self.weights)
        bits = rng.integers(0, 2**64, n, dtype=np.uint64)
        noise = bits & rng.integers(0, 2**64, n, dtype=np.uint64)
        hashes = self.middle[which] ^ noise
        spread = rng.random(n) < 0.1
        hashes[spread] = uniform(int(spread.sum()), rng)
        return hashes


def planted(hashes: np.ndarray, count: int, rng: np.random.Generator) -> list[tuple[str, int]]:
    """(query, index of the stored hash it was made from) at 1..t bits."""
    result = []
    for _ in range(count):
        index = int(rng.integers(len(hashes)))
        value = int(hashes[index])
        for bit in rng.choice(64, size=int(rng.integers(1, THRESHOLD + 1)), replace=False):
            value ^= 1 << int(bit)
        result.append((f"{value:016x}", index))
    return result


def leaf_bytes(doc_id: str, count: int) -> int:
    """A leaf or bucket document's Firestore size with ``count`` hashes and colour layouts."""
    return fl.document_size(COLLECTION, doc_id, {"hashes": b"", "layouts": b"", "split": False}) + (
        count * dedupindex.ENTRY_BYTES
    )


def within(hashes: np.ndarray, query: str) -> np.ndarray:
    return np.bitwise_count(hashes ^ np.uint64(int(query, 16)))


# --- today's design: one bucket per (band, value) -------------------------------------------


def band_arrays(hashes: np.ndarray) -> list[np.ndarray]:
    return [
        ((hashes >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)
        for shift, width in phashindex.bands(THRESHOLD)
    ]


@dataclass
class Buckets:
    """phashindex's bucket documents (hashes only in memory; sizes count the layouts)."""

    docs: dict[str, dict[str, Any]]
    counts: dict[str, int]

    @classmethod
    def build(cls, hashes: np.ndarray, scale: float = 1.0) -> Buckets:
        docs: dict[str, dict[str, Any]] = {}
        counts: dict[str, int] = {}
        for band, values in enumerate(band_arrays(hashes)):
            order = np.argsort(values, kind="stable")
            uniq, starts, sizes = np.unique(values[order], return_index=True, return_counts=True)
            for value, begin, size in zip(
                uniq.tolist(), starts.tolist(), sizes.tolist(), strict=True
            ):
                doc_id = f"{SCOPE}~b{band}~{value:x}"
                counts[doc_id] = round(size * scale)
                if scale == 1.0:
                    docs[doc_id] = {
                        "hashes": hashes[order[begin : begin + size]].astype(">u8").tobytes()
                    }
        return cls(docs, counts)


# --- the chains: size-bounded tries --------------------------------------------------------


def rotated(hashes: np.ndarray, start: int) -> np.ndarray:
    """The hashes rotated so that chain ``start``'s first band is on top."""
    shift, width = phashindex.bands(THRESHOLD)[start]
    left = 64 - shift - width
    if left == 0:
        return hashes.copy()
    return (hashes << np.uint64(left)) | (hashes >> np.uint64(64 - left))


def prefix_bits(g: dedupindex.Geometry, start: int) -> list[int]:
    widths = [g.bands[(start + j) % g.chains][1] for j in range(g.chains)]
    return [sum(widths[: d + 1]) for d in range(g.chains)]


def path_of(key: int, bits: list[int], g: dedupindex.Geometry, start: int, depth: int) -> str:
    values = []
    for j in range(depth + 1):
        width = g.bands[(start + j) % g.chains][1]
        values.append((key >> (bits[depth] - bits[j])) & ((1 << width) - 1))
    return dedupindex.node_id(SCOPE, dedupindex.Node(start, tuple(values)))


@dataclass
class Shape:
    """Each chain's sorted node keys and sample counts by depth (for the scaled, simulated trie)."""

    keys: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]

    @classmethod
    def of(cls, hashes: np.ndarray, g: dedupindex.Geometry) -> Shape:
        keys = {}
        for start in range(g.chains):
            rot = rotated(hashes, start)
            for depth, bits in enumerate(prefix_bits(g, start)):
                if depth < g.min_depth:
                    continue
                uniq, counts = np.unique(rot >> np.uint64(64 - bits), return_counts=True)
                keys[(start, depth)] = (uniq, counts)
                if counts.max() <= 1:
                    break
        return cls(keys)

    def count(self, start: int, path: tuple[int, ...], g: dedupindex.Geometry) -> int:
        depth = len(path) - 1
        key = 0
        for j, value in enumerate(path):
            key = (key << g.bands[(start + j) % g.chains][1]) | value
        if (start, depth) not in self.keys:
            return 0
        uniq, counts = self.keys[(start, depth)]
        at = int(np.searchsorted(uniq, np.uint64(key)))
        return int(counts[at]) if at < len(uniq) and int(uniq[at]) == key else 0


class ScaledTrie(Mapping[str, Any]):
    """The chain documents of a scope ``scale`` times the sample, as dedupindex.plan reads them:
    a node is split where its scaled count exceeds the cap."""

    def __init__(self, shape: Shape, scale: float, g: dedupindex.Geometry) -> None:
        self.shape, self.scale, self.g = shape, scale, g

    def __getitem__(self, doc_id: str) -> dict[str, Any]:
        _, chain, path = doc_id.split("~")
        start, values = int(chain[1:]), tuple(int(v, 16) for v in path.split("."))
        count = self.shape.count(start, values, self.g) * self.scale
        if count > self.g.cap and len(values) - 1 < self.g.threshold:
            return {"split": True, "count": 0}
        return {"count": round(count)}

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __contains__(self, doc_id: object) -> bool:
        return True


def build_chains(hashes: np.ndarray, g: dedupindex.Geometry) -> dict[str, dict[str, Any]]:
    """The chain documents dedupindex.added would have left (a node splits iff more than
    ``cap`` hashes ever reached it, so the final shape does not depend on the order)."""
    docs: dict[str, dict[str, Any]] = {}
    for start in range(g.chains):
        rot = rotated(hashes, start)
        bits = prefix_bits(g, start)
        active = np.arange(len(hashes))
        for depth in range(g.min_depth, g.chains):
            keys = rot[active] >> np.uint64(64 - bits[depth])
            order = np.argsort(keys, kind="stable")
            uniq, begins, sizes = np.unique(keys[order], return_index=True, return_counts=True)
            split = sizes > g.cap if depth < g.threshold else np.zeros(len(sizes), bool)
            for key, begin, size, is_split in zip(
                uniq.tolist(), begins.tolist(), sizes.tolist(), split.tolist(), strict=True
            ):
                doc_id = path_of(key, bits, g, start, depth)
                if is_split:
                    docs[doc_id] = {"hashes": b"", "layouts": b"", "split": True}
                else:
                    members = active[order[begin : begin + size]]
                    docs[doc_id] = {"hashes": hashes[members].astype(">u8").tobytes()}
            keep = np.repeat(split, sizes)
            active = active[order][keep]
            if not len(active):
                break
    return docs


def chain_lookup(
    query: str, docs: Mapping[str, Any], g: dedupindex.Geometry
) -> tuple[dedupindex.Plan, dict[str, Any], int]:
    """dedupindex.plan, reading what it asks for; the plan, the documents read, the rounds."""
    read: dict[str, Any] = {}
    rounds = 0
    while True:
        found = dedupindex.plan(SCOPE, query, read, g)
        if not found.missing:
            return found, read, rounds
        rounds += 1
        for doc_id in found.missing:
            read[doc_id] = docs.get(doc_id)


def doc_bytes(doc_id: str, doc: Mapping[str, Any] | None) -> int:
    if doc is None:
        return 0
    if "count" in doc:
        return leaf_bytes(doc_id, int(doc["count"]))
    return leaf_bytes(doc_id, len(doc.get("hashes") or b"") // 8)


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Lookups:
    bytes_read: list[int]
    docs_read: list[int]
    rounds: list[int]
    compute_ms: list[float]  # measured (the fresh lookups' in a real row; reported only)
    decisions: list[fl.Decision]
    bytes_written: list[int]
    found: int
    exact_errors: int


def compute_model_ms(docs_read: int, read_bytes: int) -> float:
    """A lookup's compute time, modelled (see COMPUTE_MS_PER_DOC): the same on any machine."""
    return COMPUTE_MS_PER_DOC * docs_read + COMPUTE_MS_PER_MB * read_bytes / 1e6


def decision(reads: set[str], writes: set[str], rounds: int, read_bytes: int) -> fl.Decision:
    ms = compute_model_ms(len(reads), read_bytes)
    seconds = (rounds * RTT_MS + COMMIT_MS + ms) / 1000 + read_bytes / BANDWIDTH
    return fl.Decision(frozenset(reads), frozenset(writes), seconds)


def row(
    design: str,
    dataset: str,
    n: int,
    simulated: bool,
    lookups: Lookups,
    planted_count: int,
    docs_written: float,
    split_bytes: float,
    hottest_share: float,
    max_doc: int,
    false_rate: float,
) -> dict[str, Any]:
    pool = lookups.decisions
    kept_per_s = round(fl.sustained_rate(pool, hottest_share))
    at_fleet = fl.simulate(pool, FLEET_RATE)
    docs_read = float(np.mean(lookups.docs_read))
    bytes_read = float(np.mean(lookups.bytes_read))
    return {
        "design": design,
        "dataset": dataset,
        "n": n,
        "simulated": simulated,
        "bytes_read_per_lookup": round(bytes_read),
        "docs_read_per_lookup": round(docs_read, 1),
        "rounds": round(float(np.mean(lookups.rounds)), 2),
        "docs_written_per_kept": round(docs_written, 2),
        "bytes_written_per_kept": round(float(np.mean(lookups.bytes_written)) + split_bytes),
        "max_doc_bytes": max_doc,
        "fits": max_doc <= fl.DOCUMENT_LIMIT,
        "kept_per_s": kept_per_s,
        "p99_ms": round(at_fleet.p99_s * 1000, 1),
        "compute_ms": round(compute_model_ms(round(docs_read), round(bytes_read)), 3),
        "compute_ms_measured": (
            round(float(np.median(lookups.compute_ms)), 3) if lookups.compute_ms else None
        ),
        "aborts_at_100_per_s": round(at_fleet.abort_rate, 3),
        "ramp_minutes": fl.ramp_minutes(500 * (docs_read + docs_written)),
        "recall": round(lookups.found / planted_count, 4),
        "exact_errors": lookups.exact_errors,
        "false_match_rate": round(false_rate, 4),
        "usd_per_m_kept": round((docs_read * USD_READS + docs_written * USD_WRITES) * 10, 2),
    }


def false_matches(hashes: np.ndarray, fresh: np.ndarray, n: int) -> tuple[float, float]:
    """The share of fresh hashes within t of a stored one, measured; and extrapolated to n."""
    counts = np.array([int((within(hashes, f"{int(q):016x}") <= THRESHOLD).sum()) for q in fresh])
    mean = float(counts.mean()) * n / len(hashes)
    return float((counts > 0).mean()), 1 - math.exp(-mean)


def uniform_false_rate(n: int) -> float:
    """The share of fresh uniform hashes within t of one of n stored ones (exactly, Poisson)."""
    ball = sum(math.comb(64, k) for k in range(THRESHOLD + 1))
    return 1 - math.exp(-n * ball / 2**64)


def measure_buckets(
    hashes: np.ndarray,
    n: int,
    queries: list[tuple[str, int]],
    fresh: np.ndarray,
) -> tuple[Lookups, float, int]:
    scale = n / len(hashes)
    buckets = Buckets.build(hashes, scale)
    sizes = {doc_id: leaf_bytes(doc_id, count) for doc_id, count in buckets.counts.items()}
    found = errors = 0
    look = Lookups([], [], [], [], [], [], 0, 0)
    for query, index in queries:
        ids = phashindex.bucket_ids(SCOPE, query, THRESHOLD)
        if scale == 1.0:
            match = phashindex.nearest(query, (buckets.docs.get(i) for i in ids), THRESHOLD)
            best = int(within(hashes, query).min())
            found += match is not None
            errors += match is None or match.distance != best
        else:
            found += bool(
                set(ids)
                & set(phashindex.bucket_ids(SCOPE, f"{int(hashes[index]):016x}", THRESHOLD))
            )
    for value in fresh:
        query = f"{int(value):016x}"
        ids = phashindex.bucket_ids(SCOPE, query, THRESHOLD)
        read_bytes = sum(sizes.get(i, 0) for i in ids)
        if scale == 1.0:
            began = time.perf_counter()
            phashindex.nearest(query, (buckets.docs.get(i) for i in ids), THRESHOLD)
            look.compute_ms.append((time.perf_counter() - began) * 1000)
        look.bytes_read.append(read_bytes)
        look.docs_read.append(len(ids))
        look.rounds.append(1)
        owner = phashindex.owner_id(SCOPE, query)
        look.decisions.append(decision(set(ids), {*ids, owner}, 1, read_bytes))
        look.bytes_written.append(read_bytes + len(ids) * dedupindex.ENTRY_BYTES + OWNER_BYTES)
    look.found, look.exact_errors = found, errors
    hottest = max(buckets.counts.values()) / n
    max_doc = max(sizes.values())
    return look, hottest, max_doc


def measure_chains(
    hashes: np.ndarray,
    n: int,
    queries: list[tuple[str, int]],
    fresh: np.ndarray,
    g: dedupindex.Geometry,
) -> tuple[Lookups, float, float, float, int]:
    scale = n / len(hashes)
    docs: Mapping[str, Any] = (
        build_chains(hashes, g) if scale == 1.0 else ScaledTrie(Shape.of(hashes, g), scale, g)
    )
    look = Lookups([], [], [], [], [], [], 0, 0)
    for query, index in queries:
        plan, read, _ = chain_lookup(query, docs, g)
        if scale == 1.0:
            match = dedupindex.nearest(query, read, plan, g)
            best = int(within(hashes, query).min())
            look.found += match is not None
            look.exact_errors += match is None or match.distance != best
        else:
            stored = f"{int(hashes[index]):016x}"
            leaves = {dedupindex.leaf_of(SCOPE, stored, s, docs, g) for s in range(g.chains)}
            look.found += bool(leaves & set(plan.leaves))
    hottest = 0.0
    for value in fresh:
        query = f"{int(value):016x}"
        began = time.perf_counter()
        plan, read, rounds = chain_lookup(query, docs, g)
        if scale == 1.0:
            dedupindex.nearest(query, read, plan, g)
            look.compute_ms.append((time.perf_counter() - began) * 1000)
        read_bytes = sum(doc_bytes(i, d) for i, d in read.items())
        own = {dedupindex.leaf_of(SCOPE, query, s, docs, g) for s in range(g.chains)}
        look.bytes_read.append(read_bytes)
        look.docs_read.append(len(read))
        look.rounds.append(rounds)
        written = sum(doc_bytes(i, docs.get(i)) for i in own)
        look.bytes_written.append(written + len(own) * dedupindex.ENTRY_BYTES + OWNER_BYTES)
        look.decisions.append(
            decision(set(read), {*own, phashindex.owner_id(SCOPE, query)}, rounds, read_bytes)
        )
        for i in own:
            d = docs.get(i)
            count = (
                int(d["count"]) if d and "count" in d else len((d or {}).get("hashes") or b"") // 8
            )
            hottest = max(hottest, (count + 1) / n)
    # Splits, amortised (an upper bound): each kept hash moves down one level per split above
    # its leaf (rounds - 1 levels), once per chain; a split writes its node and its children (at
    # most 2^6 + 1 documents) once per ``cap`` hashes that reach it.
    levels = float(np.mean(look.rounds)) - 1
    split_docs = g.chains * levels * (65 / g.cap)
    split_bytes = g.chains * levels * dedupindex.ENTRY_BYTES
    bound = leaf_bytes(dedupindex.node_id(SCOPE, dedupindex.Node(0, (63,) * g.chains)), g.cap)
    max_doc = bound if scale != 1.0 else max(doc_bytes(i, d) for i, d in docs.items())
    if scale == 1.0:  # every leaf is there: the hottest is the largest (the sampled one otherwise)
        hottest = max(hottest, max(dedupindex.entries([d]) for d in docs.values()) / n)
    return look, hottest, split_docs, split_bytes, max_doc


# --- correctness through a document store (the Firestore emulator) -------------------------


def decide(
    store: DocumentStore, scope: str, phash: str, g: dedupindex.Geometry, keep: bool
) -> phashindex.Neighbour | None:
    """One decision on the chains in one of the store's transactions, reading what
    dedupindex.plan asks for (``ReadMore``): the nearest kept hash within t, or, with ``keep``
    and none, the hash added."""

    def change(
        docs: dict[DocKey, dict[str, Any] | None],
    ) -> tuple[dict[DocKey, dict[str, Any]], phashindex.Neighbour | None]:
        read = {doc_id: doc for (_, doc_id), doc in docs.items()}
        found = dedupindex.plan(scope, phash, read, g)
        if found.missing:
            raise ReadMore([(COLLECTION, doc_id) for doc_id in found.missing])
        match = dedupindex.nearest(phash, read, found, g)
        if match is not None or not keep:
            return {}, match
        writes = dedupindex.added(scope, phash, read, g)
        return {(COLLECTION, doc_id): doc for doc_id, doc in writes.items()}, None

    first = [(COLLECTION, doc_id) for doc_id in dedupindex.first_reads(scope, phash, g)]
    return store.transact(first, change)


def scanned(kept: list[int], phash: str) -> int | None:
    """The distance to the nearest of ``kept`` within t, by a numpy scan (None: none)."""
    if not kept:
        return None
    best = int(within(np.array(kept, dtype=np.uint64), phash).min())
    return best if best <= THRESHOLD else None


def through_store(
    store: DocumentStore, backend: str, n: int, g: dedupindex.Geometry, seed: int, scope: str
) -> dict[str, Any]:
    """``n`` hashes, half of them around one centre (so leaves split deep), decided one by one
    through the store's transactions, each against a numpy scan of those kept before; then
    ``n / 2`` lookups, planted at 1..t bits of kept hashes and fresh. Exact: no errors."""
    rng = np.random.default_rng(seed)
    centre = int(rng.integers(0, 2**63))
    values = [int(v) for v in rng.integers(0, 2**63, n - n // 2)]
    for _ in range(n // 2):
        flips = rng.choice(40, size=int(rng.integers(6, 14)), replace=False)
        values.append(centre ^ sum(1 << int(bit) for bit in flips))
    kept: list[int] = []
    errors = 0
    for value in values:
        phash = f"{value:016x}"
        match = decide(store, scope, phash, g, keep=True)
        errors += (match.distance if match else None) != scanned(kept, phash)
        if match is None:
            kept.append(value)
    lookups = [kept[i % len(kept)] if i % 2 else int(rng.integers(0, 2**63)) for i in range(n // 2)]
    for value in lookups:
        flips = rng.choice(64, size=int(rng.integers(1, g.threshold + 1)), replace=False)
        phash = f"{value ^ sum(1 << int(bit) for bit in flips):016x}"
        match = decide(store, scope, phash, g, keep=False)
        errors += (match.distance if match else None) != scanned(kept, phash)
    return {
        "design": "chains",
        "backend": backend,
        "n": n,
        "cap": g.cap,
        "kept": len(kept),
        "decisions": n + len(lookups),
        "exact_errors": errors,
    }


def run(
    sizes: list[int], simulate: list[int], cap: int, queries: int, seed: int
) -> Iterator[dict[str, Any]]:
    g = dedupindex.Geometry(threshold=THRESHOLD, cap=cap, min_depth=1)
    datasets = (("uniform", uniform), ("clustered", Clustered(np.random.default_rng(seed))))
    for dataset, generate in datasets:
        rng = np.random.default_rng(seed)
        sample = np.zeros(0, dtype=np.uint64)
        for n in [*sizes, *simulate]:
            simulated = n not in sizes
            if not simulated:
                sample = generate(n, rng)
            plant = planted(sample, queries // 2, rng)
            fresh = generate(queries, rng)
            measured, extrapolated = false_matches(sample, fresh[:500], n)
            false_rate = extrapolated if simulated else measured
            if simulated and dataset == "uniform":
                false_rate = uniform_false_rate(n)
            look, hottest, max_doc = measure_buckets(sample, n, plant, fresh)
            written = 1 + THRESHOLD + 1  # t + 1 buckets and the owner
            yield row(
                "buckets", dataset, n, simulated, look, len(plant), written, 0.0, hottest,
                max_doc, false_rate,
            )  # fmt: skip
            look, hottest, split_docs, split_bytes, max_doc = measure_chains(
                sample, n, plant, fresh, g
            )
            yield row(
                "chains", dataset, n, simulated, look, len(plant), g.chains + 1 + split_docs,
                split_bytes, hottest, max_doc, false_rate,
            )  # fmt: skip


COLUMNS = [
    ("design", "design"),
    ("dataset", "data"),
    ("n", "n"),
    ("simulated", "sim"),
    ("bytes_read_per_lookup", "B read/lookup"),
    ("docs_read_per_lookup", "docs read"),
    ("rounds", "rounds"),
    ("docs_written_per_kept", "docs written"),
    ("bytes_written_per_kept", "B written"),
    ("max_doc_bytes", "max doc B"),
    ("fits", "fits"),
    ("kept_per_s", "kept/s"),
    ("p99_ms", "p99 ms"),
    ("compute_ms", "compute ms"),
    ("ramp_minutes", "ramp min"),
    ("recall", "recall"),
    ("false_match_rate", "false match"),
    ("usd_per_m_kept", "$/M kept"),
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per design and size")
    parser.add_argument("--sizes", default="1e5,1e6", help="sizes run for real, in memory")
    parser.add_argument("--simulate", default="1e7,1e8", help="sizes extrapolated from the largest")
    parser.add_argument(
        "--cap", type=int, default=dedupindex.Geometry().cap, help="entries per leaf"
    )
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=32)
    parser.add_argument(
        "--firestore",
        action="store_true",
        help="also check the chains' decisions through the Firestore emulator's transactions"
        " (FIRESTORE_EMULATOR_HOST set, as `framesift dev up` prints)",
    )
    args = parser.parse_args(argv)

    def parse(text: str) -> list[int]:
        return [int(float(s)) for s in text.split(",") if s]

    rows = run(parse(args.sizes), parse(args.simulate), args.cap, args.queries, args.seed)
    if args.json:
        for result in rows:
            print(json.dumps(result), flush=True)
    else:
        print("| " + " | ".join(title for _, title in COLUMNS) + " |")
        print("|" + "---|" * len(COLUMNS))
        for result in rows:
            print("| " + " | ".join(f"{result[key]}" for key, _ in COLUMNS) + " |", flush=True)
    if args.firestore:
        checked = emulator_check(args.seed)
        print(json.dumps(checked) if args.json else f"\nFirestore emulator: {checked}")
        if checked["exact_errors"]:
            raise SystemExit("the chains' decisions on the emulator differ from a numpy scan")


def emulator_check(seed: int) -> dict[str, Any]:
    """through_store on the Firestore emulator: 400 hashes at cap 8, in a fresh scope."""
    from framesift.adapters.gcp.firestore import FirestoreDocumentStore

    if not os.environ.get("FIRESTORE_EMULATOR_HOST"):
        raise SystemExit(
            '--firestore needs the emulator: eval "$(framesift dev up | grep ^export)"'
        )
    # Any project id serves on the emulator: the stack's, as `framesift dev up` exports it.
    project = os.environ.get("FRAMESIFT_PROJECT") or os.environ.get("GOOGLE_CLOUD_PROJECT")
    store = FirestoreDocumentStore(project or "framesift-local")
    g = dedupindex.Geometry(threshold=THRESHOLD, cap=8)
    scope = f"collector:bench-{uuid.uuid4().hex[:8]}"
    return through_store(store, "firestore-emulator", 400, g, seed, scope)


if __name__ == "__main__":
    main()

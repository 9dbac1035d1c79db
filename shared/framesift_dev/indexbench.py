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
  ``rounds`` (read round trips of the transaction), all by one instance that knows the split
  nodes its lookups of as many other fresh hashes read first (``dedupindex.KnownSplits``: a
  split node is not read again, a leaf always is), ``docs_written_per_kept`` and
  ``bytes_written_per_kept`` (whole documents: Firestore rewrites them; the chains' splits
  amortised over the kept frames), ``max_doc_bytes`` and ``fits`` (every document under 1 MiB);
- ``kept_per_s``: the contention model's sustained kept frames per second (no decision out of
  attempts, at most one abort per two decisions, the hottest document at 1 write/s); for the
  designs that split (chains, tail, tiered) the highest rate of the ladder at which this holds
  with the leaves split by that rate in steady state (``framesift_dev.hotleaves``: the fresh
  lookups and their decisions rerun over that shape), ``docs_read_at_kept_per_s`` what a lookup
  reads there, ``aborts_at_kept_per_s`` its decisions' aborts per decision there and
  ``aborts_past_kept_per_s`` at the ladder's next rate (the first that fails, null when none
  does), ``kept_per_s_size_splits`` the rule over the cap's shape alone, and
  ``rate_splits`` how the shape was made (``sample``: built; ``scaled``: a simulated size, the
  sample's counts scaled against the cap and its shares of the writes against the rate);
- ``tiered``: the tail looked up with plain reads before the decision (``plain_read_p99_ms``,
  added to ``p99_ms``), the decision's transaction reading and writing the window's chains only,
  and after a keep the tail's append in a transaction of its own (its own leaves read and
  written), both kinds through the contention model;
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
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import numpy as np

from framesift import dedupindex, phashindex, tailindex
from framesift.config import Settings
from framesift.errors import ReadMore
from framesift.ports import DocKey, DocumentStore
from framesift.topology import Collections
from framesift_dev import firestore_limits as fl
from framesift_dev import hotleaves

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


def planted_distance(hashes: np.ndarray, query: str, index: int) -> int:
    return (int(query, 16) ^ int(hashes[index])).bit_count()


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


class EveryNode(Mapping[str, Any]):
    """A modelled index whose every node id may be read (an absent one reads as None or empty);
    it lists nothing."""

    def __getitem__(self, doc_id: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __contains__(self, doc_id: object) -> bool:
        return True


class ScaledTrie(EveryNode):
    """The chain documents of a scope ``scale`` times the sample, as dedupindex.plan reads them:
    a node is split where its scaled count exceeds the cap, or ``limit`` (the entries above
    which it has split by write rate: hotleaves.most_entries)."""

    def __init__(
        self, shape: Shape, scale: float, g: dedupindex.Geometry, limit: float = math.inf
    ) -> None:
        self.shape, self.scale, self.g = shape, scale, g
        self.most = min(g.cap, limit)

    def __getitem__(self, doc_id: str) -> dict[str, Any]:
        _, chain, path = doc_id.split("~")
        start, values = int(chain[1:]), tuple(int(v, 16) for v in path.split("."))
        count = self.shape.count(start, values, self.g) * self.scale
        if count > self.most and len(values) - 1 < self.g.threshold:
            return {"split": True, "count": 0}
        return {"count": round(count)}


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
    query: str,
    docs: Mapping[str, Any],
    g: dedupindex.Geometry,
    known: dedupindex.KnownSplits | None = None,
) -> tuple[dedupindex.Plan, dict[str, Any], int]:
    """dedupindex.plan, reading what it asks for; the plan, the documents read, the rounds."""
    return planned_lookup(query, docs, lambda read: dedupindex.plan(SCOPE, query, read, g), known)


def planned_lookup(
    query: str,
    docs: Mapping[str, Any],
    planner: Callable[[Mapping[str, Any]], dedupindex.Plan],
    known: dedupindex.KnownSplits | None = None,
) -> tuple[dedupindex.Plan, dict[str, Any], int]:
    """A lookup by ``planner`` (a plan over the documents read so far), reading what it asks
    for; the plan, the documents read, the rounds. With ``known`` (the instance's split
    nodes, as the product's lookups keep them) it plans over them too, reads none of them, and
    adds the split nodes it reads."""
    read: dict[str, Any] = {}
    rounds = 0
    while True:
        found = planner(read if known is None else known.over(read))
        if not found.missing:
            return found, read, rounds
        rounds += 1
        got = {doc_id: docs.get(doc_id) for doc_id in found.missing}
        read.update(got)
        if known is not None:
            known.learn(got)


def warmed(
    lookup: Callable[[str, dedupindex.KnownSplits], object], warm: np.ndarray | None
) -> dedupindex.KnownSplits:
    """The split nodes an instance knows once it has looked up ``warm`` (a steady instance has
    decided thousands of frames before; a new one none: ``None``)."""
    known = dedupindex.KnownSplits()
    for value in () if warm is None else warm:
        lookup(f"{int(value):016x}", known)
    return known


@dataclass(frozen=True)
class Search:
    """A design's lookup (a query's plan, the documents read, the rounds) and its verification
    of the candidates read."""

    lookup: Callable[[str], tuple[dedupindex.Plan, dict[str, Any], int]]
    nearest: Callable[[str, dict[str, Any], dedupindex.Plan], Any]


def fresh_lookup(
    look: Lookups, real: bool, query: str, search: Search
) -> tuple[dedupindex.Plan, dict[str, Any], int, int]:
    """A fresh hash's lookup, counted into ``look`` (its compute time measured in a real row):
    the plan, the documents read, the rounds and the bytes read."""
    began = time.perf_counter()
    plan, read, rounds = search.lookup(query)
    if real:
        search.nearest(query, read, plan)
        look.compute_ms.append((time.perf_counter() - began) * 1000)
    read_bytes = sum(doc_bytes(i, d) for i, d in read.items())
    look.bytes_read.append(read_bytes)
    look.docs_read.append(len(read))
    look.rounds.append(rounds)
    return plan, read, rounds, read_bytes


def doc_bytes(doc_id: str, doc: Mapping[str, Any] | None) -> int:
    if doc is None:
        return 0
    if "count" in doc:
        return leaf_bytes(doc_id, int(doc["count"]))
    return leaf_bytes(doc_id, len(doc.get("hashes") or b"") // 8)


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Lookups:
    bytes_read: list[int] = field(default_factory=list)
    docs_read: list[int] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    # Levels a fresh hash's own leaves lie below the first documents, summed over the chains
    # or tables: the splits a kept hash is moved down by (amortised in the writes).
    levels: list[int] = field(default_factory=list)
    # measured (the fresh lookups' in a real row; reported only)
    compute_ms: list[float] = field(default_factory=list)
    decisions: list[fl.Decision] = field(default_factory=list)
    bytes_written: list[int] = field(default_factory=list)
    found: int = 0
    exact_errors: int = 0
    hits: list[tuple[int, bool]] = field(default_factory=list)  # planted: (distance, found)
    # Plain reads before the decision's transaction (the tiered index's tail lookup): seconds.
    plain_read_s: list[float] = field(default_factory=list)
    # A second kind of transaction per kept frame (the tail's append after a tiered keep).
    appends: list[fl.Decision] = field(default_factory=list)
    # The tail's lookups as plain reads and its writes alone (what tiered puts in the above).
    alone_read_s: list[float] = field(default_factory=list)
    alone_writes: list[fl.Decision] = field(default_factory=list)
    # Documents a kept frame reads besides its lookup (tiered: the stage's second attempt reads
    # the window again with the tail in hand, and the append reads the own leaves).
    kept_reads: list[int] = field(default_factory=list)


def compute_model_ms(docs_read: int, read_bytes: int) -> float:
    """A lookup's compute time, modelled (see COMPUTE_MS_PER_DOC): the same on any machine."""
    return COMPUTE_MS_PER_DOC * docs_read + COMPUTE_MS_PER_MB * read_bytes / 1e6


def decision(
    reads: AbstractSet[str], writes: AbstractSet[str], rounds: int, read_bytes: int
) -> fl.Decision:
    ms = compute_model_ms(len(reads), read_bytes)
    seconds = (rounds * RTT_MS + COMMIT_MS + ms) / 1000 + read_bytes / BANDWIDTH
    return fl.Decision(frozenset(reads), frozenset(writes), seconds)


@dataclass(frozen=True)
class AtRate:
    """A design in steady state at an offered rate (hotleaves' rate splits made): its fresh
    lookups over that shape and its hottest document's share of kept frames' writes."""

    look: Lookups
    hottest_share: float

    def holds(self, rate: float) -> bool:
        """The benchmark's rule at ``rate``: the hottest document at Firestore's 1 write/s, and
        each kind of transaction (the decisions; the tail's appends) commits (fl.holds)."""
        kinds = [kind for kind in (self.look.decisions, self.look.appends) if kind]
        return rate * self.hottest_share <= fl.DOCUMENT_WRITES_PER_S and all(
            fl.holds(kind, rate) for kind in kinds
        )

    def aborts(self, rate: float) -> float:
        """The decisions' aborts per decision offered at ``rate`` (the contention model)."""
        return fl.simulate(self.look.decisions, rate).abort_rate


@dataclass(frozen=True)
class Kept:
    """A row's kept/s and what a lookup reads at it."""

    kept_per_s: float
    docs_read: float | None = None  # per lookup at kept_per_s (None: as the row's)
    rate_splits: str | None = None  # "sample" (built), "scaled" (simulated), None: none
    aborts: float | None = None  # per decision at kept_per_s
    aborts_past: float | None = None  # at the ladder's next rate, the first that fails


def sustained(
    at: Callable[[float], AtRate], how: str, rates: Iterable[float] = fl.RATE_LADDER
) -> Kept:
    """The highest of ``rates`` at which the design, split by that rate, holds (0: none)."""
    best = Kept(0.0, None, how)
    for rate in rates:
        state = at(rate)
        if not state.holds(rate):
            return replace(best, aborts_past=round(state.aborts(rate), 3))
        best = Kept(rate, float(np.mean(state.look.docs_read)), how, round(state.aborts(rate), 3))
    return best


class ChainsAt:
    """The chains over ``hashes`` (a scope of ``n``: the sample scaled if larger) at a rate:
    built, then split by hotleaves.chains_split; simulated, a ScaledTrie whose nodes split at
    the rate's entries too (the sample's shares of the writes)."""

    def __init__(
        self,
        hashes: np.ndarray,
        n: int,
        fresh: np.ndarray,
        g: dedupindex.Geometry,
        warm: np.ndarray | None = None,
    ) -> None:
        self.n, self.fresh, self.g, self.warm = n, fresh, g, warm
        self.scale = n / len(hashes)
        self.docs = build_chains(hashes, g) if self.scale == 1.0 else {}
        self.shape = Shape.of(hashes, g) if self.scale != 1.0 else None
        self.states: dict[float, AtRate] = {}

    def __call__(self, rate: float) -> AtRate:
        limit = hotleaves.most_entries(self.n, rate, self.g.split_rate)
        docs: Mapping[str, Any]
        if self.shape is None:
            docs = hotleaves.chains_split(self.docs, self.n, rate, self.g)
            key = float(len(docs))  # splits only add documents: a count is a shape
        else:
            docs = ScaledTrie(self.shape, self.scale, self.g, limit)
            key = -min(limit, self.g.cap)  # nothing splits by rate above the cap
        if key not in self.states:
            look = Lookups()
            hottest = chain_fresh(look, docs, self.fresh, self.g, self.n, False, self.warm)
            if self.shape is None:
                hottest = max(hottest, largest_leaf(docs) / self.n)
            self.states[key] = AtRate(look, hottest)
        return self.states[key]


class TailAt:
    """The tail over ``hashes`` (a scope of ``n``) at a rate: TailDocs whose nodes split at the
    rate's entries too, the hottest leaf from hotleaves.tail (every leaf of the sample)."""

    def __init__(
        self,
        hashes: np.ndarray,
        keys: list[np.ndarray],
        n: int,
        fresh: np.ndarray,
        g: tailindex.TailGeometry,
        warm: np.ndarray | None = None,
    ) -> None:
        self.keys, self.n, self.fresh, self.g, self.warm = keys, n, fresh, g, warm
        self.scale = n / len(hashes)
        self.splits = {s.rate: s for s in hotleaves.tail(hashes, g, scale=self.scale)}
        self.states: dict[float, AtRate] = {}

    def __call__(self, rate: float) -> AtRate:
        split = self.splits[rate]
        key = rate if split.rate_splits else 0.0
        if key not in self.states:
            look = Lookups()
            limit = hotleaves.most_entries(self.n, key, self.g.split_rate)
            docs = TailDocs(self.keys, self.scale, self.g, limit)
            hottest = tail_fresh(look, docs, self.fresh, self.n, False, self.warm)
            self.states[key] = AtRate(look, max(hottest, split.hottest_share))
        return self.states[key]


def tiered_at(window: ChainsAt, tail: TailAt) -> Callable[[float], AtRate]:
    def at(rate: float) -> AtRate:
        w, t = window(rate), tail(rate)
        return AtRate(tiered(w.look, t.look), max(w.hottest_share, t.hottest_share))

    return at


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
    by_distance: dict[str, float] | None = None,
    kept: Kept | None = None,
) -> dict[str, Any]:
    """One design's row. Recall: of the planted lookups, or (``by_distance``, the tail's) the
    mean over distances 1..t of a larger vectorised sample. ``kept``: the kept/s with rate
    splits (None: the design splits by size only, its hottest document ``hottest_share``)."""
    pool = lookups.decisions
    size_splits = fl.sustained_rate(pool, hottest_share)
    kept = kept or Kept(size_splits)
    at_fleet = fl.simulate(pool, FLEET_RATE)
    before = sorted(lookups.plain_read_s)
    plain_p99_s = before[min(len(before) - 1, int(0.99 * len(before)))] if before else 0.0
    docs_read = float(np.mean(lookups.docs_read))
    kept_reads = float(np.mean(lookups.kept_reads)) if lookups.kept_reads else 0.0
    bytes_read = float(np.mean(lookups.bytes_read))
    if by_distance is None:
        by_distance = {
            str(d): round(float(np.mean([hit for at, hit in lookups.hits if at == d])), 5)
            for d in sorted({at for at, _ in lookups.hits})
        }
        recall = lookups.found / planted_count
    else:
        recall = float(np.mean(list(by_distance.values())))
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
        "kept_per_s": round(kept.kept_per_s),
        "kept_per_s_size_splits": round(size_splits),
        "rate_splits": kept.rate_splits,
        "docs_read_at_kept_per_s": round(
            docs_read if kept.docs_read is None else kept.docs_read, 1
        ),
        "aborts_at_kept_per_s": kept.aborts,
        "aborts_past_kept_per_s": kept.aborts_past,
        "p99_ms": round((at_fleet.p99_s + plain_p99_s) * 1000, 1),
        "plain_read_p99_ms": round(plain_p99_s * 1000, 1),
        "compute_ms": round(compute_model_ms(round(docs_read), round(bytes_read)), 3),
        "compute_ms_measured": (
            round(float(np.median(lookups.compute_ms)), 3) if lookups.compute_ms else None
        ),
        "aborts_at_100_per_s": round(at_fleet.abort_rate, 3),
        "ramp_minutes": fl.ramp_minutes(500 * (docs_read + docs_written)),
        "recall": round(recall, 4),
        "recall_by_distance": by_distance,
        "recall_at_t": by_distance.get(str(THRESHOLD)),
        "recall_planted_lookups": round(lookups.found / planted_count, 4)
        if planted_count
        else None,
        "exact_errors": lookups.exact_errors,
        "false_match_rate": round(false_rate, 4),
        "docs_read_per_kept": round(docs_read + kept_reads, 1),
        "usd_per_m_kept": round(
            ((docs_read + kept_reads) * USD_READS + docs_written * USD_WRITES) * 10, 2
        ),
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
    look = Lookups()
    for query, index in queries:
        ids = phashindex.bucket_ids(SCOPE, query, THRESHOLD)
        if scale == 1.0:
            match = phashindex.nearest(query, (buckets.docs.get(i) for i in ids), THRESHOLD)
            best = int(within(hashes, query).min())
            hit = match is not None
            errors += match is None or match.distance != best
        else:
            hit = bool(
                set(ids)
                & set(phashindex.bucket_ids(SCOPE, f"{int(hashes[index]):016x}", THRESHOLD))
            )
        found += hit
        look.hits.append((planted_distance(hashes, query, index), hit))
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
    warm: np.ndarray | None = None,
) -> tuple[Lookups, float, float, float, int]:
    scale = n / len(hashes)
    docs: Mapping[str, Any] = (
        build_chains(hashes, g) if scale == 1.0 else ScaledTrie(Shape.of(hashes, g), scale, g)
    )
    look = Lookups()
    for query, index in queries:
        plan, read, _ = chain_lookup(query, docs, g)
        if scale == 1.0:
            match = dedupindex.nearest(query, read, plan, g)
            best = int(within(hashes, query).min())
            hit = match is not None
            look.exact_errors += match is None or match.distance != best
        else:
            stored = f"{int(hashes[index]):016x}"
            leaves = {dedupindex.leaf_of(SCOPE, stored, s, docs, g) for s in range(g.chains)}
            hit = bool(leaves & set(plan.leaves))
        look.found += hit
        look.hits.append((planted_distance(hashes, query, index), hit))
    hottest = chain_fresh(look, docs, fresh, g, n, scale == 1.0, warm)
    # Splits, amortised (an upper bound): each kept hash moves down one level per split above
    # its leaf in each chain; a split writes its node and its children (at most 2^6 + 1
    # documents) once per ``cap`` hashes that reach it.
    levels = float(np.mean(look.levels))
    split_docs = levels * (65 / g.cap)
    split_bytes = levels * dedupindex.ENTRY_BYTES
    bound = leaf_bytes(dedupindex.node_id(SCOPE, dedupindex.Node(0, (63,) * g.chains)), g.cap)
    max_doc = bound if scale != 1.0 else max(doc_bytes(i, d) for i, d in docs.items())
    if scale == 1.0:  # every leaf is there: the hottest is the largest (the sampled one otherwise)
        hottest = max(hottest, largest_leaf(docs) / n)
    return look, hottest, split_docs, split_bytes, max_doc


def largest_leaf(docs: Mapping[str, Any]) -> int:
    return max(dedupindex.entries([d]) for d in docs.values() if not dedupindex.is_split(d))


def chain_fresh(
    look: Lookups,
    docs: Mapping[str, Any],
    fresh: np.ndarray,
    g: dedupindex.Geometry,
    n: int,
    real: bool,
    warm: np.ndarray | None = None,
) -> float:
    """The fresh lookups over the chain documents ``docs`` and each one's decision if kept,
    counted into ``look``, by one instance (its known splits) that looked up ``warm`` before;
    the hottest own leaf's share of kept frames' writes among them."""
    hottest = 0.0
    known = warmed(lambda q, k: chain_lookup(q, docs, g, k), warm)
    search = Search(
        lambda q: chain_lookup(q, docs, g, known),
        lambda q, read, plan: dedupindex.nearest(q, read, plan, g),
    )
    for value in fresh:
        query = f"{int(value):016x}"
        _plan, read, rounds, read_bytes = fresh_lookup(look, real, query, search)
        own = {dedupindex.leaf_of(SCOPE, query, s, docs, g) for s in range(g.chains)}
        look.levels.append(sum(leaf.count(".") - g.min_depth for leaf in own))
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
    return hottest


# --- the tail: bit-sampling LSH over every kept hash ----------------------------------------


@cache
def permutation(table: int) -> np.ndarray:
    """tailindex.byte_tables as an array (8 x 256): a hash's bits in table ``table``'s order."""
    return np.array(tailindex.byte_tables(table), dtype=np.uint64)


@cache
def inverse_permutation(table: int) -> np.ndarray:
    """The byte tables that take a hash in table ``table``'s order back to the hash."""
    inverse = np.zeros((8, 256), dtype=np.uint64)
    values = np.arange(256)
    for place, position in enumerate(tailindex.order(table)):
        bit = 63 - place  # the permuted hash's bit that holds ``position``
        inverse[bit // 8][(values >> (bit % 8)) & 1 == 1] |= np.uint64(1 << position)
    return inverse


def permute(hashes: np.ndarray, tables: np.ndarray) -> np.ndarray:
    result = np.zeros(len(hashes), dtype=np.uint64)
    for byte in range(8):
        result |= tables[byte][((hashes >> np.uint64(8 * byte)) & np.uint64(0xFF)).astype(np.intp)]
    return result


def sorted_keys(hashes: np.ndarray, g: tailindex.TailGeometry) -> list[np.ndarray]:
    """Each table's hashes in its order, sorted: a node's hashes are a range of them."""
    return [np.sort(permute(hashes, permutation(table))) for table in range(g.tables)]


class TailDocs(EveryNode):
    """The tail's node documents over a sample, as tailindex.plan reads them (every node,
    never stored: each is the range of its table's sorted keys that starts with its key). With
    ``scale`` the scope is that many times the sample, as ScaledTrie: a node's count is its
    sample count times the scale, split where that passes the cap, a leaf holds a count.
    Without, a node splits where more than ``cap`` hashes reached it, as tailindex.added
    leaves it (the final shape does not depend on the order). ``limit``: the entries above
    which a node has split by write rate too (hotleaves.most_entries)."""

    def __init__(
        self,
        keys: list[np.ndarray],
        scale: float,
        g: tailindex.TailGeometry,
        limit: float = math.inf,
    ) -> None:
        self.sorted_keys, self.scale, self.g = keys, scale, g
        self.most = min(g.cap, limit)

    def span(self, table: int, depth: int, node_key: int) -> tuple[int, int]:
        shift = 64 - self.g.bits(depth)
        keys = self.sorted_keys[table]
        begin = int(np.searchsorted(keys, np.uint64(node_key << shift)))
        end = (node_key + 1) << shift
        return begin, len(keys) if end >= 2**64 else int(np.searchsorted(keys, np.uint64(end)))

    def __getitem__(self, doc_id: str) -> dict[str, Any] | None:
        _, table_text, depth_text, key_text = doc_id.split("~")
        table, depth = int(table_text[1:]), int(depth_text)
        begin, end = self.span(table, depth, int(key_text, 16))
        count = (end - begin) * self.scale
        if count > self.most and depth < self.g.max_depth:
            return {"split": True, "count": 0}
        if self.scale != 1.0:
            return {"count": round(count)}
        if begin == end:
            return None
        hashes = permute(self.sorted_keys[table][begin:end], inverse_permutation(table))
        return {"hashes": hashes.astype(">u8").tobytes()}


def tail_lookup(
    query: str,
    docs: Mapping[str, Any],
    g: tailindex.TailGeometry,
    known: dedupindex.KnownSplits | None = None,
) -> tuple[dedupindex.Plan, dict[str, Any], int]:
    return planned_lookup(query, docs, lambda read: tailindex.plan(SCOPE, query, read, g), known)


def near_pairs(
    hashes: np.ndarray, per_distance: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``per_distance`` planted near duplicates of random stored hashes at each distance 1..t:
    (stored, query, distance)."""
    distance = np.repeat(np.arange(1, THRESHOLD + 1), per_distance)
    stored = hashes[rng.integers(len(hashes), size=len(distance))]
    positions = np.argsort(rng.random((len(distance), 64)), axis=1).astype(np.uint64)
    flips = np.where(
        np.arange(64) < distance[:, None], np.uint64(1) << positions, np.uint64(0)
    ).astype(np.uint64)
    return stored, stored ^ np.bitwise_or.reduce(flips, axis=1), distance


def tail_found(docs: TailDocs, stored: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Whether each query's lookup reads the leaf that holds its stored hash in some table,
    vectorised (tailindex.plan's walk: a query meets the stored hash in a table iff they agree
    on the table's first bits and differ in at most ``flips`` of the split bits below them
    that key the stored hash's leaf)."""
    g = docs.g
    found = np.zeros(len(stored), dtype=bool)
    first = np.uint64(64 - g.first_bits)
    for table in range(g.tables):
        ps, pq = (permute(v, permutation(table)) for v in (stored, queries))
        differ = ps ^ pq
        agree_first = differ >> first == 0
        keys = docs.sorted_keys[table]
        deeper = np.ones(len(stored), dtype=bool)
        for depth in range(g.max_depth + 1):
            shift = np.uint64(64 - g.bits(depth))
            prefix = ps >> shift
            begin = np.searchsorted(keys, prefix << shift)
            end = np.where(
                prefix == (np.uint64(2**64 - 1) >> shift),
                len(keys),
                np.searchsorted(keys, (prefix + np.uint64(1)) << shift),
            )
            split = (end - begin) * docs.scale > g.cap
            if depth == g.max_depth:
                split[:] = False
            leaf = deeper & ~split
            # The bits keying this depth's nodes that differ, the first bits' taken out.
            split_differ = (differ >> shift) ^ ((differ >> first) << (first - shift))
            probed = np.bitwise_count(split_differ) <= g.flips
            found |= leaf & agree_first & probed
            deeper &= split
            if not deeper.any():
                break
    return found


def measure_tail(
    hashes: np.ndarray,
    keys: list[np.ndarray],
    n: int,
    queries: list[tuple[str, int]],
    fresh: np.ndarray,
    g: tailindex.TailGeometry,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
    warm: np.ndarray | None = None,
) -> tuple[Lookups, float, float, float, int, dict[str, float]]:
    """The tail's lookups through tailindex's code (plan, then nearest in a real row) and its
    recall by distance, vectorised over ``pairs``. A planted lookup counts as an exactness
    error when its stored hash shares a leaf with it (``tail_found``) and tailindex.nearest
    does not find it or a nearer one."""
    scale = n / len(hashes)
    docs = TailDocs(keys, scale, g)
    look = Lookups()
    for query, index in queries:
        plan, read, _ = tail_lookup(query, docs, g)
        distance = planted_distance(hashes, query, index)
        shared = bool(
            tail_found(
                docs, hashes[index : index + 1], np.array([int(query, 16)], dtype=np.uint64)
            )[0]
        )
        if scale == 1.0:
            match = tailindex.nearest(query, read, plan, g)
            look.exact_errors += shared and (match is None or match.distance > distance)
        look.found += shared
        look.hits.append((distance, shared))
    hottest = tail_fresh(look, docs, fresh, n, scale == 1.0, warm)
    # Splits, amortised (an upper bound), as the chains': each kept hash moves down once per
    # level above its leaf, in every table; a split writes 1 + 2^split_bits documents once per
    # ``cap`` hashes that reach it.
    levels = float(np.mean(look.levels))
    split_docs = levels * ((1 + 2**g.split_bits) / g.cap)
    split_bytes = levels * dedupindex.ENTRY_BYTES
    max_doc = leaf_bytes(tailindex.node_id(SCOPE, g.tables - 1, g.max_depth, 2**64 - 1), g.cap)
    stored, planted_queries, pair_distance = pairs
    found = tail_found(docs, stored, planted_queries)
    by_distance = {
        str(d): round(float(found[pair_distance == d].mean()), 5) for d in range(1, THRESHOLD + 1)
    }
    return look, hottest, split_docs, split_bytes, max_doc, by_distance


def tail_fresh(
    look: Lookups,
    docs: TailDocs,
    fresh: np.ndarray,
    n: int,
    real: bool,
    warm: np.ndarray | None = None,
) -> float:
    """The fresh lookups over the tail's documents ``docs`` and each one's decision if kept (in
    one transaction, the tail's own row), its plain reads' time and its append after a keep (a
    transaction of its own: the own leaves read and written, as the tiered index does), counted
    into ``look``, by one instance that looked up ``warm`` before; the hottest own leaf's share
    of kept frames' writes among them."""
    g = docs.g
    hottest = 0.0
    known = warmed(lambda q, k: tail_lookup(q, docs, g, k), warm)
    search = Search(
        lambda q: tail_lookup(q, docs, g, known),
        lambda q, read, plan: tailindex.nearest(q, read, plan, g),
    )
    for value in fresh:
        query = f"{int(value):016x}"
        _, read, rounds, read_bytes = fresh_lookup(look, real, query, search)
        # A kept hash goes down its own paths (the lookup read them, and its probes).
        own = tailindex.own_plan(SCOPE, query, known.over(read), g)
        look.levels.append(own.nodes - g.tables)  # a table's path is depth + 1 nodes
        leaves = [(i, read[i]) for i in own.leaves]
        counts = [
            int(d["count"]) if d and "count" in d else dedupindex.entries([d]) for _, d in leaves
        ]
        written = sum(doc_bytes(i, d) for i, d in leaves)
        look.bytes_written.append(written + len(leaves) * dedupindex.ENTRY_BYTES + OWNER_BYTES)
        owner = phashindex.owner_id(SCOPE, query)
        look.decisions.append(decision(set(read), {*own.leaves, owner}, rounds, read_bytes))
        look.alone_writes.append(decision(set(own.leaves), set(own.leaves), 1, written))
        plain_ms = rounds * RTT_MS + compute_model_ms(len(read), read_bytes)
        look.alone_read_s.append(plain_ms / 1000 + read_bytes / BANDWIDTH)
        hottest = max(hottest, (max(counts) + 1) / n)
    return hottest


def tiered(window: Lookups, tail: Lookups) -> Lookups:
    """The tail looked up with plain reads (no transaction), then one decision reading and
    writing the window's chains only (and the owner), and after a keep the tail's append in a
    transaction of its own (its own leaves read and written): the documents and bytes add, the
    rounds follow each other, the contention model sees the window's decisions and the appends
    (two kinds, on disjoint documents), and the plain reads add to the decision time only."""
    both = Lookups()
    for i, a in enumerate(window.decisions):
        both.bytes_read.append(window.bytes_read[i] + tail.bytes_read[i])
        both.docs_read.append(window.docs_read[i] + tail.docs_read[i])
        both.rounds.append(window.rounds[i] + tail.rounds[i])
        both.bytes_written.append(window.bytes_written[i] + tail.bytes_written[i] - OWNER_BYTES)
        both.decisions.append(a)
    both.plain_read_s = list(tail.alone_read_s)
    both.appends = list(tail.alone_writes)
    both.kept_reads = [
        window.docs_read[i] + len(append.reads) for i, append in enumerate(tail.alone_writes)
    ]
    if window.compute_ms and tail.compute_ms:
        both.compute_ms = [a + b for a, b in zip(window.compute_ms, tail.compute_ms, strict=True)]
    return both


# --- the tail's geometry: tables needed and cost by cap and split bits ----------------------


@cache
def first_meetings(
    bits: int, pairs: int = 1_000_000, seed: int = 32, most: int = 1000
) -> np.ndarray:
    """For ``pairs`` random pairs at each distance 1..t (rows), the first of tailindex's tables
    in which they meet when every leaf is keyed by ``bits`` bits (``most``: never)."""
    masks = np.array(
        [sum(1 << p for p in tailindex.order(j)[:bits]) for j in range(most)], dtype=np.uint64
    )
    rng = np.random.default_rng(seed)
    first = np.full((THRESHOLD, pairs), most, dtype=np.int64)
    for d in range(1, THRESHOLD + 1):
        positions = np.argsort(rng.random((pairs, 64)), axis=1)[:, :d].astype(np.uint64)
        differ = np.bitwise_or.reduce(np.uint64(1) << positions, axis=1)
        unmet = np.arange(pairs)
        for j in range(most):
            meets = (differ[unmet] & masks[j]) == 0
            first[d - 1][unmet[meets]] = j
            unmet = unmet[~meets]
            if not len(unmet):
                break
    return first


def recall_with(bits: int, tables: int) -> tuple[float, float]:
    """Recall of planted near duplicates (distance uniform in 1..t) and at distance t, with
    ``tables`` tables whose leaves are keyed by ``bits`` bits."""
    met = first_meetings(bits) < tables
    return float(met.mean()), float(met[-1].mean())


def tables_needed(bits: int, target: float = 0.999, most: int = 1000) -> int:
    """The fewest tables whose recall (distance uniform in 1..t) reaches ``target``."""
    for tables in range(1, most):
        if recall_with(bits, tables)[0] >= target:
            return tables
    return most


def tail_tradeoffs(
    sizes: list[int], geometries: list[tuple[int, int, int]], at: int = 10**8
) -> Iterator[dict[str, Any]]:
    """Per (cap, first_bits, split_bits): the tables needed for 0.999 recall at ``at`` uniform
    hashes, and at each of ``sizes`` what a lookup, a kept frame and its storage cost with them,
    from the expected trie (a node splits where its expected count passes the cap; a table's
    non-empty nodes as balls in bins). The largest commit adds the window's ~15 writes (its 11
    leaves and the others) to the tail's leaves, one split and the owner."""

    def leaf_depth(n: int, g: tailindex.TailGeometry) -> int:
        depth = 0
        while n / 2 ** g.bits(depth) > g.cap and depth < g.max_depth:
            depth += 1
        return depth

    for cap, first_bits, split_bits in geometries:
        g = tailindex.TailGeometry(cap=cap, first_bits=first_bits, split_bits=split_bits)
        tables = tables_needed(g.bits(leaf_depth(at, g)))
        for n in sizes:
            depth = leaf_depth(n, g)
            bits = g.bits(depth)
            recall, at_t = recall_with(bits, tables)
            doc_id = tailindex.node_id(SCOPE, tables - 1, depth, 2**bits - 1)
            empty = leaf_bytes(doc_id, 0)
            leaves = 2**bits * -math.expm1(-n / 2**bits)  # non-empty leaves per table
            docs_read = tables * (depth + 1)
            docs_written = tables + 1 + tables * depth * (1 + 2**split_bits) / cap
            splits = sum(2 ** g.bits(d) for d in range(depth))  # split nodes per table
            stored = tables * (n * dedupindex.ENTRY_BYTES + (leaves + splits) * empty)
            yield {
                "cap": cap,
                "first_bits": first_bits,
                "split_bits": split_bits,
                "tables": tables,
                "n": n,
                "leaf_bits": bits,
                "recall": round(recall, 5),
                "recall_at_t": round(at_t, 4),
                "rounds": depth + 1,
                "docs_read_per_lookup": docs_read,
                "bytes_read_per_lookup": round(
                    tables * (leaf_bytes(doc_id, round(n / 2**bits)) + depth * empty)
                ),
                "docs_written_per_kept": round(docs_written, 2),
                "largest_commit_writes": tables + 15 + 1 + 2**split_bits + 1,
                "bytes_stored_per_kept": round(stored / n),
                "usd_per_m_kept": round(
                    (docs_read * USD_READS + docs_written * USD_WRITES) * 10, 2
                ),
            }


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
    sizes: list[int],
    simulate: list[int],
    cap: int,
    queries: int,
    seed: int,
    tail: tailindex.TailGeometry | None = None,
    window: int = 10**6,
    tail_pairs: int = 30000,
) -> Iterator[dict[str, Any]]:
    """The rows: per data set and size, buckets, chains, the tail (``tail``'s geometry) and
    the tiered index (the chains over a generation of ``window`` hashes, and the tail over n;
    a planted duplicate's stored hash is in the window with probability window / n)."""
    g = dedupindex.Geometry(threshold=THRESHOLD, cap=cap, min_depth=1)
    tg = tail or tailindex.TailGeometry(threshold=THRESHOLD)
    datasets = (("uniform", uniform), ("clustered", Clustered(np.random.default_rng(seed))))
    for dataset, generate in datasets:
        rng = np.random.default_rng(seed)
        sample = np.zeros(0, dtype=np.uint64)
        keys: list[np.ndarray] = []
        windows: dict[int, tuple[Lookups, float, float, float, int]] = {}
        windows_at: dict[int, ChainsAt] = {}
        for n in [*sizes, *simulate]:
            simulated = n not in sizes
            if not simulated:
                sample = generate(n, rng)
                keys = sorted_keys(sample, tg)
            plant = planted(sample, queries // 2, rng)
            fresh = generate(queries, rng)
            # What the instance deciding the fresh frames looked up before (its known splits),
            # from a generator of its own: the other draws stay what they were without it.
            warm = generate(queries, np.random.default_rng([seed, n, 1]))
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
            chains = measure_chains(sample, n, plant, fresh, g, warm)
            look, hottest, split_docs, split_bytes, max_doc = chains
            windows[n] = chains
            windows_at[n] = ChainsAt(sample, n, fresh, g, warm)
            how = "scaled" if simulated else "sample"
            yield row(
                "chains", dataset, n, simulated, look, len(plant), g.chains + 1 + split_docs,
                split_bytes, hottest, max_doc, false_rate, kept=sustained(windows_at[n], how),
            )  # fmt: skip
            # Their own generator: the other designs' rows stay what they were without the tail.
            pairs = near_pairs(sample, tail_pairs, np.random.default_rng([seed, n]))
            t_look, t_hottest, t_split_docs, t_split_bytes, t_max_doc, by_distance = measure_tail(
                sample, keys, n, plant, fresh, tg, pairs, warm
            )
            tail_at = TailAt(sample, keys, n, fresh, tg, warm)
            yield row(
                "tail", dataset, n, simulated, t_look, len(plant), tg.tables + 1 + t_split_docs,
                t_split_bytes, t_hottest, t_max_doc, false_rate, by_distance,
                sustained(tail_at, how),
            )  # fmt: skip
            size = min(n, window)
            if size not in windows:
                windows[size] = measure_chains(sample, size, plant, fresh, g, warm)
                windows_at[size] = ChainsAt(sample, size, fresh, g, warm)
            w_look, w_hottest, w_split_docs, w_split_bytes, w_max_doc = windows[size]
            share = size / n
            exact = {d: share + (1 - share) * r for d, r in by_distance.items()}
            yield row(
                "tiered", dataset, n, simulated, tiered(w_look, t_look), 0,
                g.chains + tg.tables + 1 + w_split_docs + t_split_docs,
                w_split_bytes + t_split_bytes, max(w_hottest, t_hottest),
                max(w_max_doc, t_max_doc), false_rate,
                {d: round(r, 5) for d, r in exact.items()},
                sustained(tiered_at(windows_at[size], tail_at), how),
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
    ("docs_read_at_kept_per_s", "docs read at kept/s"),
    ("kept_per_s_size_splits", "kept/s size splits only"),
    ("p99_ms", "p99 ms"),
    ("compute_ms", "compute ms"),
    ("ramp_minutes", "ramp min"),
    ("recall", "recall"),
    ("recall_at_t", f"recall d={THRESHOLD}"),
    ("false_match_rate", "false match"),
    ("usd_per_m_kept", "$/M kept"),
]


# (cap, first_bits, split_bits) compared by --tail-tradeoffs.
TRADEOFFS = [(2048, 11, 6), (2048, 11, 2), (2048, 11, 1), (512, 11, 6), (512, 11, 1)]
TRADEOFFS += [(2048, 14, 3), (2048, 17, 6), (512, 17, 1)]


def print_rows(
    rows: Iterable[dict[str, Any]], as_json: bool, columns: list[tuple[str, str]] | None
) -> None:
    """One JSON object a line, or a markdown table of ``columns`` (None: every field)."""
    if as_json:
        for result in rows:
            print(json.dumps(result), flush=True)
        return
    for i, result in enumerate(rows):
        shown = columns or [(key, key) for key in result]
        if not i:
            print("| " + " | ".join(title for _, title in shown) + " |")
            print("|" + "---|" * len(shown))
        print("| " + " | ".join(f"{result[key]}" for key, _ in shown) + " |", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per design and size")
    parser.add_argument("--sizes", default="1e5,1e6", help="sizes run for real, in memory")
    parser.add_argument("--simulate", default="1e7,1e8", help="sizes extrapolated from the largest")
    parser.add_argument(
        "--cap", type=int, default=dedupindex.Geometry().cap, help="entries per leaf"
    )
    parser.add_argument("--queries", type=int, default=1000)
    tail = tailindex.TailGeometry()
    parser.add_argument("--tables", type=int, default=tail.tables, help="the tail's tables")
    parser.add_argument("--tail-cap", type=int, default=tail.cap, help="entries per tail leaf")
    parser.add_argument(
        "--split-bits", type=int, default=tail.split_bits, help="bits a tail split adds"
    )
    parser.add_argument(
        "--first-bits", type=int, default=tail.first_bits, help="bits keying a tail's first nodes"
    )
    parser.add_argument(
        "--flips", type=int, default=tail.flips, help="split bits a tail lookup probes flipped"
    )
    parser.add_argument(
        "--window", default="1e6", help="hashes in the tiered index's window generation"
    )
    parser.add_argument(
        "--tail-pairs", type=int, default=30000, help="planted pairs per distance (tail recall)"
    )
    parser.add_argument("--seed", type=int, default=32)
    parser.add_argument(
        "--tail-tradeoffs",
        action="store_true",
        help="instead: the tail's tables needed and costs by cap, first and split bits",
    )
    parser.add_argument(
        "--firestore",
        action="store_true",
        help="also check the chains' decisions through the Firestore emulator's transactions"
        " (FIRESTORE_EMULATOR_HOST set, as `framesift dev up` prints)",
    )
    args = parser.parse_args(argv)

    def parse(text: str) -> list[int]:
        return [int(float(s)) for s in text.split(",") if s]

    tg = tailindex.TailGeometry(
        threshold=THRESHOLD,
        tables=args.tables,
        cap=args.tail_cap,
        first_bits=args.first_bits,
        split_bits=args.split_bits,
        flips=args.flips,
    )
    if args.tail_tradeoffs:
        sizes = parse(args.sizes) + parse(args.simulate)
        print_rows(tail_tradeoffs(sizes, TRADEOFFS), args.json, None)
        return
    rows = run(
        parse(args.sizes), parse(args.simulate), args.cap, args.queries, args.seed, tg,
        int(float(args.window)), args.tail_pairs,
    )  # fmt: skip
    print_rows(rows, args.json, COLUMNS)
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

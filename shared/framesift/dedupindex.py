"""A near-duplicate index of 64-bit pHashes whose documents stay small however large the scope.

Today's index (:mod:`framesift.phashindex`) keeps one bucket document per (scope, band, band
value): a bucket holds about ``n / 2^6`` hashes, so documents grow with the scope until Firestore's
1 MiB limit stops it near 1.6 M kept frames, every kept frame rewrites 11 growing documents, and a
scope has only some 640 documents to spread its writes over (about one sustained write per second
each). This module keeps the same exact guarantee with documents bounded by a cap.

**Chains.** The hash is cut into the same ``t + 1`` bands (``phashindex.bands``). For each band
``i`` there is a *chain*: the bands in ring order ``i, i+1, ..., i+t`` (mod ``t + 1``). A chain is
a trie: a node's path is the values of its chain's first bands, ``(v_i, v_{i+1}, ..., v_{i+d})``
for a node at depth ``d``. A node document is either a *leaf*, which holds the packed hashes and
colour layouts of the kept frames on its path (the same fields as phashindex's buckets, so
``phashindex.nearest`` verifies candidates), or *split* (``{"split": True}``, no hashes): its
hashes moved to its children, one per value of the chain's next band. A leaf that would hold
more than ``cap`` hashes splits, in the transaction that adds the hash that overflows it, and a
split node never becomes a leaf again. Nodes shallower than ``min_depth`` are split from the
start (no document): at ``min_depth = 1`` a chain's first documents are keyed by two bands,
which spreads a small scope's writes over thousands of documents instead of tens.

**Why splitting on more bits keeps recall exact: the pigeonring principle.** Splitting a bucket
on bits of other bands breaks plain pigeonhole: a hash within ``t`` shares one band exactly but
may differ anywhere else, so it may sit in any child. The stronger *pigeonring* principle (Qin
and Xiao, "Pigeonring: a principle for faster thresholded similarity search", PVLDB 12(1), 2018)
bounds where: if the per-band distances ``d_0 .. d_t`` of two hashes on the ring of ``t + 1``
bands sum to at most ``t``, some band ``i`` starts a chain along which *every* prefix of ``l``
bands has distance at most ``l * t / (t + 1)``, i.e. at most ``l - 1`` (band ``i`` exact, the
next two bands together at most 1 bit, the next three at most 2, ...). Proof: with ``c_j = d_j -
t/(t+1)``, whose sum is at most 0, start just after the prefix sum's maximum; every partial sum
from there is at most 0. So a lookup reads, in chain ``i``, only the nodes whose path is within
that budget of the query's own (:func:`plan`): every hash within ``t`` lies on such a path in
at least one chain, and is found whatever the trie's shape (exact recall; the unit tests plant
hashes at exactly ``t`` bits across band boundaries).

**Cost.** A kept frame writes ``t + 1`` leaves (one per chain), each at most ``cap`` entries of 20
bytes; an overflowing leaf is rewritten as a split marker plus the children its entries move to
(at most 2^6 + 1 documents and ``cap`` entries, far under 500 writes and 10 MiB per commit). A
lookup reads the budget's nodes: their number grows by a bounded factor per trie level and the
levels grow with ``log n``, so bytes read grow about as ``n^0.5`` (exact search within ``t``
cannot be bounded by point reads) while today's grow as ``n``; see docs/dedup-index.md for the
measured numbers (benchmarks/index.py).

**Concurrency, as before: a common document.** If ``a`` and ``b`` are within ``t``, some chain
``i`` has ``a``'s path within ``b``'s budget at every depth (and ``b``'s within ``a``'s, the
distance being symmetric). Whichever is decided second reads, in chain ``i``, the node on the
other's path: the node the first one's transaction wrote (its leaf), or, if that leaf split,
a split node on that path, which makes the reader ask for the children within budget
(``ReadMore``, in the same transaction) down to the leaf that holds the first hash. Splits are
written in the transaction of the hash that overflows the leaf, so a reader that read the leaf
before the split conflicts with the split's commit (it read a document the split wrote) and is
retried; a reader that reads after it sees the split marker and descends. Two concurrent
deciders therefore read and write a common document and cannot both commit on stale reads: no
two frames within ``t`` are both kept in one scope.

**Hot leaves split by write rate.** Firestore sustains about one write per second per document,
and clustered hashes send a large share of kept frames to a few leaves far under the cap (one
first-level leaf takes about 1 % of a clustered scope's kept frames: 100 kept frames/s). So a
leaf also keeps an estimate of its write rate (``rate``, writes per second, estimated at
``rate_at``, Unix seconds: an exponentially weighted count with a time constant of
:data:`RATE_TAU_S`, :func:`write_rate`), updated by each kept frame's write when the decision
says when it was made (``now``; the migration and bulk builds update none), and a leaf whose
rate passes the geometry's ``split_rate`` splits even under the cap. It is the same split as
the cap's, in the same transaction (marker and children by the next band), so recall and the
concurrency guarantee below are unchanged; its children start with their share of the rate
(by entries), and one still hot splits again on its own next write.

**Known splits.** A split node never becomes a leaf again and is never written again, so an
instance keeps the split nodes it has read (:class:`KnownSplits`) and its later lookups plan
over them without reading them: the leaves of a known shape are read in one round, inside the
decision's transaction, and only they. The guarantee above holds: a lookup still reads every
leaf on its budget's paths (a leaf is never cached), a leaf that split since it was cached is
read as a split marker and the lookup descends, and a split in flight writes the leaf the
lookup read, so one of the two transactions is retried. Fewer rounds make a decision shorter,
and a shorter transaction is aborted less often by the writes of others in a dense cluster.

Writes replace the fields they name (the document store merges top-level fields), so a split
node is written with empty ``hashes`` and ``layouts`` as well as its ``split`` flag.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations
from typing import Any

from framesift import phashindex
from framesift.imagestats import LAYOUT_UNKNOWN

LAYOUT_BYTES = len(LAYOUT_UNKNOWN) // 2
ENTRY_BYTES = 8 + LAYOUT_BYTES  # a packed hash and its colour layout
# The write-rate estimate's time constant: a leaf's rate follows a change of its true rate
# within about a minute, and at the split rate (0.5/s) one estimate of a Poisson stream of
# writes is within about 0.065/s of it (sqrt(rate / (2 tau))), so a leaf at 0.3/s rarely
# splits and one at 0.7/s does within a minute or two.
RATE_TAU_S = 60.0
# Firestore sustains about 1 write per second per document; a leaf splits at half of it, so
# it splits before contention (not after), its children start well under the limit, and the
# estimate's noise (above) stays small against the margin.
SPLIT_RATE = 0.5


@dataclass(frozen=True)
class Geometry:
    """The index's shape: the Hamming threshold, the most entries a leaf holds, the depth
    of a chain's first documents, and the write rate that splits a leaf under the cap."""

    threshold: int = 10
    cap: int = 2048
    min_depth: int = 1
    split_rate: float = SPLIT_RATE  # writes/s above which a leaf splits even under the cap

    def __post_init__(self) -> None:
        if self.cap < 1:
            raise ValueError("a leaf must hold at least one hash")
        check_split_rate(self.split_rate)
        if not 0 <= self.min_depth <= self.threshold:
            raise ValueError("min_depth must be between 0 and the threshold")
        phashindex.bands(self.threshold)  # validates the threshold

    @property
    def bands(self) -> tuple[tuple[int, int], ...]:
        return phashindex.bands(self.threshold)

    @property
    def chains(self) -> int:
        return self.threshold + 1


@dataclass(frozen=True)
class Node:
    """A node of chain ``start``: the band values on its path and the bits they differ from the
    query's by (the budget it used)."""

    start: int
    path: tuple[int, ...]
    used: int = 0

    @property
    def depth(self) -> int:
        return len(self.path) - 1


@dataclass(frozen=True)
class Plan:
    """A lookup's progress over the documents read so far: the leaves to verify candidates in,
    and the nodes still to read (non-empty: read them and plan again)."""

    leaves: list[str]
    missing: list[str]
    nodes: int  # documents the lookup reads in all (so far), split ones included


def band_values(phash: str | int, geometry: Geometry) -> list[int]:
    value = int(phash, 16) if isinstance(phash, str) else phash
    return [(value >> shift) & ((1 << width) - 1) for shift, width in geometry.bands]


@dataclass(frozen=True)
class Chains:
    """One generation of a scope's chains (:mod:`framesift.datasetindex`): its nodes' ids end
    in ``~g{generation}``, so in Firestore's key order a new generation's documents lie among
    the last one's, on key ranges already split for their load, instead of opening one new
    range at full rate (Firestore's advice against hotspots and its 500/50/5 ramp-up). No other
    index id ends so: a path, a tail key and a bucket's value are hexadecimal."""

    scope: str
    generation: int


# Whose chains a node is of: a scope's (its name), or one generation of a scope's.
Scope = str | Chains


def node_id(scope: Scope, node: Node) -> str:
    path = ".".join(f"{v:x}" for v in node.path)
    if isinstance(scope, Chains):
        return f"{scope.scope}~r{node.start}~{path}~g{scope.generation}"
    return f"{scope}~r{node.start}~{path}"


def is_split(doc: Mapping[str, Any] | None) -> bool:
    return bool(doc and doc.get("split"))


def near(value: int, width: int, radius: int) -> Iterator[tuple[int, int]]:
    """The values of ``width`` bits within ``radius`` bits of ``value``, with their distance."""
    for distance in range(min(radius, width) + 1):
        for bits in combinations(range(width), distance):
            flipped = value
            for bit in bits:
                flipped ^= 1 << bit
            yield flipped, distance


def children(node: Node, values: list[int], geometry: Geometry) -> Iterator[Node]:
    """The children of ``node`` within the pigeonring budget of a query with band ``values``:
    after ``l`` bands of the chain, at most ``l - 1`` bits differ."""
    depth = node.depth + 1
    if depth > geometry.threshold:
        return
    band = (node.start + depth) % geometry.chains
    width = geometry.bands[band][1]
    budget = depth - node.used
    for value, distance in near(values[band], width, budget):
        yield Node(node.start, (*node.path, value), node.used + distance)


def frontier(values: list[int], geometry: Geometry) -> Iterator[Node]:
    """Each chain's nodes at ``min_depth`` within the budget of the query."""
    for start in range(geometry.chains):
        level = [Node(start, (values[start],))]
        for _ in range(geometry.min_depth):
            level = [child for node in level for child in children(node, values, geometry)]
        yield from level


def first_reads(scope: Scope, phash: str, geometry: Geometry) -> list[str]:
    """The node documents a lookup reads first (then :func:`plan` says what else)."""
    return [node_id(scope, node) for node in frontier(band_values(phash, geometry), geometry)]


def plan(
    scope: Scope, phash: str, docs: Mapping[str, Mapping[str, Any] | None], geometry: Geometry
) -> Plan:
    """Walk each chain from its first documents down through split nodes, within the budget."""
    values = band_values(phash, geometry)
    leaves: list[str] = []
    missing: list[str] = []
    nodes = 0
    stack = list(frontier(values, geometry))
    while stack:
        node = stack.pop()
        doc_id = node_id(scope, node)
        if doc_id not in docs:
            missing.append(doc_id)
            continue
        nodes += 1
        if is_split(docs[doc_id]):
            stack.extend(children(node, values, geometry))
        else:
            leaves.append(doc_id)
    return Plan(leaves=leaves, missing=missing, nodes=nodes + len(missing))


def nearest(
    phash: str,
    docs: Mapping[str, Mapping[str, Any] | None],
    found: Plan,
    geometry: Geometry,
    layout: str = LAYOUT_UNKNOWN,
    layout_threshold: float = 255.0,
) -> phashindex.Neighbour | None:
    """The closest kept hash within the threshold in the plan's leaves (as phashindex's)."""
    if found.missing:
        raise ValueError("read the plan's missing documents first")
    leaves = [docs[leaf] for leaf in found.leaves]
    return phashindex.nearest(phash, leaves, geometry.threshold, layout, layout_threshold)


def own_path(phash: str, start: int, depth: int, geometry: Geometry) -> Node:
    """The node of chain ``start`` at ``depth`` on the hash's own path."""
    values = band_values(phash, geometry)
    return Node(start, tuple(values[(start + j) % geometry.chains] for j in range(depth + 1)))


def grown(doc: Mapping[str, Any] | None, phash: str, layout: str) -> tuple[bytes, bytes]:
    """A leaf's packed hashes and colour layouts with ``phash`` and ``layout`` appended (an
    entry stored without a layout gets the unknown one). Shared with :mod:`framesift.tailindex`."""
    hashes = bytes((doc or {}).get("hashes") or b"")
    layouts = bytes((doc or {}).get("layouts") or b"")
    count = len(hashes) // 8
    unknown = bytes.fromhex(LAYOUT_UNKNOWN)
    layouts += unknown * (count - len(layouts) // LAYOUT_BYTES)
    return hashes + int(phash, 16).to_bytes(8, "big"), layouts + bytes.fromhex(layout)


def check_split_rate(split_rate: float) -> None:
    if not 0 < split_rate < math.inf:
        raise ValueError("split_rate must be a positive number of writes per second")


@dataclass(frozen=True)
class Rate:
    """A leaf's estimated write rate (writes per second) at ``at`` (Unix seconds)."""

    per_s: float
    at: float

    def share(self, part: int, whole: int) -> Rate:
        """A child's share of the rate, by its entries."""
        return Rate(self.per_s * part / max(whole, 1), self.at)


def write_rate(doc: Mapping[str, Any] | None, now: datetime | None) -> Rate | None:
    """The leaf's rate estimate after one more write at ``now`` (None without a time: the
    migration's and bulk builds' writes update no rate). A leaf written without a rate (or
    before this release) counts from zero; an earlier ``rate_at`` than ``now`` (another
    instance's clock ahead) decays nothing."""
    if now is None:
        return None
    at = now.timestamp()
    rate = float((doc or {}).get("rate") or 0.0)
    stamped = float((doc or {}).get("rate_at") or at)
    since = max(0.0, at - stamped)
    # Stamped with the later time: a writer whose clock is behind must not leave a time
    # that the next writers decay from twice.
    return Rate(rate * math.exp(-since / RATE_TAU_S) + 1 / RATE_TAU_S, max(at, stamped))


def leaf_doc(hashes: bytes, layouts: bytes, rate: Rate | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"hashes": hashes, "layouts": layouts, "split": False}
    if rate is not None:
        doc.update(rate=rate.per_s, rate_at=rate.at)
    return doc


def hot(rate: Rate | None, split_rate: float) -> bool:
    """Whether a leaf written at this rate splits even under the cap."""
    return rate is not None and rate.per_s > split_rate


SPLIT_DOC: Mapping[str, Any] = {"hashes": b"", "layouts": b"", "split": True}


class KnownSplits:
    """The ids of the split nodes one instance has read (chains' and the tail's). Bounded: past
    ``most`` ids the oldest are forgotten (read again when needed). Shared between threads:
    :meth:`learn` writes under a lock, and a lookup plans over its own :meth:`over` view,
    which keeps what it was told (a set that forgets an id between a check and a read would
    answer differently).

    Only an operator's restore of index documents to an earlier time, or a rebuild, can take a
    split back: stop dedup before one and start a new revision after (docs/dedup-index.md,
    "Bad state")."""

    def __init__(self, most: int = 250_000) -> None:
        self._ids: dict[str, None] = {}
        self._most = most
        self._lock = threading.Lock()

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._ids))

    def __len__(self) -> int:
        return len(self._ids)

    def learn(self, read: Mapping[str, Mapping[str, Any] | None]) -> None:
        """Keep the split nodes among documents just read."""
        with self._lock:
            for doc_id, doc in read.items():
                if is_split(doc) and doc_id not in self._ids:
                    self._ids[doc_id] = None
                    if len(self._ids) > self._most:
                        del self._ids[next(iter(self._ids))]

    def over(self, read: Mapping[str, Mapping[str, Any] | None]) -> Walked:
        """The documents a plan walks: those read, then the known splits not read."""
        return Walked(read, self)


class Walked(Mapping[str, Mapping[str, Any] | None]):
    """One lookup's documents: those it read, and each known split it asked about, copied when
    first asked (another thread may make the instance forget it meanwhile: a lookup's answer
    about a node never changes)."""

    def __init__(self, read: Mapping[str, Mapping[str, Any] | None], known: KnownSplits) -> None:
        self._read = read
        self._known = known
        self._splits: dict[str, Mapping[str, Any]] = {}

    def __contains__(self, doc_id: object) -> bool:
        if doc_id in self._read or doc_id in self._splits:
            return True
        if isinstance(doc_id, str) and doc_id in self._known:
            self._splits[doc_id] = SPLIT_DOC
            return True
        return False

    def __getitem__(self, doc_id: str) -> Mapping[str, Any] | None:
        if doc_id in self._read:
            return self._read[doc_id]
        if doc_id in self:
            return self._splits[doc_id]
        raise KeyError(doc_id)

    def __iter__(self) -> Iterator[str]:
        return iter({**self._splits, **self._read})

    def __len__(self) -> int:
        return len({**self._splits, **self._read})


def grouped(
    hashes: bytes, layouts: bytes, value_of: Callable[[int], int]
) -> list[tuple[int, bytes, bytes]]:
    """A splitting leaf's entries grouped by their child (``value_of`` a hash's child value),
    in the children's order: (value, packed hashes, layouts)."""
    parts: dict[int, tuple[list[bytes], list[bytes]]] = defaultdict(lambda: ([], []))
    for i in range(len(hashes) // 8):
        entry = hashes[i * 8 : (i + 1) * 8]
        part = parts[value_of(int.from_bytes(entry, "big"))]
        part[0].append(entry)
        part[1].append(layouts[i * LAYOUT_BYTES : (i + 1) * LAYOUT_BYTES])
    return [(value, b"".join(h), b"".join(la)) for value, (h, la) in sorted(parts.items())]


def within_writes(
    writes: dict[str, dict[str, Any]],
    doc_id: str,
    leaf: dict[str, dict[str, Any]],
    unsplit: dict[str, Any],
    later: int,
    max_writes: int | None,
) -> dict[str, dict[str, Any]]:
    """``leaf`` (one leaf's writes, a split's included), or, when with ``later`` leaves still
    to come they would take ``writes`` past ``max_writes``, the ``unsplit`` leaf: the split is
    put off to a later hash. Shared with :mod:`framesift.tailindex`."""
    if max_writes is not None and len(writes) + len(leaf) + later > max_writes:
        return {doc_id: unsplit}
    return leaf


def added(
    scope: Scope,
    phash: str,
    docs: Mapping[str, Mapping[str, Any] | None],
    geometry: Geometry,
    layout: str = LAYOUT_UNKNOWN,
    max_writes: int | None = None,
    now: datetime | None = None,
) -> dict[str, dict[str, Any]]:
    """The writes that add a kept hash to its leaf in every chain, splitting a leaf it would
    take over the cap, or, decided at ``now``, whose write rate it would take past the
    geometry's ``split_rate``. ``docs`` must hold what the lookup's :func:`plan` read (the
    hash's own path is within every budget, so its nodes were read).

    With ``max_writes``, a split that would take the writes past it is put off: that leaf takes
    the hash over the cap (a few entries over: still far under 1 MiB) and splits with a later
    hash. Each chain's leaf needs one write, so ``max_writes`` must be at least the chains."""
    if max_writes is not None and max_writes < geometry.chains:
        raise ValueError(f"adding a hash writes at least {geometry.chains} documents")
    writes: dict[str, dict[str, Any]] = {}
    for start in range(geometry.chains):
        depth = geometry.min_depth
        node = own_path(phash, start, depth, geometry)
        while True:
            doc_id = node_id(scope, node)
            if doc_id not in docs:
                raise ValueError(f"{doc_id} was not read: add to what the lookup read")
            if not is_split(docs[doc_id]):
                break
            depth += 1
            node = own_path(phash, start, depth, geometry)
        entries = grown(docs[doc_id], phash, layout)
        rate = write_rate(docs[doc_id], now)
        leaf = _leaf(scope, node, *entries, geometry, rate, hot(rate, geometry.split_rate))
        # Room for this chain's writes and one leaf for each chain still to come.
        later = geometry.chains - start - 1
        unsplit = leaf_doc(*entries, rate)
        writes.update(within_writes(writes, doc_id, leaf, unsplit, later, max_writes))
    return writes


def _leaf(
    scope: Scope,
    node: Node,
    hashes: bytes,
    layouts: bytes,
    geometry: Geometry,
    rate: Rate | None,
    hot: bool = False,
) -> dict[str, dict[str, Any]]:
    """The documents that hold these entries at ``node``: one leaf, or, over the cap or
    ``hot``, a split marker and the children with their shares of the ``rate`` (split again
    while one is over the cap; a child still hot splits on its own next write)."""
    count = len(hashes) // 8
    if (count <= geometry.cap and not hot) or node.depth >= geometry.threshold:
        return {node_id(scope, node): leaf_doc(hashes, layouts, rate)}
    band = (node.start + node.depth + 1) % geometry.chains
    shift, width = geometry.bands[band]
    writes: dict[str, dict[str, Any]] = {node_id(scope, node): dict(SPLIT_DOC)}
    for value, part_hashes, part_layouts in grouped(
        hashes, layouts, lambda entry: (entry >> shift) & ((1 << width) - 1)
    ):
        child = Node(node.start, (*node.path, value))
        share = rate.share(len(part_hashes) // 8, count) if rate else None
        writes.update(_leaf(scope, child, part_hashes, part_layouts, geometry, share))
    return writes


def leaf_of(
    scope: Scope, phash: str, start: int, docs: Mapping[str, Mapping[str, Any] | None], g: Geometry
) -> str:
    """The id of the leaf of chain ``start`` on the hash's own path, as the documents stand."""
    depth = g.min_depth
    while is_split(docs.get(node_id(scope, own_path(phash, start, depth, g)))):
        depth += 1
    return node_id(scope, own_path(phash, start, depth, g))


def entries(docs: Iterable[Mapping[str, Any] | None]) -> int:
    """How many hashes these documents hold."""
    return sum(len(bytes((doc or {}).get("hashes") or b"")) // 8 for doc in docs)


def holds(leaf: Mapping[str, Any] | None, phash: str, layout: str) -> bool:
    """Whether a leaf (or a bucket) holds this hash with this colour layout."""
    if not leaf or not leaf.get("hashes"):
        return False
    hashes = bytes(leaf["hashes"])
    layouts = phashindex.bucket_layouts(leaf)
    wanted = (bytes.fromhex(phash), bytes.fromhex(layout))
    return any(
        (hashes[i * 8 : (i + 1) * 8], layouts[i * LAYOUT_BYTES : (i + 1) * LAYOUT_BYTES]) == wanted
        for i in range(len(hashes) // 8)
    )

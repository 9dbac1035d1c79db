"""An approximate near-duplicate index of 64-bit pHashes whose cost per lookup is bounded at any n.

The dataset scope's exact index (:mod:`framesift.dedupindex`, the "chains") reads more as the
scope grows (about ``n^0.5`` bytes, ~850 documents at 10^8: docs/dedup-index.md). This module is
the *tail* beside it: every kept hash of a scope, searched with a bounded number of documents per
lookup and per kept frame, at a recall that is measured, not guaranteed.

**Bit-sampling LSH.** There are ``tables`` tables. Table ``j`` reads the hash's 64 bits in a fixed
order of its own (:func:`order`: the positions sorted by ``sha256("framesift-tail-{j}-{pos}")``,
so ids are the same on every machine and Python version). A table is a trie over that order: a
node at depth ``d`` is keyed by the first ``first_bits + d * split_bits`` bits (at most 64), and
its document is a *leaf* (packed hashes and colour layouts, phashindex's format, at most ``cap``
entries) or *split* (no entries; they moved to its children, keyed by the next ``split_bits``).
A kept hash is written on its own path in each table: one leaf per table. Two hashes ``d``
bits apart share a leaf of table ``j`` iff none of the ``d`` bits is among the ``k`` bits the
leaf is keyed by; with ``k`` of 64 positions in a random order that happens with probability
``C(64 - d, k) / C(64, k)``, which falls fast as ``k`` grows: a clustered scope's leaves split
deeper, and at a fixed number of tables its recall fell (0.9966 at 10^8 with 6 split bits).
So a lookup also **probes** (multi-probe LSH): past each split node on its path it reads the
children whose ``split_bits`` differ from its own in at most ``flips`` bits in all, and so meets
a hash that agrees on the table's ``first_bits`` and differs in at most ``flips`` of the split
bits below them. A table then reads ``1 + (k - first_bits)`` leaves at one flip, not one: in
an unsplit table (every table of a uniform scope up to ``cap * 2^first_bits`` hashes) still
one; only where leaves went deeper does a lookup read more, and recall there comes back to the
``first_bits`` leaves' (docs/dedup-index.md, "The tail").

**Cost.** A kept frame writes one leaf per table (at most ``cap`` entries of 20 bytes each); a
leaf that would pass the cap splits in the transaction of the hash that overflows it, into a
split marker and its ``2^split_bits`` children (split again while one is over the cap), as the
chains do (the helpers are dedupindex's); and, as the chains' leaves, a leaf whose write rate passes
``split_rate`` splits under the cap too (hot first documents of clustered hashes).

**Defaults, measured** (docs/dedup-index.md, "The tail"; ``framesift bench index``, and its
``--tail-tradeoffs`` for the cap and the first bits, a model without probes):
``first_bits = 17`` keys the first documents by the bits a leaf of at most 2048 entries needs at
10^8 uniform hashes: a lookup of a uniform scope reads one document a table in one round up to
``2048 * 2^17`` (2.7 x 10^8) hashes, small scopes read little (their leaves hold a few
entries) and two kept frames rarely write a common leaf (1 in 2^17 per table). Fewer first bits
save storage in a small scope (fewer, fuller documents) but cost a round per split level and,
below 4 x 10^6 hashes, contention. A smaller cap trades tables, rounds and documents (the
measured table). ``split_bits = 2`` and ``flips = 1``: probing one flipped split bit brings the
recall of a clustered scope's deeper leaves back near what its first bits give, and 2 split bits
key a leaf by few more bits than its entries need, so a lookup probes fewer leaves than with 6
(a split also writes 5 documents, not 65); 6 split bits with one flip stay under 0.999 (0.9986),
and two flips read over twice the documents. 144 tables: the fewest whose recall of planted near
duplicates at 1..10 bits reaches 0.999 in the benchmark's clustered model at 10^8 is 141
(0.99902; 136 gave 0.99886), and 144 (0.99912) keeps about the planted sample's scatter as
margin; uniform hashes need 135.

**No guarantee.** Unlike the chains, two near hashes need not share a document: a near duplicate
the tail misses is kept (labeled twice, never lost), and two concurrent deciders of near hashes
meet in a common leaf only when some table's leaf-path bits agree. The exact guarantee is the
window's (the chains over recent generations); the tail catches older frames at its recall.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from framesift import dedupindex, phashindex
from framesift.config import Settings
from framesift.imagestats import LAYOUT_UNKNOWN

Docs = Mapping[str, Mapping[str, Any] | None]


@dataclass(frozen=True)
class TailGeometry:
    """The tail's shape: the Hamming threshold, the number of tables, the most entries a leaf
    holds, the bits a table's first documents are keyed by, the bits each split adds, the
    write rate that splits a leaf under the cap, and the split bits a lookup probes flipped."""

    threshold: int = 10
    # The setting's default, chosen at 10^8 (docs/dedup-index.md, "The tail").
    tables: int = Settings.model_fields["dedup_tail_tables"].default
    cap: int = 2048
    first_bits: int = 17
    split_bits: int = 2
    split_rate: float = dedupindex.SPLIT_RATE  # writes/s above which a leaf splits anyway
    # Split bits a lookup also tries flipped below a split node (multi-probe): a near hash in a
    # deeper leaf is met when it differs from the query in at most this many of its split bits.
    flips: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.threshold <= 63:
            raise ValueError("the threshold must be between 0 and 63 bits")
        if self.tables < 1:
            raise ValueError("the tail needs at least one table")
        if self.cap < 1:
            raise ValueError("a leaf must hold at least one hash")
        if not 1 <= self.first_bits <= 64:
            raise ValueError("first_bits must be between 1 and 64")
        if not 1 <= self.split_bits <= 16:
            raise ValueError("split_bits must be between 1 and 16 (a split writes 2^split_bits)")
        dedupindex.check_split_rate(self.split_rate)
        if not 0 <= self.flips <= 3:
            raise ValueError("flips must be between 0 and 3 (each one multiplies the leaves read)")

    def bits(self, depth: int) -> int:
        """How many of a table's ordered bits key a node at ``depth``."""
        return min(64, self.first_bits + depth * self.split_bits)

    @property
    def max_depth(self) -> int:
        """The depth at which a node is keyed by all 64 bits: it never splits."""
        return -(-(64 - self.first_bits) // self.split_bits)


@cache
def order(table: int) -> tuple[int, ...]:
    """Table ``table``'s order of the 64 bit positions (0: the least significant bit)."""

    def rank(pos: int) -> bytes:
        return hashlib.sha256(f"framesift-tail-{table}-{pos}".encode()).digest()

    return tuple(sorted(range(64), key=rank))


@cache
def byte_tables(table: int) -> tuple[tuple[int, ...], ...]:
    """For each byte ``b`` of a hash (bits ``8b .. 8b + 7``) and each of its 256 values, its
    bits moved to their places in table ``table``'s order (its first position the top bit), so
    that :func:`permuted` is eight look-ups (the benchmark vectorises the same tables)."""
    place = {pos: 63 - i for i, pos in enumerate(order(table))}
    return tuple(
        tuple(
            sum(1 << place[8 * byte + bit] for bit in range(8) if value >> bit & 1)
            for value in range(256)
        )
        for byte in range(8)
    )


def permuted(value: int, table: int) -> int:
    """The hash's bits in table ``table``'s order, its first position on top."""
    tables = byte_tables(table)
    return sum(tables[byte][(value >> (8 * byte)) & 0xFF] for byte in range(8))


def key(value: int, table: int, depth: int, g: TailGeometry) -> int:
    """The key of the node of table ``table`` at ``depth`` on the hash's own path."""
    return permuted(value, table) >> (64 - g.bits(depth))


def node_id(scope: str, table: int, depth: int, node_key: int) -> str:
    """A node document's id (``~t``: never a chain's ``~r``/``~g`` node nor a bucket's ``~b``)."""
    return f"{scope}~t{table}~{depth}~{node_key:x}"


def path_id(scope: str, value: int, table: int, depth: int, g: TailGeometry) -> str:
    return node_id(scope, table, depth, key(value, table, depth, g))


def first_reads(scope: str, phash: str, g: TailGeometry) -> list[str]:
    """Each table's depth-0 node on the hash's path: what a lookup reads first."""
    value = int(phash, 16)
    return [path_id(scope, value, table, 0, g) for table in range(g.tables)]


@dataclass(frozen=True)
class _End:
    """Where a walk of one table ends: a leaf read, or a node still to read."""

    doc_id: str
    depth: int
    node_key: int
    read: bool


def _walk(
    scope: str, value: int, table: int, docs: Docs, g: TailGeometry, flips: int
) -> tuple[list[_End], int]:
    """Table ``table`` from its first node on the hash's path through the split nodes read,
    into every child whose key differs from the path's in at most ``flips`` of the split bits
    in all: where it ends, and how many nodes it walked."""
    own = permuted(value, table)
    ends: list[_End] = []
    level = [(own >> (64 - g.bits(0)), flips)]
    nodes = 0
    for depth in range(g.max_depth + 1):
        deeper: list[tuple[int, int]] = []
        for node_key, left in level:
            doc_id = node_id(scope, table, depth, node_key)
            nodes += 1
            if doc_id not in docs:
                ends.append(_End(doc_id, depth, node_key, read=False))
            elif depth >= g.max_depth or not dedupindex.is_split(docs[doc_id]):
                ends.append(_End(doc_id, depth, node_key, read=True))
            else:
                width = g.bits(depth + 1) - g.bits(depth)
                on_path = (own >> (64 - g.bits(depth + 1))) & ((1 << width) - 1)
                deeper.extend(
                    ((node_key << width) | child, left - distance)
                    for child, distance in dedupindex.near(on_path, width, left)
                )
        level = deeper
    return ends, nodes


def _plan(scope: str, phash: str, docs: Docs, g: TailGeometry, flips: int) -> dedupindex.Plan:
    value = int(phash, 16)
    leaves: list[str] = []
    missing: list[str] = []
    nodes = 0
    for table in range(g.tables):
        ends, walked = _walk(scope, value, table, docs, g, flips)
        for end in ends:
            (leaves if end.read else missing).append(end.doc_id)
        nodes += walked
    return dedupindex.Plan(leaves=leaves, missing=missing, nodes=nodes)


def plan(scope: str, phash: str, docs: Docs, g: TailGeometry) -> dedupindex.Plan:
    """A lookup's walk over the documents read: each table down the hash's own path and, past a
    split node, into the children within ``g.flips`` bits of it (the leaves whose keys differ
    from the path's in at most that many split bits), or the next nodes to read. A document
    read as None is an empty leaf."""
    return _plan(scope, phash, docs, g, g.flips)


def own_plan(scope: str, phash: str, docs: Docs, g: TailGeometry) -> dedupindex.Plan:
    """The walk down the hash's own path alone: one leaf per table, the leaves a kept hash is
    added to (:func:`added`), or the next nodes to read."""
    return _plan(scope, phash, docs, g, 0)


def meets(query: int, stored: int, table: int, depth: int, g: TailGeometry) -> bool:
    """Whether a lookup of ``query`` reads the leaf of ``stored`` in ``table`` when that leaf is
    at ``depth``, as a rule (what :func:`plan`'s walk reaches): they agree on the table's first
    bits and differ in at most ``g.flips`` of the split bits keying the leaf."""
    bits = g.bits(depth)
    differ = (permuted(query, table) ^ permuted(stored, table)) >> (64 - bits)
    return differ >> (bits - g.first_bits) == 0 and differ.bit_count() <= g.flips


def nearest(
    phash: str,
    docs: Docs,
    found: dedupindex.Plan,
    g: TailGeometry,
    layout: str = LAYOUT_UNKNOWN,
    layout_threshold: float = 255.0,
) -> phashindex.Neighbour | None:
    """The closest kept hash within the threshold in the plan's leaves (phashindex's rule:
    the colour layouts must agree; ties, the smallest hash)."""
    if found.missing:
        raise ValueError("read the plan's missing documents first")
    leaves = [docs[leaf] for leaf in found.leaves]
    return phashindex.nearest(phash, leaves, g.threshold, layout, layout_threshold)


def added(
    scope: str,
    phash: str,
    docs: Docs,
    g: TailGeometry,
    layout: str = LAYOUT_UNKNOWN,
    max_writes: int | None = None,
    now: datetime | None = None,
) -> dict[str, dict[str, Any]]:
    """The writes that add a kept hash to its leaf in every table, splitting a leaf it would
    take over the cap or, decided at ``now``, past ``split_rate`` writes per second
    (:func:`dedupindex.added`'s rule). ``docs`` must hold what the lookup's :func:`plan` read.

    With ``max_writes``, a split that would take the writes past it is put off (that leaf goes
    over the cap by one and splits with a later hash), as :func:`dedupindex.added` does; each
    table's leaf needs one write, so ``max_writes`` must be at least the tables."""
    if max_writes is not None and max_writes < g.tables:
        raise ValueError(f"adding a hash writes at least {g.tables} documents")
    value = int(phash, 16)
    writes: dict[str, dict[str, Any]] = {}
    for table in range(g.tables):
        [own] = _walk(scope, value, table, docs, g, flips=0)[0]
        if not own.read:
            raise ValueError(f"{own.doc_id} was not read: add to what the lookup read")
        doc_id = own.doc_id
        entries = dedupindex.grown(docs[doc_id], phash, layout)
        rate = dedupindex.write_rate(docs[doc_id], now)
        hot = dedupindex.hot(rate, g.split_rate)
        leaf = _leaf(scope, table, own.depth, own.node_key, *entries, g, rate, hot)
        later = g.tables - table - 1
        unsplit = dedupindex.leaf_doc(*entries, rate)
        writes.update(dedupindex.within_writes(writes, doc_id, leaf, unsplit, later, max_writes))
    return writes


def _leaf(
    scope: str,
    table: int,
    depth: int,
    node_key: int,
    hashes: bytes,
    layouts: bytes,
    g: TailGeometry,
    rate: dedupindex.Rate | None,
    hot: bool = False,
) -> dict[str, dict[str, Any]]:
    """The documents that hold these entries at a node: one leaf, or, over the cap or ``hot``,
    a split marker and the children with their shares of the ``rate`` (split again while one
    is over the cap)."""
    doc_id = node_id(scope, table, depth, node_key)
    count = len(hashes) // 8
    if (count <= g.cap and not hot) or depth >= g.max_depth:
        return {doc_id: dedupindex.leaf_doc(hashes, layouts, rate)}
    shift = 64 - g.bits(depth + 1)
    writes: dict[str, dict[str, Any]] = {doc_id: dict(dedupindex.SPLIT_DOC)}
    for child, part_hashes, part_layouts in dedupindex.grouped(
        hashes, layouts, lambda entry: permuted(entry, table) >> shift
    ):
        share = rate.share(len(part_hashes) // 8, count) if rate else None
        writes.update(_leaf(scope, table, depth + 1, child, part_hashes, part_layouts, g, share))
    return writes

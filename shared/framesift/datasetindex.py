"""A dataset scope's near-duplicate index as one dedup decision reads and extends it.

The index is :mod:`framesift.dedupindex`'s chains, kept in ``phash_buckets`` beside the videos'
buckets (a node's id, ``{scope}~r{chain}~{path}``, is never a bucket's,
``{scope}~b{band}~{value}``).
A deployment that ran an earlier release holds its dataset scopes in :mod:`framesift.phashindex`
buckets: until ``framesift migrate-dedup-index`` has copied them all into chains and retired them
(``dedup_index_state/buckets``, :mod:`framesift.dedupmigration`), a lookup reads the scope's
buckets too, so no frame is kept beside a duplicate that only the buckets hold. A kept frame goes
into the chains only: the buckets stop growing once this release runs.

One transaction: :meth:`Lookup.read` asks for the first documents (:meth:`Lookup.first_keys`),
then plans the walk down the chains over what was read and asks for the nodes still missing (and,
before the migration, the buckets) with :class:`~framesift.errors.ReadMore`, one round per trie
level; then :meth:`Found.nearest` and, for a kept frame, :meth:`Found.added`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from framesift import dedupindex, phashindex
from framesift.bookkeeping import DedupNode
from framesift.errors import ReadMore
from framesift.ports import DocKey
from framesift.topology import Collections

Docs = Mapping[DocKey, Mapping[str, Any] | None]

# Decisions read the scopes' buckets until this says they were all migrated into chains.
RETIRED_KEY: DocKey = (Collections.DEDUP_INDEX_STATE, "buckets")


def geometry(threshold: int, cap: int) -> dedupindex.Geometry:
    """The chains' shape (at 0 bits a chain is one band: it cannot start deeper)."""
    return dedupindex.Geometry(threshold=threshold, cap=cap, min_depth=min(1, threshold))


def buckets_retired(docs: Docs) -> bool:
    return bool((docs.get(RETIRED_KEY) or {}).get("retired"))


def node_keys(doc_ids: list[str]) -> list[DocKey]:
    return [(Collections.PHASH_BUCKETS, doc_id) for doc_id in doc_ids]


@dataclass(frozen=True)
class Found:
    """What one lookup read: the chain nodes by id, its plan over them, and the scope's
    buckets it had to read too (none once they are retired)."""

    scope: str
    phash: str
    geometry: dedupindex.Geometry
    nodes: dict[str, Mapping[str, Any] | None]
    plan: dedupindex.Plan
    buckets: list[Mapping[str, Any] | None]

    def nearest(self, layout: str, layout_threshold: float) -> phashindex.Neighbour | None:
        return dedupindex.nearest(
            self.phash,
            self.nodes,
            self.plan,
            self.geometry,
            layout,
            layout_threshold,
            also=self.buckets,
        )

    def added(self, layout: str, max_writes: int) -> dict[DocKey, dict[str, Any]]:
        """The writes that add the kept hash to the chains (splits included)."""
        writes = dedupindex.added(
            self.scope, self.phash, self.nodes, self.geometry, layout, max_writes
        )
        return {
            key: DedupNode(**data).stored()
            for key, data in zip(node_keys(list(writes)), writes.values(), strict=True)
        }


@dataclass(frozen=True)
class Lookup:
    """One frame's lookup in one dataset scope."""

    scope: str
    phash: str
    geometry: dedupindex.Geometry

    def first_keys(self) -> list[DocKey]:
        """What to read with the decision's other documents."""
        first = dedupindex.first_reads(self.scope, self.phash, self.geometry)
        return [RETIRED_KEY, *node_keys(first)]

    def read(self, docs: Docs) -> Found:
        """What the lookup found in ``docs``; raises ReadMore for what it still has to read."""
        first = [key for key in self.first_keys() if key not in docs]
        if first:
            raise ReadMore(first)
        nodes = {
            doc_id: doc
            for (collection, doc_id), doc in docs.items()
            if collection == Collections.PHASH_BUCKETS and doc_id.startswith(f"{self.scope}~r")
        }
        for doc_id, doc in nodes.items():
            phashindex.check(doc_id, doc)
        plan = dedupindex.plan(self.scope, self.phash, nodes, self.geometry)
        buckets: list[DocKey] = []
        if not buckets_retired(docs):
            buckets = node_keys(
                phashindex.bucket_ids(self.scope, self.phash, self.geometry.threshold)
            )
        wanted = [*node_keys(plan.missing), *(key for key in buckets if key not in docs)]
        if wanted:
            raise ReadMore(wanted)
        for key in buckets:
            phashindex.check(key[1], docs[key])
        return Found(
            self.scope,
            self.phash,
            self.geometry,
            nodes,
            plan,
            [docs[key] for key in buckets],
        )

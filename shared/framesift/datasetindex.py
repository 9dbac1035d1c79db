"""A dataset scope's near-duplicate index as one dedup decision reads and extends it.

By default the index is :mod:`framesift.dedupindex`'s chains, kept in ``phash_buckets`` beside
the videos' buckets (a node's id, ``{scope}~r{chain}~{path}``, is never a bucket's,
``{scope}~b{band}~{value}``): exact, at a cost per lookup that grows about as ``n^0.5``.

**Tiered** (``dedup_window_hours`` set: a scope headed for 10^7 kept frames and beyond): the
chains are cut into *generations* of that many hours (``{scope}~r...~g{generation}``), and every
kept hash also goes into the :mod:`framesift.tailindex` *tail*, an approximate index of the whole
scope with a bounded cost per lookup and per kept frame. A decision searches its generation
exactly and the tail approximately, so its cost is bounded by what one generation holds (the kept
rate times the period), not by the scope, and a near duplicate of an older frame is found with the
tail's measured recall (docs/dedup-index.md). Two deciders at once always share a generation:
in the last :data:`GRACE` of a generation (more than any two deciders' clocks differ) a decision
reads and writes the next one too, so the chains' guarantee (no two frames within ``t`` both
kept) holds for every pair decided at once.

Before the migration (:mod:`framesift.dedupmigration`): a deployment of an earlier release holds
its dataset scopes in :mod:`framesift.phashindex` buckets, read beside the chains until
``dedup_index_state/buckets`` retires them; and a scope switched to tiered holds its earlier kept
hashes in generation-less chains, read exactly beside its generation until the migration has
copied them into the tail and one window has passed (``dedup_index_state/legacy_chains``). So no
decision changes when the index is converted.

One transaction: :meth:`Lookup.read` asks for the first documents (:meth:`Lookup.first_keys`:
the leaves of the shape the instance knows, :class:`~framesift.dedupindex.KnownSplits`), then
plans the walks over what was read and asks for the nodes still missing with
:class:`~framesift.errors.ReadMore`, one round per trie level it did not know; then
:meth:`Found.nearest` and, for a kept frame, :meth:`Found.added`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from framesift import dedupindex, phashindex, tailindex
from framesift.bookkeeping import DedupNode, GenerationNode, LegacyChains
from framesift.errors import BackendUnavailable, CorruptIndex, ReadMore
from framesift.parts import MAX_COMMIT_WRITES
from framesift.ports import DocKey, DocumentStore
from framesift.topology import Collections

Docs = Mapping[DocKey, Mapping[str, Any] | None]

# Decisions read the scopes' buckets until this says they were all migrated into chains.
RETIRED_KEY: DocKey = (Collections.DEDUP_INDEX_STATE, "buckets")
# Tiered decisions read the generation-less chains until this says the tail holds them and
# a window has passed since.
LEGACY_KEY: DocKey = (Collections.DEDUP_INDEX_STATE, "legacy_chains")
# More than two deciders' clock readings differ while both their transactions run: Cloud
# Functions' clocks are NTP-synchronised to milliseconds, and a tiered decision that has not
# reached its commit within half of this of reading its clock gives up (Lookup.check_current:
# redelivered, it decides again with a fresh clock). Within this of a generation's end a
# decision reads and writes the next generation too: a thirtieth of an hour's decisions.
GRACE = timedelta(minutes=2)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EXPIRY_MARGIN = timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """Generations of ``hours`` hours, counted from the Unix epoch (UTC): a generation holds
    what the scope keeps in that time (at 500 kept frames/s, 1.8 x 10^6 an hour)."""

    hours: int

    def __post_init__(self) -> None:
        if self.hours < 1:
            raise ValueError("a generation lasts at least an hour")

    @property
    def period(self) -> timedelta:
        return timedelta(hours=self.hours)

    def expires(self, generation: int) -> datetime:
        """When a generation's documents may go (Firestore's TTL policy on ``expire_at``
        deletes them): a day after the last decision that reads them."""
        return _EPOCH + (generation + 1) * self.period + _EXPIRY_MARGIN

    def generations(self, now: datetime) -> tuple[int, ...]:
        """The generations a decision at ``now`` reads and writes: its own, and in its last
        :data:`GRACE` the next one too. Two deciders whose clocks are less than GRACE apart
        then share one: in one generation, or the earlier one is in the last GRACE of its
        generation and so also in the later one's."""
        since = now - _EPOCH
        generation = since // self.period
        if (generation + 1) * self.period - since <= GRACE:
            return (generation, generation + 1)
        return (generation,)


@dataclass(frozen=True)
class Shape:
    """How the dataset scopes are indexed: the chains' geometry and, tiered, the window and
    the tail's geometry."""

    geometry: dedupindex.Geometry
    window: Window | None = None
    tail: tailindex.TailGeometry | None = None

    def __post_init__(self) -> None:
        if (self.window is None) != (self.tail is None):
            raise ValueError("a window and a tail go together")


def geometry(threshold: int, cap: int) -> dedupindex.Geometry:
    """The chains' shape (at 0 bits a chain is one band: it cannot start deeper)."""
    return dedupindex.Geometry(threshold=threshold, cap=cap, min_depth=min(1, threshold))


class IndexSettings(Protocol):
    """The settings that shape the index (:class:`~framesift.config.Settings` has them, and
    so has dedup's section of them)."""

    @property
    def dedup_threshold(self) -> int: ...
    @property
    def dedup_leaf_cap(self) -> int: ...
    @property
    def dedup_window_hours(self) -> int | None: ...
    @property
    def dedup_tail_tables(self) -> int: ...


def shape(settings: IndexSettings) -> Shape:
    """The index the settings name."""
    chains = geometry(settings.dedup_threshold, settings.dedup_leaf_cap)
    if settings.dedup_window_hours is None:
        return Shape(chains)
    return Shape(
        chains,
        Window(settings.dedup_window_hours),
        tailindex.TailGeometry(
            threshold=settings.dedup_threshold, tables=settings.dedup_tail_tables
        ),
    )


def buckets_retired(docs: Docs) -> bool:
    return bool((docs.get(RETIRED_KEY) or {}).get("retired"))


def legacy_read(docs: Docs, now: datetime) -> bool:
    """Whether a tiered decision at ``now`` still reads the generation-less chains."""
    legacy = legacy_state(docs)
    return legacy is None or not legacy.in_tail or now < legacy.read_until


def legacy_frozen(docs: Docs) -> bool:
    """Whether the migration has copied the generation-less chains into the tail: from then on
    no tiered decision writes them (every instance is tiered: the migration runs after)."""
    legacy = legacy_state(docs)
    return legacy is not None and legacy.in_tail


def legacy_state(docs: Docs) -> LegacyChains | None:
    state = docs.get(LEGACY_KEY)
    if not state:
        return None
    try:
        return LegacyChains.model_validate(state)
    except ValidationError as exc:
        raise CorruptIndex(f"dedup index state {LEGACY_KEY[1]}: {exc}") from exc


def generation_scope(scope: str, generation: int) -> dedupindex.Chains:
    """A generation's chains, whose nodes are ``{scope}~r{chain}~{path}~g{generation}``
    (:class:`~framesift.dedupindex.Chains`)."""
    return dedupindex.Chains(scope, generation)


def node_keys(doc_ids: list[str]) -> list[DocKey]:
    return [(Collections.PHASH_BUCKETS, doc_id) for doc_id in doc_ids]


class TailNotRead(Exception):
    """The window holds no near duplicate: the decision needs the tail, read outside its
    transaction (:func:`read_tail`), and is made again with it. ``reads``: the documents the
    abandoned attempt read."""

    def __init__(self, reads: int = 0) -> None:
        super().__init__("the tail was not read")
        self.reads = reads


@dataclass(frozen=True)
class TailRead:
    """The tail's leaves a lookup reads (:func:`tailindex.plan`), read with plain reads (no
    transaction: the tail promises no exclusivity, and kept out of the decision's transaction
    it adds nothing to its contention); ``nodes`` what was read over the known splits,
    ``plan`` the lookup's leaves (its own paths' and the probes'), ``reads`` how many documents
    were read."""

    nodes: Mapping[str, Mapping[str, Any] | None]
    plan: dedupindex.Plan
    reads: int

    @property
    def leaves(self) -> list[Mapping[str, Any] | None]:
        return [self.nodes[leaf] for leaf in self.plan.leaves]


def read_tail(
    documents: DocumentStore,
    scope: str,
    phash: str,
    tail: tailindex.TailGeometry,
    known: dedupindex.KnownSplits,
) -> TailRead:
    """Read the tail's leaves of ``phash`` (:func:`tailindex.plan`: its own paths and their
    probes), one round per trie level ``known`` does not hold."""
    nodes: dict[str, Mapping[str, Any] | None] = {}
    wanted = tailindex.plan(scope, phash, known.over({}), tail).missing
    while True:
        got = documents.get_many(Collections.PHASH_BUCKETS, wanted)
        for doc_id in wanted:
            nodes[doc_id] = got.get(doc_id)
            phashindex.check(doc_id, nodes[doc_id])
        known.learn(nodes)
        walked = known.over(nodes)
        plan = tailindex.plan(scope, phash, walked, tail)
        if not plan.missing:
            return TailRead(walked, plan, len(nodes))
        wanted = plan.missing


def append_to_tail(
    documents: DocumentStore,
    scope: str,
    phash: str,
    layout: str,
    tail: tailindex.TailGeometry,
    now: datetime,
    known: dedupindex.KnownSplits,
) -> None:
    """Add a kept hash to the tail, in its own transaction after the decision's; again (the
    decision delivered again, or its instance stopped between the two) it writes nothing."""

    def change(docs: dict[DocKey, dict | None]) -> tuple[dict[DocKey, dict], None]:
        read = {doc_id: doc for (_, doc_id), doc in docs.items()}
        for doc_id, doc in read.items():
            phashindex.check(doc_id, doc)
        known.learn(read)
        nodes = known.over(read)
        plan = tailindex.own_plan(scope, phash, nodes, tail)
        if plan.missing:
            raise ReadMore(node_keys(plan.missing))
        if all(dedupindex.holds(nodes[leaf], phash, layout) for leaf in plan.leaves):
            return {}, None
        found = tailindex.added(scope, phash, nodes, tail, layout, MAX_COMMIT_WRITES, now)
        return {
            key: DedupNode(**data).stored()
            for key, data in zip(node_keys(list(found)), found.values(), strict=True)
        }, None

    first = tailindex.own_plan(scope, phash, known.over({}), tail).missing
    documents.transact(node_keys(first), change)


@dataclass(frozen=True)
class Found:
    """What one lookup read in the decision's transaction: the index documents by id, the plans
    over them (one per chains searched), the scope's buckets it had to read too (none once they
    are retired), and the tail's leaves read before the transaction (tiered)."""

    scope: str
    phash: str
    shape: Shape
    nodes: Mapping[str, Mapping[str, Any] | None]  # read, over the known splits
    # The chains a kept hash goes into (dedupindex's scopes), and when a generation's expire.
    written: tuple[tuple[dedupindex.Scope, datetime | None], ...]
    leaves: tuple[str, ...]  # every leaf the chains' plans name
    buckets: list[Mapping[str, Any] | None]
    now: datetime  # the decision's (a kept hash's write updates its leaves' write rates)
    tail: TailRead | None

    def nearest(self, layout: str, layout_threshold: float) -> phashindex.Neighbour | None:
        """The closest kept hash within the threshold in what was read; tiered, the tail is
        needed only when the window and the old index hold none (raises TailNotRead)."""
        read = [*(self.nodes[leaf] for leaf in self.leaves), *self.buckets]
        match = phashindex.nearest(
            self.phash, read, self.shape.geometry.threshold, layout, layout_threshold
        )
        if match is not None or self.shape.tail is None:
            return match
        if self.tail is None:
            raise TailNotRead
        return phashindex.nearest(
            self.phash, self.tail.leaves, self.shape.geometry.threshold, layout, layout_threshold
        )

    def added(self, layout: str, max_writes: int) -> dict[DocKey, dict[str, Any]]:
        """The writes that add the kept hash to its chains (splits included); tiered, the
        tail's are :func:`append_to_tail`'s, after the decision."""
        chains = self.shape.geometry.chains
        writes: dict[DocKey, DedupNode] = {}
        for i, (written, expires) in enumerate(self.written):
            # Room kept for the leaves of the chains still to come.
            later = chains * (len(self.written) - i - 1)
            found = dedupindex.added(
                written,
                self.phash,
                self.nodes,
                self.shape.geometry,
                layout,
                max_writes - len(writes) - later,
                self.now,
            )
            writes.update(
                (key, GenerationNode(**data, expire_at=expires) if expires else DedupNode(**data))
                for key, data in zip(node_keys(list(found)), found.values(), strict=True)
            )
        return {key: node.stored() for key, node in writes.items()}

    def tail_writes(self, layout: str) -> int:
        """How many documents :func:`append_to_tail` will write for this hash, as read."""
        if self.shape.tail is None or self.tail is None:
            return 0
        return len(
            tailindex.added(
                self.scope, self.phash, self.tail.nodes, self.shape.tail, layout, now=self.now
            )
        )


@dataclass(frozen=True)
class Lookup:
    """One frame's lookup in one dataset scope, decided at ``now`` by an instance that knows
    the split nodes ``known``; tiered, with the tail's leaves once read (:func:`read_tail`)."""

    scope: str
    phash: str
    shape: Shape
    now: datetime
    known: dedupindex.KnownSplits = field(default_factory=dedupindex.KnownSplits, compare=False)
    tail: TailRead | None = None

    @property
    def _written(self) -> tuple[tuple[dedupindex.Scope, datetime | None], ...]:
        """The chains a kept hash goes into: the scope's, or its generations' (and when they
        expire)."""
        window = self.shape.window
        if window is None:
            return ((self.scope, None),)
        return tuple(
            (generation_scope(self.scope, g), window.expires(g))
            for g in window.generations(self.now)
        )

    def _plans(
        self, searched: tuple[dedupindex.Scope, ...], nodes: Mapping[str, Mapping[str, Any] | None]
    ) -> list[dedupindex.Plan]:
        return [
            dedupindex.plan(chains, self.phash, nodes, self.shape.geometry) for chains in searched
        ]

    def check_current(self, now: datetime) -> None:
        """Raise BackendUnavailable (the message is redelivered and decided again) when a tiered
        decision reaches its writes at ``now`` more than half the :data:`GRACE` after the clock
        reading its generations come from: retries, a slow read or the tail's read in between
        must not let two deciders at once fall in two generations."""
        if self.shape.window is not None and now - self.now > GRACE / 2:
            raise BackendUnavailable(
                f"a dedup decision took {(now - self.now).total_seconds():.0f} s from its clock "
                "reading to its writes: decided again with a fresh clock"
            )

    def first_keys(self) -> list[DocKey]:
        """What to read with the decision's other documents: the state, and the leaves of the
        chains written as far as the known splits tell (their first nodes when none)."""
        state = [RETIRED_KEY, LEGACY_KEY] if self.shape.window else [RETIRED_KEY]
        plans = self._plans(tuple(chains for chains, _ in self._written), self.known.over({}))
        return [*state, *node_keys([doc_id for plan in plans for doc_id in plan.missing])]

    def read(self, docs: Docs) -> Found:
        """What the lookup found in ``docs``; raises ReadMore for what it still has to read."""
        first = [key for key in self.first_keys() if key not in docs]
        if first:
            raise ReadMore(first)
        written = self._written
        searched = tuple(chains for chains, _ in written)
        if self.shape.window and legacy_read(docs, self.now):
            searched = (*searched, self.scope)
            if not legacy_frozen(docs):
                # Until the migration, instances not yet tiered (a rolling deploy) search the
                # generation-less chains only: a kept hash goes there too, so the two kinds
                # share a document and never both keep a pair.
                written = (*written, (self.scope, None))
        read = {
            doc_id: doc
            for (collection, doc_id), doc in docs.items()
            if collection == Collections.PHASH_BUCKETS
        }
        for doc_id, doc in read.items():
            phashindex.check(doc_id, doc)
        self.known.learn(read)
        nodes = self.known.over(read)
        plans = self._plans(searched, nodes)
        missing = [key for plan in plans for key in node_keys(plan.missing)]
        leaves = [leaf for plan in plans for leaf in plan.leaves]
        buckets: list[DocKey] = []
        if not buckets_retired(docs):
            buckets = node_keys(
                phashindex.bucket_ids(self.scope, self.phash, self.shape.geometry.threshold)
            )
        wanted = [*missing, *(key for key in buckets if key not in docs)]
        if wanted:
            raise ReadMore(wanted)
        for key in buckets:
            phashindex.check(key[1], docs[key])
        return Found(
            self.scope,
            self.phash,
            self.shape,
            nodes,
            written,
            tuple(dict.fromkeys(leaves)),
            [docs[key] for key in buckets],
            self.now,
            self.tail,
        )

"""``framesift migrate-dedup-index``: a deployment's dataset scopes moved from buckets into chains.

An earlier release kept each dataset scope (``all``, ``collector:{id}``) in
:mod:`framesift.phashindex` buckets; this one keeps it in :mod:`framesift.dedupindex` chains, and
until the buckets are retired every decision reads a scope's buckets beside its chains
(:mod:`framesift.datasetindex`), so nothing is decided differently before, during or after the
migration. Every kept hash of a scope is in exactly one of its band-0 buckets
(``{scope}~b0~{value}``), so those hold the whole scope. For each, its entries (hash and colour
layout) are added to the scope's chains, in transactions of at most :data:`MAX_COMMIT_WRITES`
writes and :data:`_COMMIT_BYTES` bytes, each entry only where its leaf does not hold it yet; then
``dedup_index_state/migrated~{bucket id}`` records how many entries the bucket held. Then the
buckets written since the pass began (by ``updated_at``, with a minute's margin for the writers'
clocks) are looked at again, and those whose count is not their record's migrated again, until a
pass finds none (at most five: else it stops and says why); then ``dedup_index_state/buckets``
retires them all: decisions stop reading buckets for the dataset scopes (a decision reading the
state then is retried by its transaction, and finds the chains complete).

Online-safe: it runs beside the deployed functions (which of this release write chains only, so
the buckets no longer change); stopped at any point, it runs again from where the records say,
and re-running it changes nothing. Run it once every function runs this release: a bucket an
instance of the earlier release writes after the last pass is not seen before the buckets retire
(a later run finds it). The videos' own buckets stay as they are (a video's
index is small, and is searched in buckets).

**Switched to tiered** (``dedup_window_hours``, :mod:`framesift.datasetindex`): a scope's earlier
kept hashes are in its generation-less chains, which tiered decisions read exactly beside their
generation until this says otherwise. After the buckets, every entry of those chains (each kept
hash is in exactly one leaf of chain 0) is added to the scope's tail, leaf by leaf, with the same
records (``dedup_index_state/migrated~{leaf id}``) and passes over the leaves written meanwhile;
then ``dedup_index_state/legacy_chains`` says the tail holds them, and that decisions read them
until one window from now: until then a near duplicate of one of them is found exactly, as before
the switch; after, it is older than the window, and found as any older frame is, in the tail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from framesift import datasetindex, dedupindex, phashindex, tailindex
from framesift.bookkeeping import BucketMigrated, BucketsRetired, LegacyChains
from framesift.errors import ReadMore
from framesift.parts import MAX_COMMIT_WRITES
from framesift.ports import DocKey, DocumentStore
from framesift.topology import Collections

# Leaves are at most cap x 20 bytes: stop adding to a commit past this (the emulator takes 4 MiB
# per commit, Firestore 10 MiB).
_COMMIT_BYTES = 2 * 1_048_576
# Entries offered to one transaction (it takes fewer when its writes reach a limit).
_CHUNK = 256
# Passes over the buckets written during the previous one before giving up.
_PASSES = 5
_CLOCK_MARGIN = timedelta(minutes=1)

Entry = tuple[str, str]  # a hash and its colour layout, in hex


@dataclass
class Migrated:
    """What one run did."""

    scopes: list[str]
    buckets: int = 0  # band-0 buckets read
    migrated: int = 0  # of them, migrated in this run (the others were already)
    entries: int = 0  # entries added to chains in this run
    retired: bool = False
    # Tiered: the generation-less chains' leaves read, migrated into the tail in this run, and
    # the entries added to it.
    legacy_leaves: int = 0
    legacy_migrated: int = 0
    tail_entries: int = 0
    legacy_read_until: datetime | None = None
    tail_scopes: list[str] = field(default_factory=list)


def migrate(
    documents: DocumentStore,
    shape: datasetindex.Shape,
    say: Callable[[str], None] = lambda _: None,
) -> Migrated:
    """Migrate every dataset scope's buckets into chains, then retire the buckets; tiered,
    then copy the generation-less chains into the tail."""
    began = _now()
    buckets = _band0_buckets(documents.changed_since(Collections.PHASH_BUCKETS, None))
    done = Migrated(scopes=sorted({_scope(bucket_id) for bucket_id in buckets}))
    done.buckets = len(buckets)

    def into_chains(bucket_id: str) -> bool:
        target = _Chains(_scope(bucket_id), shape.geometry)
        if not _migrate_source(documents, bucket_id, target, say):
            return False
        done.migrated += 1
        done.entries += target.added
        return True

    _passes(documents, buckets, began, _band0_buckets, into_chains)
    documents.merge(*datasetindex.RETIRED_KEY, BucketsRetired(retired=True).stored())
    done.retired = True
    if shape.window is not None and shape.tail is not None:
        _into_tail(documents, shape.window, shape.tail, done, say)
    return done


def _into_tail(
    documents: DocumentStore,
    window: datasetindex.Window,
    tail: tailindex.TailGeometry,
    done: Migrated,
    say: Callable[[str], None],
) -> None:
    began = _now()
    leaves = _legacy_leaves(documents.changed_since(Collections.PHASH_BUCKETS, None))
    done.legacy_leaves = len(leaves)
    done.tail_scopes = sorted({_chain_scope(leaf_id) for leaf_id in leaves})

    def into_tail(leaf_id: str) -> bool:
        target = _Tail(_chain_scope(leaf_id), tail)
        if not _migrate_source(documents, leaf_id, target, say):
            return False
        done.legacy_migrated += 1
        done.tail_entries += target.added
        return True

    _passes(documents, leaves, began, _legacy_leaves, into_tail)
    earlier = documents.get(*datasetindex.LEGACY_KEY)
    if earlier and not done.legacy_migrated:
        # Nothing copied: an earlier run's time stands (a re-run adds no window of reads).
        done.legacy_read_until = LegacyChains.model_validate(earlier).read_until
        return
    # A near duplicate of a frame kept before the switch is found exactly for one more window
    # (a scope that had none stops reading them at once).
    done.legacy_read_until = datetime.now(UTC) + (
        window.period + datasetindex.GRACE if leaves or done.legacy_migrated else timedelta(0)
    )
    documents.merge(
        *datasetindex.LEGACY_KEY,
        LegacyChains(in_tail=True, read_until=done.legacy_read_until).stored(),
    )


def _passes(
    documents: DocumentStore,
    sources: list[str],
    began: datetime,
    select: Callable[[Iterable[Mapping[str, Any]]], list[str]],
    migrate_one: Callable[[str], bool],
) -> None:
    """Migrate every source, then those written since the pass began, until a pass finds none."""
    for source_id in sources:
        migrate_one(source_id)
    for _ in range(_PASSES):
        # A function of the earlier release may have written a source after it was migrated
        # (its count then differs from its record): those written since the last pass began
        # are looked at again, until a pass finds none to migrate.
        changed = select(documents.changed_since(Collections.PHASH_BUCKETS, began))
        began = _now()
        if not [source_id for source_id in changed if migrate_one(source_id)]:
            return
    raise RuntimeError(
        "the old index still changes: functions of an earlier release (or settings) still write"
        " it; run this again once every function runs this release with these settings"
    )


def ensure_migrated(documents: DocumentStore, shape: datasetindex.Shape) -> None:
    """:func:`migrate`, unless nothing is left to: what an embedded run does before it decides
    (a new store is marked as having nothing to migrate), so its decisions stop reading the
    dataset scopes' old buckets (and, tiered, the generation-less chains). A deployment runs
    ``framesift migrate-dedup-index``."""
    state = {
        key: documents.get(*key) for key in (datasetindex.RETIRED_KEY, datasetindex.LEGACY_KEY)
    }
    tail_pending = shape.window is not None and not state[datasetindex.LEGACY_KEY]
    if tail_pending or not datasetindex.buckets_retired(state):
        migrate(documents, shape)


def _now() -> datetime:
    # Writers stamp updated_at by their own clocks: a margin for theirs being behind.
    return datetime.now(UTC) - _CLOCK_MARGIN


def _band0_buckets(docs: Iterable[Mapping[str, Any]]) -> list[str]:
    return sorted(doc["_id"] for doc in docs if _is_dataset_band0(doc["_id"]))


def _legacy_leaves(docs: Iterable[Mapping[str, Any]]) -> list[str]:
    """The generation-less chains' leaves of chain 0 (every kept hash is in exactly one)."""
    return sorted(
        doc["_id"]
        for doc in docs
        if _is_legacy_chain0(doc["_id"]) and not dedupindex.is_split(doc) and doc.get("hashes")
    )


class _Target(Protocol):
    """Where a source's entries go: a scope's chains, or its tail."""

    added: int  # entries it took that it did not hold

    def first(self, phash: str) -> list[str]: ...

    def own_leaves(self, phash: str, nodes: Mapping[str, Mapping[str, Any] | None]) -> list[str]:
        """The leaf on the hash's own path in each chain or table; raises ReadMore for nodes
        not read."""
        ...

    def grown(
        self, phash: str, nodes: Mapping[str, Mapping[str, Any] | None], layout: str, room: int
    ) -> dict[str, dict[str, Any]]: ...

    @property
    def min_writes(self) -> int: ...


@dataclass
class _Chains:
    scope: str
    geometry: dedupindex.Geometry
    added: int = 0

    def first(self, phash: str) -> list[str]:
        g = self.geometry
        return [
            dedupindex.node_id(self.scope, dedupindex.own_path(phash, start, g.min_depth, g))
            for start in range(g.chains)
        ]

    def own_leaves(self, phash: str, nodes: Mapping[str, Mapping[str, Any] | None]) -> list[str]:
        leaves: list[str] = []
        missing: list[str] = []
        for start in range(self.geometry.chains):
            depth = self.geometry.min_depth
            while True:
                node = dedupindex.node_id(
                    self.scope, dedupindex.own_path(phash, start, depth, self.geometry)
                )
                if node not in nodes:
                    missing.append(node)
                    break
                if not dedupindex.is_split(nodes[node]):
                    leaves.append(node)
                    break
                depth += 1
        if missing:
            raise ReadMore(datasetindex.node_keys(missing))
        return leaves

    def grown(
        self, phash: str, nodes: Mapping[str, Mapping[str, Any] | None], layout: str, room: int
    ) -> dict[str, dict[str, Any]]:
        return dedupindex.added(self.scope, phash, nodes, self.geometry, layout, room)

    @property
    def min_writes(self) -> int:
        return self.geometry.chains


@dataclass
class _Tail:
    scope: str
    geometry: tailindex.TailGeometry
    added: int = 0

    def first(self, phash: str) -> list[str]:
        return tailindex.first_reads(self.scope, phash, self.geometry)

    def own_leaves(self, phash: str, nodes: Mapping[str, Mapping[str, Any] | None]) -> list[str]:
        found = tailindex.own_plan(self.scope, phash, nodes, self.geometry)
        if found.missing:
            raise ReadMore(datasetindex.node_keys(found.missing))
        return found.leaves

    def grown(
        self, phash: str, nodes: Mapping[str, Mapping[str, Any] | None], layout: str, room: int
    ) -> dict[str, dict[str, Any]]:
        return tailindex.added(self.scope, phash, nodes, self.geometry, layout, room)

    @property
    def min_writes(self) -> int:
        return self.geometry.tables


def _migrate_source(
    documents: DocumentStore, source_id: str, target: _Target, say: Callable[[str], None]
) -> bool:
    """Add the source's entries (a bucket's, or a leaf's) to the target unless its record says
    they are; whether it did."""
    source = documents.get(Collections.PHASH_BUCKETS, source_id) or {}
    phashindex.check(source_id, source)
    entries = _entries(source)
    record = documents.get(Collections.DEDUP_INDEX_STATE, _record_id(source_id)) or {}
    if record.get("entries") == len(entries):
        return False
    added = 0
    while added < len(entries):
        added += _add(documents, target, entries[added:])
    documents.merge(
        Collections.DEDUP_INDEX_STATE,
        _record_id(source_id),
        BucketMigrated(bucket=source_id, entries=len(entries)).stored(),
    )
    say(f"{source_id}: {len(entries)} entries")
    return True


def _is_dataset_band0(bucket_id: str) -> bool:
    scope, _, rest = bucket_id.rpartition("~b0~")
    return bool(scope) and "~" not in rest and not scope.startswith("video:")


def _is_legacy_chain0(doc_id: str) -> bool:
    # A generation's node ends in ~g{generation} (dedupindex.Chains): not a path.
    scope, _, rest = doc_id.rpartition("~r0~")
    return bool(scope) and "~" not in rest and not scope.startswith("video:")


def _scope(bucket_id: str) -> str:
    return bucket_id.rpartition("~b0~")[0]


def _chain_scope(leaf_id: str) -> str:
    return leaf_id.rpartition("~r0~")[0]


def _record_id(source_id: str) -> str:
    return f"migrated~{source_id}"


def _entries(source: Mapping[str, Any]) -> list[Entry]:
    hashes = bytes(source.get("hashes") or b"")
    layouts = phashindex.bucket_layouts(source) if hashes else b""
    size = dedupindex.LAYOUT_BYTES
    return [
        (hashes[i * 8 : (i + 1) * 8].hex(), layouts[i * size : (i + 1) * size].hex())
        for i in range(len(hashes) // 8)
    ]


def _add(documents: DocumentStore, target: _Target, entries: list[Entry]) -> int:
    """Add the first of ``entries`` that fit one commit to the target; how many."""
    # No more than one commit can take: every offered entry's first documents are read.
    offered = entries[: max(1, min(_CHUNK, MAX_COMMIT_WRITES // target.min_writes))]
    first = {node for phash, _ in offered for node in datasetindex.node_keys(target.first(phash))}

    def change(docs: dict[DocKey, dict | None]) -> tuple[dict[DocKey, dict], tuple[int, int]]:
        nodes: dict[str, Mapping[str, Any] | None] = {key[1]: doc for key, doc in docs.items()}
        for doc_id, doc in nodes.items():
            phashindex.check(doc_id, doc)
        writes: dict[DocKey, dict[str, Any]] = {}
        taken = fresh = 0
        for phash, layout in offered:
            leaves = target.own_leaves(phash, nodes)
            if all(dedupindex.holds(nodes[leaf], phash, layout) for leaf in leaves):
                taken += 1
                continue
            room = MAX_COMMIT_WRITES - len(writes)
            if room < target.min_writes or _bytes(writes) > _COMMIT_BYTES:
                break
            found = target.grown(phash, nodes, layout, room)
            stored = datasetindex.node_keys(list(found))
            if len(writes.keys() | set(stored)) > MAX_COMMIT_WRITES:
                break
            nodes.update(found)
            writes.update(zip(stored, found.values(), strict=True))
            taken += 1
            fresh += 1
        return writes, (taken, fresh)

    taken, fresh = documents.transact(sorted(first), change)
    if not taken:  # one entry writes at most 1 + 64 documents a chain, and 41 KB a leaf
        raise RuntimeError(f"{target}: no entry fits one commit")
    target.added += fresh
    return taken


def _bytes(writes: Mapping[DocKey, Mapping[str, Any]]) -> int:
    return sum(
        len(data.get("hashes", b"")) + len(data.get("layouts", b"")) for data in writes.values()
    )

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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from framesift import datasetindex, dedupindex, phashindex
from framesift.bookkeeping import BucketMigrated, BucketsRetired
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


def migrate(
    documents: DocumentStore,
    threshold: int,
    cap: int,
    say: Callable[[str], None] = lambda _: None,
) -> Migrated:
    """Migrate every dataset scope's buckets into chains, then retire the buckets."""
    geometry = datasetindex.geometry(threshold, cap)
    began = _now()
    buckets = _band0_buckets(documents.changed_since(Collections.PHASH_BUCKETS, None))
    done = Migrated(scopes=sorted({_scope(bucket_id) for bucket_id in buckets}))
    done.buckets = len(buckets)
    for bucket_id in buckets:
        _migrate_bucket(documents, bucket_id, geometry, done, say)
    for _ in range(_PASSES):
        # A function of the earlier release may have written a bucket after it was migrated
        # (its count then differs from its record): those written since the last pass began
        # are looked at again, until a pass finds none to migrate.
        changed = _band0_buckets(documents.changed_since(Collections.PHASH_BUCKETS, began))
        began = _now()
        if not [b for b in changed if _migrate_bucket(documents, b, geometry, done, say)]:
            documents.merge(*datasetindex.RETIRED_KEY, BucketsRetired(retired=True).stored())
            done.retired = True
            return done
    raise RuntimeError(
        "the buckets still change: functions of an earlier release still write them; run"
        " this again once every function runs this release"
    )


def ensure_migrated(documents: DocumentStore, threshold: int, cap: int) -> None:
    """:func:`migrate`, unless the buckets were retired: what an embedded run does before it
    decides (a new store is marked as having nothing to migrate), so its decisions stop reading
    the dataset scopes' old buckets. A deployment runs ``framesift migrate-dedup-index``."""
    if not datasetindex.buckets_retired(
        {datasetindex.RETIRED_KEY: documents.get(*datasetindex.RETIRED_KEY)}
    ):
        migrate(documents, threshold, cap)


def _now() -> datetime:
    # Writers stamp updated_at by their own clocks: a margin for theirs being behind.
    return datetime.now(UTC) - _CLOCK_MARGIN


def _band0_buckets(docs: Iterable[Mapping[str, Any]]) -> list[str]:
    return sorted(doc["_id"] for doc in docs if _is_dataset_band0(doc["_id"]))


def _migrate_bucket(
    documents: DocumentStore,
    bucket_id: str,
    geometry: dedupindex.Geometry,
    done: Migrated,
    say: Callable[[str], None],
) -> bool:
    """Add the bucket's entries to its scope's chains unless its record says they are; whether
    it did."""
    bucket = documents.get(Collections.PHASH_BUCKETS, bucket_id) or {}
    phashindex.check(bucket_id, bucket)
    entries = _entries(bucket)
    record = documents.get(Collections.DEDUP_INDEX_STATE, _record_id(bucket_id)) or {}
    if record.get("entries") == len(entries):
        return False
    added = 0
    while added < len(entries):
        added += _add(documents, _scope(bucket_id), entries[added:], geometry, done)
    documents.merge(
        Collections.DEDUP_INDEX_STATE,
        _record_id(bucket_id),
        BucketMigrated(bucket=bucket_id, entries=len(entries)).stored(),
    )
    done.migrated += 1
    say(f"{bucket_id}: {len(entries)} entries")
    return True


def _is_dataset_band0(bucket_id: str) -> bool:
    scope, _, rest = bucket_id.rpartition("~b0~")
    return bool(scope) and "~" not in rest and not scope.startswith("video:")


def _scope(bucket_id: str) -> str:
    return bucket_id.rpartition("~b0~")[0]


def _record_id(bucket_id: str) -> str:
    return f"migrated~{bucket_id}"


def _entries(bucket: Mapping[str, Any]) -> list[Entry]:
    hashes = bytes(bucket.get("hashes") or b"")
    layouts = phashindex.bucket_layouts(bucket) if hashes else b""
    size = dedupindex.LAYOUT_BYTES
    return [
        (hashes[i * 8 : (i + 1) * 8].hex(), layouts[i * size : (i + 1) * size].hex())
        for i in range(len(hashes) // 8)
    ]


def _add(
    documents: DocumentStore,
    scope: str,
    entries: list[Entry],
    geometry: dedupindex.Geometry,
    done: Migrated,
) -> int:
    """Add the first of ``entries`` that fit one commit to the scope's chains; how many."""
    offered = entries[:_CHUNK]
    first = {
        node
        for phash, _ in offered
        for node in datasetindex.node_keys(
            [
                dedupindex.node_id(
                    scope, dedupindex.own_path(phash, start, geometry.min_depth, geometry)
                )
                for start in range(geometry.chains)
            ]
        )
    }

    def change(docs: dict[DocKey, dict | None]) -> tuple[dict[DocKey, dict], tuple[int, int]]:
        nodes: dict[str, Mapping[str, Any] | None] = {key[1]: doc for key, doc in docs.items()}
        for doc_id, doc in nodes.items():
            phashindex.check(doc_id, doc)
        writes: dict[DocKey, dict[str, Any]] = {}
        taken = fresh = 0
        for phash, layout in offered:
            leaves = _own_leaves(scope, phash, nodes, geometry)
            if all(_holds(nodes[leaf], phash, layout) for leaf in leaves):
                taken += 1
                continue
            room = MAX_COMMIT_WRITES - len(writes)
            if room < geometry.chains or _bytes(writes) > _COMMIT_BYTES:
                break
            found = dedupindex.added(scope, phash, nodes, geometry, layout, room)
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
        raise RuntimeError(f"{scope}: no entry fits one commit")
    done.entries += fresh
    return taken


def _own_leaves(
    scope: str,
    phash: str,
    nodes: Mapping[str, Mapping[str, Any] | None],
    geometry: dedupindex.Geometry,
) -> list[str]:
    """The leaf on the hash's own path in each chain; raises ReadMore for nodes not read."""
    leaves: list[str] = []
    missing: list[str] = []
    for start in range(geometry.chains):
        depth = geometry.min_depth
        while True:
            node = dedupindex.node_id(scope, dedupindex.own_path(phash, start, depth, geometry))
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


def _holds(leaf: Mapping[str, Any] | None, phash: str, layout: str) -> bool:
    if not leaf or not leaf.get("hashes"):
        return False
    wanted = (bytes.fromhex(phash), bytes.fromhex(layout))
    return wanted in _pairs(leaf)


def _pairs(leaf: Mapping[str, Any]) -> set[tuple[bytes, bytes]]:
    hashes = bytes(leaf["hashes"])
    layouts = phashindex.bucket_layouts(leaf)
    size = dedupindex.LAYOUT_BYTES
    return {
        (hashes[i * 8 : (i + 1) * 8], layouts[i * size : (i + 1) * size])
        for i in range(len(hashes) // 8)
    }


def _bytes(writes: Mapping[DocKey, Mapping[str, Any]]) -> int:
    return sum(
        len(data.get("hashes", b"")) + len(data.get("layouts", b"")) for data in writes.values()
    )

"""The chains index (framesift.dedupindex) through the Firestore adapter on the emulator: exact
against a numpy scan at every decision, with leaves split several levels deep (a small cap), and
a hash delivered twice found, not added again. The emulator enforces none of Firestore's limits;
benchmarks measure those (framesift bench index)."""

from __future__ import annotations

import numpy as np
import pytest

from framesift import dedupindex as di
from framesift.adapters.gcp.firestore import FirestoreDocumentStore
from framesift.errors import ReadMore
from framesift.phashindex import Neighbour
from framesift.topology import Collections

KEY = Collections.PHASH_BUCKETS
G = di.Geometry(cap=4)  # 4 entries a leaf: 150 hashes split leaves one to three levels down


def _decide(store: FirestoreDocumentStore, scope: str, phash: str, keep: bool) -> Neighbour | None:
    """One transaction: the nearest stored hash within t, or (``keep``) add this one."""

    def change(docs):
        view = {doc_id: doc for (_, doc_id), doc in docs.items()}
        found = di.plan(scope, phash, view, G)
        if found.missing:
            raise ReadMore([(KEY, doc_id) for doc_id in found.missing])
        match = di.nearest(phash, view, found, G)
        if match is not None or not keep:
            return {}, match
        return {(KEY, doc_id): doc for doc_id, doc in di.added(scope, phash, view, G).items()}, None

    return store.transact([(KEY, doc_id) for doc_id in di.first_reads(scope, phash, G)], change)


def _scan(kept: list[int], phash: str) -> int | None:
    if not kept:
        return None
    distances = np.bitwise_count(np.array(kept, dtype=np.uint64) ^ np.uint64(int(phash, 16)))
    best = int(distances.min())
    return best if best <= G.threshold else None


@pytest.mark.emulated
def test_the_chains_on_firestore_decide_as_a_numpy_scan_and_a_redelivery_adds_nothing(
    devstack, unique
):
    store = FirestoreDocumentStore(devstack.project)
    scope = f"collector:chains-{unique}"
    rng = np.random.default_rng(7)
    # Half uniform, half around one centre (12+ bits apart: mostly kept, piling into one path).
    centre = int(rng.integers(0, 2**63))
    hashes = [int(h) for h in rng.integers(0, 2**63, 75)]
    for _ in range(75):
        value = centre
        for bit in rng.choice(40, size=int(rng.integers(6, 14)), replace=False):
            value ^= 1 << int(bit)
        hashes.append(value)
    kept: list[int] = []
    for value in hashes:
        phash = f"{value:016x}"
        match = _decide(store, scope, phash, keep=True)
        assert (match.distance if match else None) == _scan(kept, phash), phash
        if match is None:
            kept.append(value)
    assert 60 < len(kept) < len(hashes)  # some of the cluster's were within t of another

    stored = {d["_id"]: d for d in store.changed_since(KEY, None) if d["_id"].startswith(scope)}
    assert any(di.is_split(doc) for doc in stored.values())
    assert max(di.entries([doc]) for doc in stored.values()) <= G.cap
    assert sum(di.entries([doc]) for doc in stored.values()) == len(kept) * G.chains

    # Planted neighbours at 1..t bits of kept hashes, and fresh hashes: each exactly as the scan.
    for index in range(60):
        value = kept[index % len(kept)] if index % 2 else int(rng.integers(0, 2**63))
        for bit in rng.choice(64, size=int(rng.integers(1, G.threshold + 1)), replace=False):
            value ^= 1 << int(bit)
        phash = f"{value:016x}"
        match = _decide(store, scope, phash, keep=False)
        assert (match.distance if match else None) == _scan(kept, phash), phash

    # A kept hash delivered again is found at distance 0 and written nowhere.
    again = f"{kept[0]:016x}"
    assert _decide(store, scope, again, keep=True) == Neighbour(phash=again, distance=0)
    after = {d["_id"]: d for d in store.changed_since(KEY, None) if d["_id"].startswith(scope)}
    assert sum(di.entries([doc]) for doc in after.values()) == len(kept) * G.chains

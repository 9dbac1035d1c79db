"""The chains index (framesift.dedupindex) through the Firestore adapter on the emulator: exact
against a numpy scan at every decision, with leaves split several levels deep (a small cap), and
a hash delivered twice found, not added again. The emulator enforces none of Firestore's limits;
the benchmark's simulator does (framesift bench index; tests/unit/test_indexbench.py runs the
same check through it)."""

from __future__ import annotations

import json

import pytest

from framesift import dedupindex as di
from framesift.adapters.gcp.firestore import FirestoreDocumentStore
from framesift.phashindex import Neighbour
from framesift.topology import Collections
from framesift_dev import indexbench

G = di.Geometry(cap=4)  # 4 entries a leaf: 150 hashes split leaves one to three levels down


@pytest.mark.emulated
def test_the_chains_on_firestore_decide_as_a_numpy_scan_and_a_redelivery_adds_nothing(
    devstack, unique
):
    store = FirestoreDocumentStore(devstack.project)
    scope = f"collector:chains-{unique}"
    checked = indexbench.through_store(store, "firestore-emulator", 150, G, seed=7, scope=scope)
    assert checked["exact_errors"] == 0
    assert checked["decisions"] == 225
    assert 60 < checked["kept"] < 150  # some of the cluster's were within t of another

    def index() -> dict[str, dict]:
        docs = store.changed_since(Collections.PHASH_BUCKETS, None)
        return {d["_id"]: d for d in docs if d["_id"].startswith(scope)}

    stored = index()
    assert any(di.is_split(doc) for doc in stored.values())
    assert max(di.entries([doc]) for doc in stored.values()) <= G.cap
    assert sum(di.entries([doc]) for doc in stored.values()) == checked["kept"] * G.chains

    # A kept hash delivered again is found at distance 0 and written nowhere.
    leaf = next(doc for doc in stored.values() if di.entries([doc]))
    again = bytes(leaf["hashes"])[:8].hex()
    match = indexbench.decide(store, scope, again, G, keep=True)
    assert match == Neighbour(phash=again, distance=0)
    assert sum(di.entries([doc]) for doc in index().values()) == checked["kept"] * G.chains


@pytest.mark.emulated
def test_framesift_bench_index_firestore_checks_the_chains_on_the_emulator(devstack, capsys):
    indexbench.main(["--sizes", "", "--simulate", "", "--firestore", "--json"])
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["backend"] == "firestore-emulator" and row["exact_errors"] == 0
    assert row["decisions"] == 600 and 0 < row["kept"] <= 400

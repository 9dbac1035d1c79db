"""The Firestore limits simulator: sizes as the storage-size page computes them, commits refused
over the limits, and a contention model in which shared documents abort transactions."""

from __future__ import annotations

import pytest

from framesift import dedupindex as di
from framesift.errors import ReadMore
from framesift.parts import value_size
from framesift.ports import UPDATED_AT
from framesift_dev import firestore_limits as fl


def test_the_storage_size_page_example_is_147_bytes():
    # users/jeff/tasks/my_task_id: the page's example, less its parent path (6 + 5 bytes).
    fields = {
        "type": "Personal",
        "done": False,
        "priority": 1,
        "description": "Learn Cloud Firestore",
    }
    size = fl.document_size("tasks", "my_task_id", {**fields, UPDATED_AT: 0})
    assert size == 147 - 6 - 5 + value_size(UPDATED_AT) + 8


def test_bytes_fields_count_their_length():
    empty = fl.document_size("c", "d", {"hashes": b""})
    assert fl.document_size("c", "d", {"hashes": b"x" * 1000}) == empty + 1000


def _put(store: fl.LimitedStore, writes: dict) -> None:
    store.transact([], lambda docs: (writes, None))


def test_a_document_over_one_mib_is_refused():
    store = fl.LimitedStore()
    _put(store, {("c", "ok"): {"hashes": b"x" * (fl.DOCUMENT_LIMIT - 200)}})
    with pytest.raises(fl.LimitExceeded, match="1 MiB"):
        _put(store, {("c", "big"): {"hashes": b"x" * fl.DOCUMENT_LIMIT}})
    assert ("c", "big") not in store.docs


def test_a_commit_over_500_writes_or_10_mib_is_refused():
    store = fl.LimitedStore()
    _put(store, {("c", str(i)): {"v": 1} for i in range(500)})
    with pytest.raises(fl.LimitExceeded, match="500"):
        _put(store, {("c", str(i)): {"v": 1} for i in range(501)})
    with pytest.raises(fl.LimitExceeded, match="10 MiB"):
        _put(store, {("c", str(i)): {"hashes": b"x" * 900_000} for i in range(12)})


def test_the_index_keeps_within_the_limits_through_the_store_and_counts_what_it_moves():
    g = di.Geometry(cap=2)
    store = fl.LimitedStore()
    key = "phash_buckets"
    for i in range(800):
        phash = f"{(i * 0x9E3779B97F4A7C15) % 2**64:016x}"

        def change(docs, phash=phash):
            view = {doc_id: docs[(key, doc_id)] for _, doc_id in docs}
            found = di.plan("s", phash, view, g)
            if found.missing:
                raise ReadMore([(key, m) for m in found.missing])
            writes = di.added("s", phash, view, g)
            return {(key, doc_id): doc for doc_id, doc in writes.items()}, None

        store.transact([], change)
    assert any(di.is_split(doc) for doc in store.docs.values())
    fields = {"hashes": b"", "layouts": b"", "split": False}
    assert store.counts.largest_document <= fl.document_size(key, "x" * 60, fields) + 2 * 20
    assert g.chains + 1 < store.counts.largest_commit_writes <= fl.COMMIT_WRITES_LIMIT
    assert store.counts.docs_written >= 800 * g.chains


def test_transactions_that_share_a_document_abort_and_those_that_do_not_never_do():
    shared = [fl.Decision(frozenset({"a"}), frozenset({"a"}), 0.05) for _ in range(200)]
    apart = [fl.Decision(frozenset({f"{i}"}), frozenset({f"{i}"}), 0.05) for i in range(200)]
    assert fl.simulate(shared, 100).aborts > 0
    assert fl.simulate(apart, 100).aborts == 0
    assert fl.sustained_rate(apart, hottest_write_share=1 / 200) == 200


def test_the_ramp_rule_takes_five_minutes_per_half_again():
    assert fl.ramp_minutes(500) == 0
    assert fl.ramp_minutes(750) == 5
    assert fl.ramp_minutes(1125) == 10

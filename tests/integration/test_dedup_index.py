"""The dataset scope's chains (framesift.dedupindex) under the dedup stage, on SQLite and on the
Firestore emulator: decisions through split leaves are the exhaustive search's, and two
instances racing on near twins, each message delivered twice, keep exactly one."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from framesift import dedupindex
from framesift.documents import DedupDecision
from framesift.imagestats import hamming
from framesift.messages import KeptFrames
from framesift.topology import Collections, Topics
from tests.support.dedupframes import (
    clustered_hashes,
    exhaustive,
    hashes_near_one_another,
    one_frame_batch,
    stage,
)
from tests.support.fakes import RecordingPublisher


class Ticking:
    """A clock 10 ms further on at every reading: a hot cluster's kept frames at about 100/s."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 6, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=10)
        return self.now


def assert_exhaustive(
    hashes: list[str], decisions: list[DedupDecision], videos: dict[str, str]
) -> int:
    """Each decision is the exhaustive search's (kept, or a near duplicate of the closest kept
    frame of the video ``videos`` names); returns how many were kept."""
    expected = exhaustive(hashes)
    for phash, decision, repeats in zip(hashes, decisions, expected, strict=True):
        if repeats is None:
            assert decision.status == "kept", phash
        else:
            assert (decision.status, decision.scope) == ("dropped", "dataset"), phash
            assert decision.duplicate_of == f"{videos[repeats]}_0000000000"
            assert decision.distance == hamming(phash, repeats)
    return expected.count(None)


def test_decisions_through_split_leaves_are_the_exhaustive_searchs(index_documents, unique):
    """Leaves of 1 hash: the chains split several levels deep, and each decision (kept, or a
    near duplicate of the closest kept frame) is the one comparing with every kept frame."""
    documents = index_documents
    dedup = stage(documents, RecordingPublisher(), dedup_leaf_cap=1)
    collector = f"cam-{unique}"
    hashes = hashes_near_one_another(seed=5, count=120)
    videos = {phash: f"{unique}v{index:03d}" for index, phash in enumerate(hashes)}

    decisions = [
        dedup.decide(batch.frames[0], batch)
        for batch in (one_frame_batch(videos[h], collector, h) for h in hashes)
    ]

    assert 20 < assert_exhaustive(hashes, decisions, videos) < 100
    split = [
        doc
        for doc in documents.where(Collections.PHASH_BUCKETS, "split", True)
        if doc.get("hashes") == b""
    ]
    assert len(split) > 30, len(split)  # below the first documents, in every chain


def _entries(doc: dict | None) -> list[bytes]:
    hashes = bytes((doc or {}).get("hashes") or b"")
    return [hashes[i : i + 8] for i in range(0, len(hashes), 8)]


def test_hot_leaves_split_by_write_rate_and_decisions_stay_the_exhaustive_searchs(
    index_documents, unique
):
    """A hot cluster decided 10 ms apart, each frame delivered twice: the leaves it crowds split
    by their write rate (the cap, 2048, is never reached) and each decision is the exhaustive
    search's."""
    documents = index_documents
    dedup = stage(documents, RecordingPublisher(), Ticking())
    collector = f"cam-{unique}"
    hashes = clustered_hashes(seed=9, count=150)
    videos = {phash: f"{unique}v{index:03d}" for index, phash in enumerate(hashes)}

    decisions: list[DedupDecision] = []
    for batch in (one_frame_batch(videos[h], collector, h) for h in hashes):
        first = dedup.decide(batch.frames[0], batch)
        assert dedup.decide(batch.frames[0], batch) == first  # redelivered: the same decision
        decisions.append(first)

    assert assert_exhaustive(hashes, decisions, videos) > 60
    # The first documents of the chains whose first bands the cluster shares: split by rate
    # (150 hashes: no leaf came near the cap).
    g = dedupindex.Geometry()
    scope = f"collector:{collector}"
    first = {
        dedupindex.node_id(scope, dedupindex.own_path(hashes[0], start, 1, g))
        for start in range(g.chains)
    }
    split = [i for i in first if dedupindex.is_split(documents.get(Collections.PHASH_BUCKETS, i))]
    assert len(split) >= 2, split
    # Every kept hash is in the leaf on its own path in every chain (a split moved each entry
    # to its child).
    kept = [
        phash
        for phash, decision in zip(hashes, decisions, strict=True)
        if decision.status == "kept"
    ]
    for phash in kept:
        for start in range(g.chains):
            depth = g.min_depth
            while True:
                node = dedupindex.own_path(phash, start, depth, g)
                doc = documents.get(Collections.PHASH_BUCKETS, dedupindex.node_id(scope, node))
                if not dedupindex.is_split(doc):
                    break
                depth += 1
            assert int(phash, 16).to_bytes(8, "big") in _entries(doc), (phash, start)


def decide_at_once(calls: list[Callable[[], object]]) -> None:
    start = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        start.wait()
        try:
            call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def _race_twins(
    documents, instances: list, publisher: RecordingPublisher, unique: str, bases: list[int]
) -> None:
    """For each base, two videos' frames 3 bits apart, each batch delivered to every instance
    at the same moment: one frame is kept and sent on, the other dropped as its near
    duplicate."""
    collector = f"cam-{unique}"
    for round_, base in enumerate(bases):
        twins = [
            one_frame_batch(f"{unique}a{round_}", collector, f"{base:016x}"),
            one_frame_batch(f"{unique}b{round_}", collector, f"{base ^ 0b10101:016x}"),
        ]
        decide_at_once(
            [
                lambda instance=instance, batch=batch: instance.handle_batch(batch)
                for instance in instances
                for batch in twins
            ]
        )
        frames = [
            documents.get(Collections.FRAMES, batch.frames[0].frame_id) or {} for batch in twins
        ]
        statuses = [frame["dedup_status"] for frame in frames]
        assert sorted(statuses) == ["dropped", "kept"], round_
        kept, dropped = (0, 1) if statuses[0] == "kept" else (1, 0)
        assert frames[dropped]["dedup_scope"] == "dataset"
        assert frames[dropped]["dedup_duplicate_of"] == twins[kept].frames[0].frame_id
        # A batch both instances decided at once may be sent twice (the labeler is idempotent
        # per frame); never its twin.
        sent = {
            frame.frame_id
            for message in publisher.published[Topics.FRAMES_KEPT]
            for frame in KeptFrames.model_validate_json(message.data).frames
            if frame.frame_id.startswith(f"{unique}")
            and frame.frame_id[len(unique) + 1 :] == f"{round_}_0000000000"
        }
        assert sent == {twins[kept].frames[0].frame_id}


def test_two_instances_racing_on_near_twins_delivered_twice_keep_one(index_documents, unique):
    """Two videos' frames 3 bits apart, each batch delivered to both instances at the same
    moment: one frame is kept and sent on, the other dropped as its near duplicate."""
    publisher = RecordingPublisher()
    instances = [stage(index_documents, publisher), stage(index_documents, publisher)]
    rng = random.Random(unique)
    _race_twins(
        index_documents, instances, publisher, unique, [rng.getrandbits(64) for _ in range(6)]
    )


def test_two_instances_that_know_a_clusters_splits_racing_on_its_near_twins_keep_one(
    index_documents, unique
):
    """Both instances first decide a hot cluster (leaves of one hash: split deep), so each
    knows the split nodes and reads only leaves in one round; racing on near twins in that
    cluster, they still keep one of each pair."""
    publisher = RecordingPublisher()
    instances = [
        stage(index_documents, publisher, dedup_leaf_cap=1),
        stage(index_documents, publisher, dedup_leaf_cap=1),
    ]
    collector = f"cam-{unique}"
    cluster = clustered_hashes(seed=9, count=40)
    for index, phash in enumerate(cluster):
        # Each instance decides the cluster's hashes as frames of its own (the second's are
        # the first's duplicates): each walks, and learns, every path.
        for copy, instance in enumerate(instances):
            batch = one_frame_batch(f"{unique}w{copy}{index:02d}", collector, phash)
            instance.decide(batch.frames[0], batch)
    assert all(len(instance._known) > 20 for instance in instances)
    centre = int(cluster[0], 16) >> 40 << 40  # clustered_hashes' fixed 24 bits
    rng = random.Random(unique)
    bases: list[int] = []
    while len(bases) < 6:
        base = centre | rng.getrandbits(40)
        # Neither twin a near duplicate of a frame decided before: the cluster's, or another
        # round's (each twin 3 bits from its base).
        earlier = [*cluster, *(f"{b:016x}" for b in bases)]
        if all(hamming(f"{base:016x}", kept) > 16 for kept in earlier):
            bases.append(base)
    _race_twins(index_documents, instances, publisher, unique, bases)

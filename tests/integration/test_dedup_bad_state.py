"""A corrupt dedup index document, or a kept hash without its owner, on SQLite and on the
Firestore emulator: the frames whose lookup reads it fail with a record on the frame and the
batch dead-lettered; the batch's other frames are decided and sent on; nothing is kept silently;
the replay after the repair decides the failed frame and changes no other decision."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from framesift import dedupindex, phashindex
from framesift.config import Settings
from framesift.datasetindex import geometry
from framesift.delivery import deliver
from framesift.events import PubSubMessage
from framesift.messages import FrameBatch, KeptFrames
from framesift.ports import DocumentStore
from framesift.topology import Collections, Topics
from tests.support.dedupframes import one_frame_batch, stage
from tests.support.fakes import RecordingPublisher

SETTINGS = Settings()
KEPT = "0f3c5a9966e1b27d"
NEAR = "0f3c5a9966e1b27a"  # 2 bits from KEPT
FAR = "f0c3a5669911e4d8"  # far from both


def _leaf_of_kept(documents: DocumentStore, scope: str) -> str:
    """The leaf of chain 0 that holds KEPT (the chains start at two bands: no split here)."""
    g = geometry(SETTINGS.dedup_threshold, SETTINGS.dedup_leaf_cap)
    return dedupindex.node_id(scope, dedupindex.own_path(KEPT, 0, g.min_depth, g))


def _truncate(documents: DocumentStore, scope: str) -> Callable[[], None]:
    leaf = _leaf_of_kept(documents, scope)
    good = documents.get(Collections.PHASH_BUCKETS, leaf) or {}
    documents.merge(Collections.PHASH_BUCKETS, leaf, {"hashes": bytes(good["hashes"])[:-1]})
    return lambda: documents.merge(Collections.PHASH_BUCKETS, leaf, {"hashes": good["hashes"]})


def _undecodable(documents: DocumentStore, scope: str) -> Callable[[], None]:
    leaf = _leaf_of_kept(documents, scope)
    good = documents.get(Collections.PHASH_BUCKETS, leaf) or {}
    documents.merge(Collections.PHASH_BUCKETS, leaf, {"layouts": "not bytes"})
    return lambda: documents.merge(Collections.PHASH_BUCKETS, leaf, {"layouts": good["layouts"]})


def _ownerless(documents: DocumentStore, scope: str) -> Callable[[], None]:
    owner = phashindex.owner_id(scope, KEPT)
    good = documents.get(Collections.PHASH_OWNERS, owner) or {}
    documents.merge(Collections.PHASH_OWNERS, owner, {"frame_id": None})
    return lambda: documents.merge(Collections.PHASH_OWNERS, owner, good)


@pytest.mark.parametrize("corrupt", [_truncate, _undecodable, _ownerless])
def test_a_frame_reading_a_corrupt_index_fails_alone_and_is_decided_after_the_repair(
    index_documents, unique, corrupt
):
    documents = index_documents
    publisher = RecordingPublisher()
    dedup = stage(documents, publisher)
    collector = f"cam-{unique}"
    first = one_frame_batch(f"{unique}first", collector, KEPT)
    assert dedup.decide(first.frames[0], first).status == "kept"
    repair = corrupt(documents, f"collector:{collector}")
    near, far = (
        one_frame_batch(f"{unique}{n}", collector, h) for n, h in (("n", NEAR), ("f", FAR))
    )
    batch = FrameBatch.model_validate(
        {**near.model_dump(), "frames": [near.frames[0], far.frames[0]]}
    )
    message = PubSubMessage.of(batch.model_dump_json().encode(), {}, f"m-{unique}")

    def delivered(message: PubSubMessage) -> object:
        return deliver(
            message,
            dedup.handle_message,
            subscriber="dedup",
            topic=Topics.FRAMES_SAMPLED,
            documents=documents,
            publisher=publisher,
            max_attempts=5,
        )

    delivered(message)

    failed = documents.get(Collections.FRAMES, near.frames[0].frame_id) or {}
    assert failed["dedup_status"] == "failed"
    assert "dedup index" in failed["dedup_error"]
    assert (documents.get(Collections.FRAMES, far.frames[0].frame_id) or {})[
        "dedup_status"
    ] == "kept"
    [letter] = publisher.published[Topics.DEAD_LETTERS]
    assert letter.attributes["error"].startswith("CorruptIndex: 1 of 2 frames not decided")
    record = documents.get(Collections.DEAD_LETTERS, f"dedup~m-{unique}") or {}
    assert record["permanent"] is True
    assert _sent(publisher) == [far.frames[0].frame_id]
    batch_record = documents.get(Collections.DEDUP_BATCHES, batch.batch_id) or {}
    assert (batch_record["status"], batch_record["failed"]) == ("failed", 1)

    repair()
    delivered(PubSubMessage.of(message.payload(), {}, f"m-{unique}-replayed"))

    decided = documents.get(Collections.FRAMES, near.frames[0].frame_id) or {}
    assert (decided["dedup_status"], decided["dedup_duplicate_of"]) == (
        "dropped",
        first.frames[0].frame_id,
    )
    assert decided["dedup_error"] is None
    assert len(publisher.published[Topics.DEAD_LETTERS]) == 1
    assert set(_sent(publisher)) == {far.frames[0].frame_id}  # sent again, the same decision
    batch_record = documents.get(Collections.DEDUP_BATCHES, batch.batch_id) or {}
    assert (batch_record["status"], batch_record["failed"]) == ("sent", 0)


def _sent(publisher: RecordingPublisher) -> list[str]:
    return [
        frame.frame_id
        for message in publisher.published[Topics.FRAMES_KEPT]
        for frame in KeptFrames.model_validate_json(message.data).frames
    ]

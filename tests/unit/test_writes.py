"""One way to write a document: through its model, created once, stamped by the store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from framesift.adapters.embedded.sqlite import SqliteDocumentStore
from framesift.annotations import LabelRules, store
from framesift.bookkeeping import MODELS, DedupBatch, DedupBatchStatus
from framesift.documents import (
    AnnotationStatus,
    SegmentRecord,
    VideoRecord,
    VideoStatus,
    create_or_get,
)
from framesift.topology import Collections
from framesift.vendors.scale import ScaleCallback
from tests.support.payloads import FRAME, scale_box, scale_callback, store_sent_frames

RULES = LabelRules(frozenset({"car", "truck"}), 0.02)


@pytest.fixture
def documents(tmp_path):
    return SqliteDocumentStore(tmp_path / "documents.sqlite")


def test_every_collection_has_its_models():
    named = {value for key, value in vars(Collections).items() if key.isupper()}
    assert MODELS.keys() == named


def test_a_partial_update_names_only_fields_of_the_model_and_never_updated_at():
    assert VideoRecord.fields(status="failed", error="x") == {"status": "failed", "error": "x"}
    with pytest.raises(TypeError, match="frames_sampled"):
        SegmentRecord.fields(frames_sampled=3)
    with pytest.raises(TypeError, match="updated_at"):
        VideoRecord.fields(updated_at=datetime.now(UTC))


def test_create_or_get_creates_once_and_then_answers_what_exists(documents):
    video = VideoRecord(
        id="v1",
        collector="c",
        video_id="cam",
        bucket="raw",
        object_name="videos/c/cam.mp4",
        generation=1,
        status=VideoStatus.PROCESSING,
    )
    created, written = create_or_get(documents, Collections.VIDEOS, video.id, video)
    assert created
    assert "updated_at" not in written  # the store's to set
    stored = documents.get(Collections.VIDEOS, video.id)
    assert stored["updated_at"] is not None
    documents.merge(Collections.VIDEOS, video.id, VideoRecord.fields(status="sampled"))
    again = video.model_copy(update={"collector": "other"})
    created, existing = create_or_get(documents, Collections.VIDEOS, video.id, again)
    assert not created
    assert (existing["status"], existing["collector"]) == ("sampled", "c")


def test_a_dedup_batch_is_stored_as_before_it_was_modelled(documents):
    batch = DedupBatch(id="b", video_doc_id="v", status=DedupBatchStatus.PROCESSING)
    create_or_get(documents, Collections.DEDUP_BATCHES, batch.id, batch)
    sent = DedupBatch.fields(status=DedupBatchStatus.SENT.value, kept=1, frames=2)
    documents.merge(Collections.DEDUP_BATCHES, batch.id, sent)
    stored = documents.get(Collections.DEDUP_BATCHES, batch.id)
    assert stored.pop("updated_at")
    assert stored == {"id": "b", "video_doc_id": "v", "status": "sent", "kept": 1, "frames": 2}


def _records(**callback):
    return ScaleCallback.model_validate(scale_callback(**callback)).records()


def test_an_annotation_keeps_when_it_was_received_through_later_writes(documents):
    store_sent_frames(documents)
    before = datetime.now(UTC)
    [first] = _records()
    assert store(documents, first, RULES)
    after = datetime.now(UTC)
    stored = documents.get(Collections.ANNOTATIONS, first.id)
    received = datetime.fromisoformat(stored["received_at"])
    assert before <= received <= after
    frame = documents.get(Collections.FRAMES, FRAME)
    assert datetime.fromisoformat(frame["labeled_at"]) == received

    # A newer version, a repeat of it, and a deletion: each a later write of the annotation.
    [newer] = _records(
        completed_at="2026-11-21T00:00:00Z", boxes=[scale_box("truck", 0, 0, 10, 10)]
    )
    assert store(documents, newer, RULES)
    assert not store(documents, newer, RULES)
    deleted = newer.model_copy(
        update={
            "status": AnnotationStatus.DELETED,
            "vendor_updated_at": datetime(2026, 11, 22, tzinfo=UTC),
        }
    )
    assert store(documents, deleted, RULES)
    stored = documents.get(Collections.ANNOTATIONS, first.id)
    assert stored["status"] == "deleted"
    assert datetime.fromisoformat(stored["received_at"]) == received
    assert datetime.fromisoformat(stored["updated_at"]) > after  # stamped by the store

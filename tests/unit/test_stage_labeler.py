"""The labeler over in-memory fakes of its ports and a recording vendor: one task per frame
whatever the redeliveries, a vendor that is down or refuses, ``give_up``, and a budgeted round
spent once. What is checked is what the vendor was asked and what the frame documents say."""

from __future__ import annotations

import io
from functools import partial
from typing import Any

import pytest
from PIL import Image

from framesift.config import Settings, section
from framesift.detection import Detection
from framesift.errors import VendorRejected, VendorUnavailable
from framesift.events import PubSubMessage
from framesift.messages import ROUND_MESSAGE, KeptFrames
from framesift.ports import Lazy
from framesift.prelabels import Prelabeler, PrelabelerConfig
from framesift.selection import load_policy
from framesift.stages.labeler import Labeler, LabelerConfig
from framesift.topology import Collections
from tests.support.fakes import (
    FixedDetector,
    InMemoryBlobStore,
    InMemoryDocumentStore,
    RecordingVendor,
)
from tests.support.payloads import kept_frames

SETTINGS = Settings()


def _jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "grey").save(out, "JPEG")
    return out.getvalue()


FRAME_JPEG = _jpeg(320, 240)  # kept_frames' frames are 320 x 240


class Stack:
    def __init__(self, detector: FixedDetector | None = None, **settings: Any) -> None:
        self.blobs = InMemoryBlobStore()
        self.documents = InMemoryDocumentStore()
        self.vendor = RecordingVendor()
        configured = SETTINGS.model_copy(update=settings)
        prelabeler = (  # loaded on the first batch, as the composition root does
            None
            if detector is None
            else Lazy(
                partial(
                    Prelabeler,
                    detector,
                    self.documents,
                    self.blobs,
                    section(PrelabelerConfig, configured),
                )
            )
        )
        self.labeler = Labeler(
            self.blobs,
            self.documents,
            self.vendor,
            section(LabelerConfig, configured),
            load_policy(configured),
            prelabeler,
        )

    def kept(self, count: int) -> KeptFrames:
        """A kept-frames message of ``count`` frames, stored as the sampler and dedup left them."""
        kept = kept_frames(SETTINGS, count)
        for frame in kept.frames:
            doc = {**frame.model_dump(), "id": frame.frame_id, "dedup_status": "kept"}
            self.documents.create(Collections.FRAMES, frame.frame_id, doc)
            self.blobs.put(frame.bucket, frame.object_name, FRAME_JPEG, "image/jpeg")
        return kept

    def frame(self, frame_id: str) -> dict[str, Any]:
        doc = self.documents.get(Collections.FRAMES, frame_id)
        assert doc is not None, frame_id
        return doc

    def requested(self) -> list[list[str]]:
        """The frame ids of each request the vendor received."""
        return [[frame.frame_id for frame in frames] for _, frames in self.vendor.requests]


def _message(kept: KeptFrames) -> PubSubMessage:
    return PubSubMessage.of(kept.model_dump_json().encode(), {"batch_id": kept.batch_id}, "m1")


def _ids(kept: KeptFrames) -> list[str]:
    return [frame.frame_id for frame in kept.frames]


def test_a_batch_delivered_twice_is_sent_to_the_vendor_once():
    stack = Stack(labeling_retry_seconds=0.0)
    kept = stack.kept(3)

    first = stack.labeler.handle_message(_message(kept))
    again = stack.labeler.handle_message(_message(kept))

    assert (first.requested, again.requested, again.already_requested) == (3, 0, 3)
    assert stack.requested() == [_ids(kept)]
    [(_, requests)] = stack.vendor.requests
    assert [r.image_url for r in requests] == [
        f"memory://{f.bucket}/{f.object_name}" for f in kept.frames
    ]
    for frame_id in _ids(kept):
        frame = stack.frame(frame_id)
        assert frame["labeling_status"] == "requested"
        assert frame["labeling_vendor"] == stack.vendor.name
        assert frame["labeling_task_id"] == f"task-{frame_id}"


def test_a_vendor_down_is_raised_for_redelivery_which_then_sends_each_frame_once():
    stack = Stack(labeling_retry_seconds=0.0)  # no retry within the invocation
    kept = stack.kept(2)
    stack.vendor.fail_next(VendorUnavailable("503 from the vendor"))

    with pytest.raises(VendorUnavailable):
        stack.labeler.handle_message(_message(kept))
    assert [stack.frame(f).get("labeling_status") for f in _ids(kept)] == [None, None]
    stack.labeler.handle_message(_message(kept))

    assert stack.requested() == [_ids(kept), _ids(kept)]
    assert sorted(stack.vendor.tasks) == sorted(_ids(kept))
    assert all(stack.frame(f)["labeling_status"] == "requested" for f in _ids(kept))


def test_a_refusal_is_not_retried_and_give_up_fails_only_the_frames_without_a_task():
    stack = Stack(labeling_retry_seconds=30.0)  # a refusal is not retried however long allowed
    sent = stack.kept(1)
    stack.labeler.handle_message(_message(sent))
    both = stack.kept(2)  # the frame sent already, and a new one
    stack.vendor.fail_next(VendorRejected("401: bad key"))

    with pytest.raises(VendorRejected):
        stack.labeler.handle_message(_message(both))
    stack.labeler.give_up(_message(both), "VendorRejected: 401: bad key")

    assert stack.requested() == [_ids(sent), _ids(both)[1:]]
    first, second = (stack.frame(f) for f in _ids(both))
    assert first["labeling_status"] == "requested"
    assert (second["labeling_status"], second["labeling_error"]) == (
        "labeling_failed",
        "VendorRejected: 401: bad key",
    )


def test_a_budgeted_round_delivered_twice_spends_its_budget_once():
    stack = Stack(labeling_budget=2, labeling_audit_fraction=0.0, labeling_retry_seconds=0.0)
    kept = stack.kept(3)
    queued = stack.labeler.handle_message(_message(kept))
    assert (queued.queued, stack.vendor.requests) == (3, [])
    tick = PubSubMessage.of(b'{"round": "2026-12-01"}', {ROUND_MESSAGE: "1"}, "r1")

    first = stack.labeler.handle_message(tick)
    again = stack.labeler.handle_message(tick)

    assert (first.requested, first.skipped, again.requested) == (2, 1, 0)
    statuses = sorted(stack.frame(f)["labeling_status"] for f in _ids(kept))
    assert statuses == ["requested", "requested", "skipped"]
    assert sum(len(ids) for ids in stack.requested()) == 2
    spent = stack.documents.get(Collections.LABELING_ROUNDS, "2026-12-01")
    assert spent is not None and (spent["budget"], spent["spent"]) == (2, 2)


def test_the_models_prelabel_goes_with_each_task_and_is_made_once_per_frame():
    car = Detection(class_index=0, score=0.9, left=32, top=24, width=64, height=48)
    detector = FixedDetector([car])
    stack = Stack(detector, labeling_retry_seconds=0.0)
    kept = stack.kept(2)
    stack.vendor.fail_next(VendorUnavailable("503 from the vendor"))
    with pytest.raises(VendorUnavailable):
        stack.labeler.handle_message(_message(kept))

    stack.labeler.handle_message(_message(kept))  # the stored pre-labels are read back

    assert detector.seen == 2
    [_, (_, requests)] = stack.vendor.requests
    for request in requests:
        assert request.model_version == detector.version
        [box] = request.prelabels
        assert (box.label, box.left, box.top, box.w, box.h) == ("car", 32, 24, 0.2, 0.2)

"""The sample payloads in tests/payloads (the shapes Google and the vendors send) parse into the
events and records the functions work with; and embedded mode builds the same shapes."""

from __future__ import annotations

import json

import pytest

from framesift.errors import BadEvent
from framesift.events import (
    OBJECT_FINALIZE,
    GcsNotification,
    PubSubMessage,
    finalize_message,
    push_body,
    topic_of,
)
from framesift.ports import BlobInfo
from framesift.vendors.labelstudio_callbacks import LabelStudioWebhook
from framesift.vendors.scale import ScaleCallback
from tests.support.payloads import FRAME, LS_FRAME, sample


def _message(payload: dict) -> PubSubMessage:
    return PubSubMessage.of(json.dumps(payload["data"]).encode(), payload["attributes"], "m-1")


def test_a_real_finalize_notification_parses_with_its_metadata():
    notification = GcsNotification.from_message(_message(sample("gcs_object_finalize")))
    assert notification.event_type == OBJECT_FINALIZE
    assert notification.object.name == "cam-1/drive.mp4"
    assert notification.object.generation == 1732000000000000
    assert notification.object.metadata == {"framesift-every-seconds": "2"}


def test_the_embedded_notification_has_the_shape_of_the_real_one():
    real = sample("gcs_object_finalize")
    info = BlobInfo("framesift-raw", "cam-1/drive.mp4", 7, 1024, "video/mp4", {})
    data, attributes = finalize_message(info)
    assert set(attributes) <= set(real["attributes"])
    assert set(json.loads(data)) <= set(real["data"])
    parsed = GcsNotification.from_message(PubSubMessage.of(data, attributes, "m-2"))
    assert (parsed.object.name, parsed.object.generation) == ("cam-1/drive.mp4", 7)


def test_another_payload_format_is_refused():
    payload = sample("gcs_object_finalize")
    payload["attributes"]["payloadFormat"] = "NONE"
    with pytest.raises(BadEvent, match="payload format"):
        GcsNotification.from_message(_message(payload))


def test_a_push_body_round_trips_and_names_its_topic():
    message = PubSubMessage.of(b"{}", {"a": "b"}, "m-3")
    body = push_body(
        message, "projects/p/subscriptions/raw-objects-sampler", "2026-12-01T23:59:59Z"
    )
    parsed = PubSubMessage.from_cloud_event_data(body)
    assert parsed.model_copy(update={"publish_time": None}) == message
    # What names a scheduled labeling round (its UTC day).
    assert parsed.publish_time is not None
    assert parsed.publish_time.isoformat() == "2026-12-01T23:59:59+00:00"
    assert topic_of("//pubsub.googleapis.com/projects/p/topics/raw-objects") == "raw-objects"
    with pytest.raises(BadEvent):
        PubSubMessage.from_cloud_event_data({"no": "message"})


def test_the_vendors_sample_callbacks_become_one_annotation_each():
    [scale] = ScaleCallback.model_validate(sample("scale_callback")).records()
    [labelstudio] = LabelStudioWebhook.model_validate(
        sample("labelstudio_annotation_created")
    ).records()
    assert (scale.frame_id, scale.vendor, len(scale.boxes)) == (FRAME, "scale", 1)
    assert (labelstudio.frame_id, labelstudio.vendor, len(labelstudio.boxes)) == (
        LS_FRAME,
        "labelstudio",
        1,
    )

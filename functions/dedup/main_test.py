"""The dedup function's entry point, called with the notification of a photo upload."""

import io

from PIL import Image

from framesift import runtime
from framesift.events import finalize_message
from framesift.topology import DEDUP, Collections, Topics
from tests.support.entry_points import entry_point, pubsub_event


def _png() -> bytes:
    image = Image.linear_gradient("L").resize((320, 240)).convert("RGB")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_an_uploaded_photo_is_decided_once_however_often_delivered(function_settings):
    dedup_frames = entry_point(DEDUP)
    wired = runtime.adapters()
    name = f"{function_settings.images_prefix}cam-1/photo.png"
    info = wired.blobs.put(function_settings.raw_bucket, name, _png(), "image/png")
    event = pubsub_event(Topics.RAW_OBJECTS, *finalize_message(info))

    dedup_frames(event)
    dedup_frames(event)

    [frame] = wired.documents.where(Collections.FRAMES, "object_name", name)
    assert frame["dedup_status"] == "kept" and frame["width"] == 320
    [kept] = wired.publisher.published[Topics.FRAMES_KEPT]  # type: ignore[attr-defined]
    assert kept.attributes or kept.data  # one message to the labeler, not two


def test_a_malformed_frame_batch_is_dead_lettered_at_once(function_settings):
    dedup_frames = entry_point(DEDUP)

    dedup_frames(pubsub_event(Topics.FRAMES_SAMPLED, b'{"frames": "none"}', message_id="m-1"))

    [record] = runtime.adapters().documents.where(Collections.DEAD_LETTERS, "subscriber", "dedup")
    assert record["permanent"] and record["attempts"] == 1
    assert record["error"].startswith("BadEvent: malformed frame batch")

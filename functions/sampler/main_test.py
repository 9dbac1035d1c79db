"""The sampler's entry point, called with the CloudEvent of the raw bucket's notification."""

import json

from framesift import runtime
from framesift.events import finalize_message
from framesift.topology import SAMPLER, Collections, Topics
from tests.support.entry_points import entry_point, pubsub_event


def test_a_finalized_video_is_sampled_once_however_often_delivered(function_settings, media):
    sample_video = entry_point(SAMPLER)
    wired = runtime.adapters()
    info = wired.blobs.put_file(
        function_settings.raw_bucket, "cam-1/clip.mp4", media["clip_4s_ntsc"], {}
    )
    data, attributes = finalize_message(info)
    event = pubsub_event(Topics.RAW_OBJECTS, data, attributes)

    sample_video(event)
    sample_video(event)  # Pub/Sub delivers at least once

    [video] = wired.documents.where(Collections.VIDEOS, "object_name", "cam-1/clip.mp4")
    assert video["status"] == "sampled" and video["frames_sampled"] == 4
    batches = wired.publisher.published[Topics.FRAMES_SAMPLED]  # type: ignore[attr-defined]
    assert sum(len(json.loads(b.data)["frames"]) for b in batches) == 4  # sent on once


def test_an_event_that_is_no_pubsub_message_is_acknowledged_and_logged(function_settings, capsys):
    sample_video = entry_point(SAMPLER)
    event = pubsub_event(Topics.RAW_OBJECTS, b"{}")
    event.data = {"not": "a push body"}

    assert sample_video(event) is None  # acknowledged: a retry could never parse it
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(
        entry["severity"] == "ERROR" and "bad event acknowledged" in entry["message"]
        for entry in logged
    )

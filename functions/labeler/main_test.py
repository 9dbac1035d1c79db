"""The labeler's entry point, called with dedup's kept frames (the offline manifest vendor)."""

from framesift import runtime
from framesift.topology import LABELER, Collections, Topics
from tests.support.entry_points import entry_point, pubsub_event
from tests.support.payloads import kept_frames


def test_kept_frames_get_one_manifest_line_each_however_often_delivered(function_settings):
    request_labels = entry_point(LABELER)
    kept = kept_frames(function_settings, 3, batch="b-main")
    event = pubsub_event(Topics.FRAMES_KEPT, kept.model_dump_json().encode())

    request_labels(event)
    request_labels(event)

    wired = runtime.adapters()
    manifest = wired.blobs.get(function_settings.frames_bucket, "manifests/b-main.jsonl")
    assert len(manifest.decode().splitlines()) == 3
    for frame in kept.frames:
        doc = wired.documents.get(Collections.FRAMES, frame.frame_id) or {}
        assert doc["labeling_status"] == "requested" and doc["labeling_vendor"] == "manifest"


def test_a_message_that_is_not_json_is_dead_lettered_at_once(function_settings):
    request_labels = entry_point(LABELER)

    request_labels(pubsub_event(Topics.FRAMES_KEPT, b"\xff not json"))

    documents = runtime.adapters().documents
    [record] = documents.where(Collections.DEAD_LETTERS, "subscriber", "labeler")
    assert record["permanent"] and "is not JSON" in record["error"]

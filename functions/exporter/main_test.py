"""The exporter's entry point, called with Cloud Scheduler's tick on export-requests."""

from framesift import runtime
from framesift.documents import VideoRecord, VideoStatus
from framesift.messages import ExportRequest
from framesift.topology import EXPORTER, Collections, Topics
from tests.support.entry_points import entry_point, pubsub_event


def test_a_tick_exports_each_document_once_however_often_delivered(function_settings):
    export_warehouse = entry_point(EXPORTER)
    wired = runtime.adapters()
    video = VideoRecord(
        id=VideoRecord.make_id("framesift-raw", "cam-1/a.mp4", 1),
        collector="cam-1",
        video_id="a",
        bucket="framesift-raw",
        object_name="cam-1/a.mp4",
        generation=1,
        status=VideoStatus.SAMPLED,
    )
    wired.documents.create(Collections.VIDEOS, video.id, video.model_dump())
    event = pubsub_event(Topics.EXPORT_REQUESTS, ExportRequest().model_dump_json().encode())

    export_warehouse(event)
    export_warehouse(event)

    rows = wired.warehouse.query(
        f"SELECT id, status FROM {function_settings.bigquery_dataset}.videos"
    )
    assert rows == [{"id": video.id, "status": "sampled"}]

"""What an edge agent writes to the deployment, each write idempotent so a step redone after a
crash changes nothing: the video's document (created if absent), each kept frame's JPEG (the
same bytes at the same name) and document (created if absent), the frames handed to the cloud's
dedup on frames-sampled as the sampler function hands them (dedup keeps a frame's first
decision and sends a batch on once; the labeler keys its tasks on frame ids), and the video's
final status. Each write is retried with exponential backoff (tenacity) for up to
``retry_seconds`` and waits for the bandwidth cap first; every byte sent is counted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from tenacity import (
    Retrying,
    retry_if_not_exception_type,
    stop_after_delay,
    wait_exponential,
)

from framesift.bootstrap import Adapters
from framesift.documents import FrameRecord, VideoRecord, VideoStatus
from framesift.edge.failpoints import failpoint
from framesift.edge.throttle import TokenBucket
from framesift.errors import PermanentError
from framesift.logs import get_logger
from framesift.messages import FrameBatch, SampledFrame
from framesift.ports import BlobStore
from framesift.stages.frame_output import publish_frames
from framesift.topology import Collections

log = get_logger(__name__)
T = TypeVar("T")


def _size(document: Mapping[str, Any]) -> int:
    """About the bytes a document takes on the wire (its JSON)."""
    return len(json.dumps(document, default=str))


class CloudUploader:
    def __init__(
        self,
        cloud: Adapters,
        frames_per_message: int,
        throttle: TokenBucket,
        retry_seconds: float,
    ) -> None:
        self._cloud = cloud
        self._frames_per_message = frames_per_message
        self._throttle = throttle
        self._retry_seconds = retry_seconds

    def _retried(self, what: str, write: Callable[[], T]) -> T:
        """``write``, tried again with backoff while it fails for a reason that may pass (a
        backend unreachable, a timeout); a permanent error is raised at once."""

        def tell(state: Any) -> None:
            log.warning(
                "cloud write failed, retrying: %s",
                what,
                extra={
                    "fields": {
                        "attempt": state.attempt_number,
                        "error": repr(state.outcome.exception()),
                    }
                },
            )

        retrying = Retrying(
            retry=retry_if_not_exception_type(PermanentError),
            wait=wait_exponential(multiplier=0.5, max=30),
            stop=stop_after_delay(self._retry_seconds),
            before_sleep=tell,
            reraise=True,
        )
        return retrying(write)

    def record_video(self, video: VideoRecord) -> int:
        """The video's document, ``processing`` until :meth:`finish`."""
        data = video.stored()
        self._throttle.take(_size(data))
        self._retried(
            "the video's document",
            lambda: self._cloud.documents.create(Collections.VIDEOS, video.id, data),
        )
        return _size(data)

    def upload_frame(self, local: BlobStore, frame: FrameRecord) -> int:
        """A kept frame's JPEG, with the object metadata the sampler gives it, then its
        document; returns the bytes sent."""
        jpeg = local.get(frame.bucket, frame.object_name)
        metadata = local.stat(frame.bucket, frame.object_name).metadata
        self._throttle.take(len(jpeg))
        self._retried(
            f"frame {frame.id}'s JPEG",
            lambda: self._cloud.blobs.put(
                frame.bucket, frame.object_name, jpeg, "image/jpeg", metadata
            ),
        )
        failpoint("frame-put")
        data = frame.stored()
        self._throttle.take(_size(data))
        self._retried(
            f"frame {frame.id}'s document",
            lambda: self._cloud.documents.create(Collections.FRAMES, frame.id, data),
        )
        return len(jpeg) + _size(data)

    def publish(self, video: VideoRecord, frames: list[FrameRecord], damaged: bool) -> int:
        """The kept frames to the cloud's dedup (``damaged``: the video failed part way)."""
        batch = FrameBatch(
            video_doc_id=video.id,
            collector=video.collector,
            video_id=video.video_id,
            segment_index=0,
            batch_index=0,
            batch_count=1,
            frames=[
                SampledFrame.model_validate({**frame.model_dump(), "frame_id": frame.id})
                for frame in frames
            ],
            source_damaged=damaged,
        )
        self._throttle.take(len(batch.model_dump_json()))
        return self._retried(
            "the frames to dedup",
            lambda: publish_frames(self._cloud.publisher, batch, self._frames_per_message),
        )

    def finish(self, video: VideoRecord) -> int:
        """The video's final status, frames sampled and error, as the sampler ends a video."""
        fields = VideoRecord.fields(
            status=VideoStatus(video.status).value,
            frames_sampled=video.frames_sampled,
            error=video.error,
        )
        return self._merge_video(video.id, fields)

    def fail(self, video_doc_id: str, error: str) -> int:
        """A video recorded but never to be finished (its file changed): ``failed``, why."""
        fields = VideoRecord.fields(status=VideoStatus.FAILED.value, error=error)
        return self._merge_video(video_doc_id, fields)

    def _merge_video(self, video_doc_id: str, fields: dict[str, Any]) -> int:
        self._throttle.take(_size(fields))
        self._retried(
            "the video's status",
            lambda: self._cloud.documents.merge(Collections.VIDEOS, video_doc_id, fields),
        )
        return _size(fields)

"""What the sampler makes of the images of a segment: each a JPEG in the frames bucket and a
frame record, and all of them sent on to dedup in batches of ``frames_per_message``.

A frame's object name and id are derived from its video and timestamp, so a repeated segment
rewrites the same objects with the same bytes."""

from __future__ import annotations

import hashlib
import math

from framesift.documents import FrameRecord
from framesift.media import SampledImage
from framesift.messages import FrameBatch, SampledFrame, SegmentTask
from framesift.naming import frame_object_name
from framesift.ports import BlobStore, DocumentStore, Publisher
from framesift.topology import Collections, Topics
from framesift.track import Track, frame_capture


class FrameOutput:
    def __init__(
        self,
        blobs: BlobStore,
        documents: DocumentStore,
        publisher: Publisher,
        frames_bucket: str,
        frames_per_message: int,
    ) -> None:
        self._blobs = blobs
        self._documents = documents
        self._publisher = publisher
        self._frames_bucket = frames_bucket
        self._frames_per_message = frames_per_message

    def store(
        self, task: SegmentTask, image: SampledImage, track: Track | None = None
    ) -> SampledFrame:
        """The image's JPEG and frame record, written; the frame as dedup receives it (placed
        on the video's ``track`` where it has one)."""
        capture = frame_capture(task.capture, track, image.timestamp_ms)
        object_name = frame_object_name(task.collector, task.video_doc_id, image.timestamp_ms)
        sha256 = hashlib.sha256(image.jpeg).hexdigest()
        self._blobs.put(
            self._frames_bucket,
            object_name,
            image.jpeg,
            "image/jpeg",
            {
                "video-doc-id": task.video_doc_id,
                "source-object": task.object_name,
                "source-generation": str(task.generation),
                "timestamp-ms": str(image.timestamp_ms),
                "phash": image.stats.phash,
            },
        )
        frame = FrameRecord(
            id=FrameRecord.make_id(task.video_doc_id, image.timestamp_ms),
            video_doc_id=task.video_doc_id,
            collector=task.collector,
            video_id=task.video_id,
            source_generation=task.generation,
            timestamp_ms=image.timestamp_ms,
            bucket=self._frames_bucket,
            object_name=object_name,
            width=image.width,
            height=image.height,
            size_bytes=len(image.jpeg),
            sha256=sha256,
            phash=image.stats.phash,
            layout=image.stats.layout,
            sharpness=image.stats.sharpness,
            brightness=image.stats.brightness,
            **capture.model_dump(),
            rotation=task.rotation,
        )
        self._documents.merge(Collections.FRAMES, frame.id, frame.stored())
        return SampledFrame.model_validate({**frame.model_dump(), "frame_id": frame.id})

    def publish(self, task: SegmentTask, frames: list[SampledFrame], damaged: bool) -> None:
        """The segment's frames to dedup, in batches (``damaged``: the segment failed)."""
        publish_frames(
            self._publisher,
            FrameBatch(
                video_doc_id=task.video_doc_id,
                collector=task.collector,
                video_id=task.video_id,
                segment_index=task.index,
                batch_index=0,
                batch_count=1,
                frames=frames,
                source_damaged=damaged,
            ),
            self._frames_per_message,
        )


def publish_frames(publisher: Publisher, frames: FrameBatch, frames_per_message: int) -> int:
    """``frames`` (one segment's, all of them) to dedup on the frames-sampled topic, in
    batches of ``frames_per_message``, as the sampler sends them; returns the bytes sent. An
    edge agent sends its kept frames this way too (:mod:`framesift.edge`)."""
    size = frames_per_message
    count = math.ceil(len(frames.frames) / size)
    sent = 0
    for index in range(count):
        batch = frames.model_copy(
            update={
                "batch_index": index,
                "batch_count": count,
                "frames": frames.frames[index * size : (index + 1) * size],
            }
        )
        attributes = {"video_doc_id": batch.video_doc_id, "batch_id": batch.batch_id}
        data = batch.model_dump_json().encode()
        publisher.publish(Topics.FRAMES_SAMPLED, data, attributes)
        sent += len(data)
    return sent

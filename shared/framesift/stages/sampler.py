"""Sampler stage: a video's OBJECT_FINALIZE notification in, JPEG frames and frame records out.

Exactly-once effects under at-least-once delivery: the video document's id is derived from
bucket, object name and generation and is created only if absent; frame object names and
frame document ids are derived from the video and the frame's timestamp, so a redelivery
rewrites the same objects with the same bytes. A video already ``sampled`` or ``failed`` is not
processed again; one left ``processing`` by a crashed attempt is processed again from the start.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath

from framesift import media
from framesift.config import Settings, Topics
from framesift.logs import bind_context, get_logger
from framesift.models import (
    FrameBatch,
    FrameRecord,
    GcsNotification,
    GcsObject,
    SampledFrame,
    VideoRecord,
    VideoStatus,
    utcnow,
)
from framesift.wiring import Adapters

log = get_logger(__name__)

VIDEOS = "videos"
FRAMES = "frames"
VIDEO_EXTENSIONS = frozenset(
    {
        ".mp4",
        ".mov",
        ".m4v",
        ".mkv",
        ".webm",
        ".avi",
        ".mpg",
        ".mpeg",
        ".ts",
        ".mts",
        ".3gp",
        ".flv",
    }
)


class Outcome(StrEnum):
    SAMPLED = "sampled"
    FAILED = "failed"
    IGNORED = "ignored"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class SampleResult:
    outcome: Outcome
    reason: str = ""
    video_doc_id: str | None = None
    frames: int = 0


@dataclass(frozen=True)
class VideoName:
    collector: str
    video_id: str


def parse_video_name(name: str, prefix: str) -> VideoName | str:
    """``{prefix}{collector}/{video_id}.{ext}``, or the reason the name is not a video's."""
    if not name.startswith(prefix):
        return f"outside the raw prefix {prefix!r}"
    relative = PurePosixPath(name[len(prefix) :])
    if len(relative.parts) != 2 or any(part in ("", ".", "..") for part in relative.parts):
        return "not named {collector}/{video_id}.{ext}"
    if relative.suffix.lower() not in VIDEO_EXTENSIONS:
        return f"extension {relative.suffix!r} is not a video's"
    return VideoName(collector=relative.parts[0], video_id=relative.stem)


class Sampler:
    def __init__(self, adapters: Adapters, settings: Settings) -> None:
        self._adapters = adapters
        self._settings = settings

    def handle(self, notification: GcsNotification) -> SampleResult:
        if notification.event_type != "OBJECT_FINALIZE":
            return self._ignore(notification.object, f"event {notification.event_type!r}")
        obj = notification.object
        if obj.bucket != self._settings.raw_bucket:
            return self._ignore(obj, f"bucket {obj.bucket!r} is not the raw bucket")
        parsed = parse_video_name(obj.name, self._settings.raw_prefix)
        if isinstance(parsed, str):
            return self._ignore(obj, parsed)
        return self._sample(obj, parsed)

    def _ignore(self, obj: GcsObject, reason: str) -> SampleResult:
        log.info(
            "object ignored: %s",
            reason,
            extra={"fields": {"bucket": obj.bucket, "object": obj.name}},
        )
        return SampleResult(Outcome.IGNORED, reason)

    def _sample(self, obj: GcsObject, name: VideoName) -> SampleResult:
        documents = self._adapters.documents
        video = VideoRecord(
            id=VideoRecord.make_id(obj.bucket, obj.name, obj.generation),
            collector=name.collector,
            video_id=name.video_id,
            bucket=obj.bucket,
            object_name=obj.name,
            generation=obj.generation,
            size_bytes=obj.size,
            status=VideoStatus.PROCESSING,
        )
        bind_context(video_doc_id=video.id, collector=name.collector, video_id=name.video_id)
        if not documents.create(VIDEOS, video.id, video.model_dump()):
            existing = documents.get(VIDEOS, video.id) or {}
            if existing.get("status") in (VideoStatus.SAMPLED, VideoStatus.FAILED):
                log.info("duplicate delivery: video already %s", existing["status"])
                return SampleResult(Outcome.DUPLICATE, str(existing["status"]), video.id)
            log.warning("video left processing by an earlier attempt; sampling it again")

        if obj.size == 0:
            return self._fail(video, "empty object (0 bytes)", [])
        url = self._adapters.blobs.stream_url(obj.bucket, obj.name)
        try:
            probe = media.probe(url)
        except media.UnreadableVideo as exc:
            return self._fail(video, str(exc), [])
        video = video.model_copy(
            update={
                "duration_s": probe.duration_s,
                "fps": probe.fps,
                "width": probe.width,
                "height": probe.height,
                "codec": probe.codec,
            }
        )

        frames: list[SampledFrame] = []
        try:
            for jpeg in media.sample_every(
                url,
                self._settings.sample_every_seconds,
                probe.start_time_s,
                self._settings.jpeg_quality,
            ):
                frames.append(self._store_frame(video, probe, jpeg))
        except media.SamplingFailed as exc:
            return self._fail(video, str(exc), frames)
        if not frames:
            return self._fail(video, "no frame could be decoded", frames)

        self._publish(video, frames)
        self._finish(video, VideoStatus.SAMPLED, frames, error=None)
        log.info("video sampled", extra={"fields": {"frames": len(frames)}})
        return SampleResult(Outcome.SAMPLED, "", video.id, len(frames))

    def _store_frame(
        self, video: VideoRecord, probe: media.VideoProbe, jpeg: media.JpegFrame
    ) -> SampledFrame:
        object_name = f"{video.collector}/{video.video_id}/{jpeg.timestamp_ms:010d}.jpg"
        sha256 = hashlib.sha256(jpeg.data).hexdigest()
        self._adapters.blobs.put(
            self._settings.frames_bucket,
            object_name,
            jpeg.data,
            "image/jpeg",
            {
                "video-doc-id": video.id,
                "source-object": video.object_name,
                "source-generation": str(video.generation),
                "timestamp-ms": str(jpeg.timestamp_ms),
            },
        )
        frame = FrameRecord(
            id=FrameRecord.make_id(video.id, jpeg.timestamp_ms),
            video_doc_id=video.id,
            collector=video.collector,
            video_id=video.video_id,
            source_generation=video.generation,
            timestamp_ms=jpeg.timestamp_ms,
            bucket=self._settings.frames_bucket,
            object_name=object_name,
            width=probe.width,
            height=probe.height,
            size_bytes=len(jpeg.data),
            sha256=sha256,
        )
        self._adapters.documents.merge(FRAMES, frame.id, frame.model_dump())
        return SampledFrame(
            frame_id=frame.id,
            timestamp_ms=frame.timestamp_ms,
            bucket=frame.bucket,
            object_name=object_name,
            sha256=sha256,
        )

    def _publish(self, video: VideoRecord, frames: list[SampledFrame]) -> None:
        size = self._settings.frames_per_message
        count = math.ceil(len(frames) / size)
        for index in range(count):
            batch = FrameBatch(
                video_doc_id=video.id,
                collector=video.collector,
                video_id=video.video_id,
                batch_index=index,
                batch_count=count,
                frames=frames[index * size : (index + 1) * size],
            )
            self._adapters.publisher.publish(
                Topics.FRAMES_SAMPLED,
                batch.model_dump_json().encode(),
                {"video_doc_id": video.id, "batch_index": str(index)},
            )

    def _finish(
        self, video: VideoRecord, status: VideoStatus, frames: list[SampledFrame], error: str | None
    ) -> None:
        final = video.model_copy(
            update={
                "status": status,
                "frames_sampled": len(frames),
                "error": error,
                "updated_at": utcnow(),
            }
        )
        self._adapters.documents.merge(VIDEOS, video.id, final.model_dump(exclude={"created_at"}))

    def _fail(self, video: VideoRecord, error: str, frames: list[SampledFrame]) -> SampleResult:
        # Frames decoded before a mid-file corruption are kept and sent on.
        if frames:
            self._publish(video, frames)
        self._finish(video, VideoStatus.FAILED, frames, error)
        log.error("video failed: %s", error, extra={"fields": {"frames": len(frames)}})
        return SampleResult(Outcome.FAILED, error, video.id, len(frames))

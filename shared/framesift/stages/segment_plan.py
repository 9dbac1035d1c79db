"""The sampler's plan of a video once probed: whether it is too large to decode, what its record
says of it, and the segments it is sampled in, each a task (the message one invocation samples)
and a record."""

from __future__ import annotations

from typing import Any

from framesift.capture import CaptureFields
from framesift.documents import SegmentRecord, SegmentStatus, VideoRecord
from framesift.events import GcsObject
from framesift.media import PicturePlan, VideoProbe
from framesift.messages import Picture, Segment, SegmentTask
from framesift.naming import UploadName
from framesift.sampling import DecodeMode, SamplingPolicy


def too_large(probe: VideoProbe, max_pixels: int) -> str | None:
    """Why a video's frames are too large to decode (None: they are not)."""
    if (pixels := probe.width * probe.height) <= max_pixels:
        return None
    return (
        f"video too large: {probe.width}x{probe.height} is {pixels} pixels per frame,"
        f" over FRAMESIFT_MAX_VIDEO_PIXELS ({max_pixels})"
    )


def probed_fields(
    probe: VideoProbe,
    policy: SamplingPolicy,
    decode: DecodeMode,
    segments: int,
    capture: CaptureFields,
    plan: PicturePlan,
) -> dict[str, Any]:
    """What the video's record says once it is probed and planned."""
    return VideoRecord.fields(
        duration_s=probe.duration_s,
        fps=probe.fps,
        width=probe.width,
        height=probe.height,
        codec=probe.codec,
        policy=policy.model_dump(),
        decode_mode=decode.value,
        segments_total=segments,
        **capture.model_dump(),
        rotation=probe.rotation,
        transfer=probe.transfer,
        primaries=probe.primaries,
        interlaced=plan.picture.deinterlace,
        stream_index=probe.stream_index,
        tone_mapped=plan.tone_mapped,
        tone_map_note=plan.tone_map_note,
    )


def segment_tasks(
    obj: GcsObject,
    name: UploadName,
    video_doc_id: str,
    policy: SamplingPolicy,
    probe: VideoProbe,
    segments: list[Segment],
    decode: DecodeMode,
    picture: Picture,
    capture: CaptureFields,
    sidecar: str | None = None,
) -> list[SegmentTask]:
    """One task per segment of the video ``obj`` is."""
    return [
        SegmentTask(
            video_doc_id=video_doc_id,
            bucket=obj.bucket,
            object_name=obj.name,
            generation=obj.generation,
            collector=name.collector,
            video_id=name.stem,
            policy=policy,
            start_time_s=probe.start_time_s,
            index=index,
            count=len(segments),
            segment=segment,
            decode=decode,
            picture=picture,
            rotation=probe.rotation,
            capture=capture,
            telemetry_stream=probe.telemetry_stream,
            sidecar=sidecar,
        )
        for index, segment in enumerate(segments)
    ]


def segment_record(
    task: SegmentTask, status: SegmentStatus, error: str | None = None, dead_lettered: bool = False
) -> SegmentRecord:
    return SegmentRecord(
        id=task.segment_id,
        video_doc_id=task.video_doc_id,
        index=task.index,
        count=task.count,
        status=status,
        error=error,
        dead_lettered=dead_lettered,
    )

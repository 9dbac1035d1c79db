"""pydantic models of the events the functions receive and the records and messages they write."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from framesift.errors import PermanentError


class BadEvent(PermanentError, ValueError):
    """An event that can never be processed: acknowledge it, never retry it."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def source_id(kind: str, bucket: str, object_name: str, generation: int) -> str:
    """Deterministic id of an uploaded object's version (``kind``: "v" video, "i" image), so a
    redelivered notification finds the same document and a re-upload is a new one."""
    digest = hashlib.sha256(f"{bucket}/{object_name}#{generation}".encode()).hexdigest()
    return f"{kind}_{digest[:32]}"


@dataclass(frozen=True)
class UploadName:
    collector: str
    stem: str


def parse_upload_name(
    name: str, prefix: str, extensions: frozenset[str], kind: str
) -> UploadName | str:
    """``{prefix}{collector}/{stem}.{ext}``, or the reason the name is not one of ``kind``."""
    if not name.startswith(prefix):
        return f"outside the prefix {prefix!r}"
    relative = PurePosixPath(name[len(prefix) :])
    if len(relative.parts) != 2 or any(part in ("", ".", "..") for part in relative.parts):
        return "not named {collector}/{name}.{ext}"
    if relative.suffix.lower() not in extensions:
        return f"extension {relative.suffix!r} is not {kind}'s"
    return UploadName(collector=relative.parts[0], stem=relative.stem)


class PubSubMessage(BaseModel):
    """The ``message`` of a Pub/Sub push body, as functions-framework puts it in a CloudEvent."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    data: str = ""
    attributes: dict[str, str] = Field(default_factory=dict)
    message_id: str = Field(default="", alias="messageId")

    def payload(self) -> bytes:
        return base64.b64decode(self.data) if self.data else b""

    def json_payload(self) -> Any:
        try:
            return json.loads(self.payload())
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadEvent(f"Pub/Sub message {self.message_id} is not JSON: {exc}") from exc

    @classmethod
    def from_cloud_event_data(cls, data: Any) -> PubSubMessage:
        if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
            raise BadEvent("CloudEvent data has no Pub/Sub 'message'")
        try:
            return cls.model_validate(data["message"])
        except ValidationError as exc:
            raise BadEvent(f"malformed Pub/Sub message: {exc}") from exc


class GcsObject(BaseModel):
    """A GCS object resource as sent by a bucket notification with payload format JSON_API_V1."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    bucket: str
    name: str
    generation: int
    size: int = 0
    content_type: str | None = Field(default=None, alias="contentType")
    metadata: dict[str, str] = Field(default_factory=dict)
    md5_hash: str | None = Field(default=None, alias="md5Hash")
    time_created: datetime | None = Field(default=None, alias="timeCreated")

    @field_validator("metadata", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return value or {}


class GcsNotification(BaseModel):
    """A bucket notification: its attributes say what happened, its payload is the object."""

    event_type: str
    object: GcsObject

    @classmethod
    def from_message(cls, message: PubSubMessage) -> GcsNotification:
        event_type = message.attributes.get("eventType", "")
        payload_format = message.attributes.get("payloadFormat", "JSON_API_V1")
        if payload_format != "JSON_API_V1":
            raise BadEvent(f"unsupported notification payload format {payload_format!r}")
        try:
            return cls(
                event_type=event_type, object=GcsObject.model_validate(message.json_payload())
            )
        except ValidationError as exc:
            raise BadEvent(f"notification payload is not a GCS object: {exc}") from exc


class SamplingMode(StrEnum):
    EVERY_SECONDS = "every_seconds"
    EVERY_FRAMES = "every_frames"
    SCENE = "scene"


# Custom metadata on a raw object that overrides the deployment's sampling policy.
POLICY_METADATA = {
    "framesift-sampling": "mode",
    "framesift-every-seconds": "every_seconds",
    "framesift-every-frames": "every_frames",
    "framesift-scene-threshold": "scene_threshold",
    "framesift-keyframes-only": "keyframes_only",
}


class SamplingPolicy(BaseModel):
    """Which frames of a video are kept."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: SamplingMode = SamplingMode.EVERY_SECONDS
    every_seconds: float = Field(default=1.0, gt=0, le=3600)
    every_frames: int = Field(default=30, ge=1, le=1_000_000)
    # ffmpeg's scene score, 0..1: the share of the picture that changed.
    scene_threshold: float = Field(default=0.3, gt=0, lt=1)
    # Decode keyframes only (-skip_frame nokey): far faster when the interval is >= the GOP.
    keyframes_only: bool = False

    def overridden_by(self, metadata: dict[str, str]) -> SamplingPolicy:
        """This policy with the object's ``framesift-*`` metadata applied; raises BadEvent."""
        overrides = {
            field: metadata[key] for key, field in POLICY_METADATA.items() if key in metadata
        }
        if not overrides:
            return self
        try:
            return SamplingPolicy.model_validate({**self.model_dump(), **overrides})
        except ValidationError as exc:
            problems = "; ".join(
                f"{next(k for k, f in POLICY_METADATA.items() if f == e['loc'][0])}: {e['msg']}"
                for e in exc.errors()
            )
            raise BadEvent(f"invalid sampling metadata: {problems}") from exc


class VideoStatus(StrEnum):
    PROCESSING = "processing"
    SAMPLED = "sampled"
    FAILED = "failed"


class VideoRecord(BaseModel):
    """A source video, one document per object generation (a re-upload is a new version)."""

    id: str
    collector: str
    video_id: str
    bucket: str
    object_name: str
    generation: int
    status: VideoStatus
    size_bytes: int = 0
    duration_s: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    policy: SamplingPolicy | None = None
    segments_total: int | None = None
    frames_sampled: int = 0
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @staticmethod
    def make_id(bucket: str, object_name: str, generation: int) -> str:
        return source_id("v", bucket, object_name, generation)


class FrameRecord(BaseModel):
    """A sampled frame stored as a JPEG in the frames bucket, or a photo uploaded as it is."""

    id: str
    source: Literal["video", "image"] = "video"
    video_doc_id: str
    collector: str
    video_id: str
    source_generation: int
    timestamp_ms: int
    bucket: str
    object_name: str
    width: int | None = None
    height: int | None = None
    size_bytes: int
    sha256: str
    phash: str
    sharpness: float
    brightness: float
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @staticmethod
    def make_id(video_doc_id: str, timestamp_ms: int) -> str:
        return f"{video_doc_id}_{timestamp_ms:010d}"


class SampledFrame(BaseModel):
    """What dedup needs of a frame, so it never downloads the JPEG again."""

    frame_id: str
    timestamp_ms: int
    bucket: str
    object_name: str
    sha256: str
    phash: str
    sharpness: float
    brightness: float
    width: int | None = None
    height: int | None = None


class FrameBatch(BaseModel):
    """One message to the dedup stage: a chunk of one segment's sampled frames."""

    video_doc_id: str
    collector: str
    video_id: str
    segment_index: int
    batch_index: int
    batch_count: int
    frames: list[SampledFrame]

    @property
    def batch_id(self) -> str:
        return f"{self.video_doc_id}_{self.segment_index:05d}_{self.batch_index:04d}"

    @classmethod
    def from_message(cls, message: PubSubMessage) -> FrameBatch:
        try:
            return cls.model_validate(message.json_payload())
        except ValidationError as exc:
            raise BadEvent(f"malformed frame batch: {exc}") from exc


class DedupStatus(StrEnum):
    KEPT = "kept"
    DROPPED = "dropped"


class DropReason(StrEnum):
    EXACT_DUPLICATE = "exact_duplicate"
    NEAR_DUPLICATE = "near_duplicate"
    UNREADABLE = "unreadable"


class DedupDecision(BaseModel):
    """What dedup decided for a frame, recorded on the frame document (``dedup_*`` fields)."""

    status: DedupStatus
    drop_reason: DropReason | None = None
    duplicate_of: str | None = None
    distance: int | None = None
    scope: str | None = None  # "video" or "dataset" for a near duplicate
    decided_at: datetime = Field(default_factory=utcnow)

    def as_fields(self) -> dict[str, Any]:
        return {f"dedup_{key}": value for key, value in self.model_dump().items()}

    @classmethod
    def from_fields(cls, doc: dict[str, Any]) -> DedupDecision | None:
        if not doc.get("dedup_status"):
            return None
        return cls.model_validate(
            {
                key.removeprefix("dedup_"): value
                for key, value in doc.items()
                if key.startswith("dedup_")
            }
        )


class KeptFrames(BaseModel):
    """One message to the labeler: the frames of one dedup batch that were kept."""

    batch_id: str
    collector: str
    video_doc_id: str = ""
    video_id: str = ""
    frames: list[SampledFrame]

    @classmethod
    def from_message(cls, message: PubSubMessage) -> KeptFrames:
        try:
            return cls.model_validate(message.json_payload())
        except ValidationError as exc:
            raise BadEvent(f"malformed kept-frames message: {exc}") from exc


class Segment(BaseModel):
    """The part ``[start_s, end_s)`` of a stream (absolute stream times) one invocation samples.

    ``first_frame`` is the index of its first frame, for the every-N-frames policy.
    """

    model_config = ConfigDict(frozen=True)

    start_s: float = 0.0
    end_s: float | None = None
    first_frame: int = 0


class SegmentStatus(StrEnum):
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class SegmentTask(BaseModel):
    """One part of a video for one sampler invocation (a message on the video-segments topic)."""

    video_doc_id: str
    bucket: str
    object_name: str
    generation: int
    collector: str
    video_id: str
    policy: SamplingPolicy
    start_time_s: float  # the stream's start time, subtracted from frame timestamps
    index: int
    count: int
    segment: Segment
    width: int | None = None
    height: int | None = None

    @property
    def segment_id(self) -> str:
        return f"{self.video_doc_id}_{self.index:05d}"


class SegmentRecord(BaseModel):
    id: str
    video_doc_id: str
    index: int
    count: int
    status: SegmentStatus
    frames: int = 0
    error: str | None = None
    updated_at: datetime = Field(default_factory=utcnow)

"""pydantic models of the events the functions receive and the records and messages they write."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class BadEvent(ValueError):
    """An event that can never be processed: acknowledge it, never retry it."""


def utcnow() -> datetime:
    return datetime.now(UTC)


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
    frames_sampled: int = 0
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @staticmethod
    def make_id(bucket: str, object_name: str, generation: int) -> str:
        """Deterministic, so a redelivered notification finds the same document."""
        digest = hashlib.sha256(f"{bucket}/{object_name}#{generation}".encode()).hexdigest()
        return f"v_{digest[:32]}"


class FrameRecord(BaseModel):
    """A sampled frame stored as a JPEG in the frames bucket."""

    id: str
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
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @staticmethod
    def make_id(video_doc_id: str, timestamp_ms: int) -> str:
        return f"{video_doc_id}_{timestamp_ms:010d}"


class SampledFrame(BaseModel):
    frame_id: str
    timestamp_ms: int
    bucket: str
    object_name: str
    sha256: str


class FrameBatch(BaseModel):
    """One message to the dedup stage: a chunk of a video's sampled frames."""

    video_doc_id: str
    collector: str
    video_id: str
    batch_index: int
    batch_count: int
    frames: list[SampledFrame]

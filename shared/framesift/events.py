"""Transport events, both directions: what Pub/Sub and Cloud Storage deliver, parsed, and the
same shapes built (for embedded mode, which plays both services, and for tests).

- A Pub/Sub push: ``{"message": {"data", "attributes", "messageId", "publishTime"},
  "subscription"}``; functions-framework turns it into a CloudEvent whose ``data`` is that
  body and whose ``source`` ends ``/topics/{topic}``.
- A bucket notification (payload format JSON_API_V1): attributes ``eventType``,
  ``payloadFormat``, ``bucketId``, ``objectId``, ``objectGeneration``; data, the object
  resource.

Anything that is not one of these shapes raises :class:`~framesift.errors.BadEvent`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from framesift.errors import BadEvent
from framesift.ports import BlobInfo

OBJECT_FINALIZE = "OBJECT_FINALIZE"
JSON_API_V1 = "JSON_API_V1"
# The attribute every GCS notification carries, and no stage-to-stage message does.
NOTIFICATION_ATTRIBUTE = "eventType"


class PubSubMessage(BaseModel):
    """The ``message`` of a Pub/Sub push body, as functions-framework puts it in a CloudEvent."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    data: str = ""
    attributes: dict[str, str] = Field(default_factory=dict)
    message_id: str = Field(default="", alias="messageId")
    publish_time: datetime | None = Field(
        default=None, validation_alias=AliasChoices("publishTime", "publish_time")
    )

    def payload(self) -> bytes:
        return base64.b64decode(self.data) if self.data else b""

    def json_payload(self) -> Any:
        try:
            return json.loads(self.payload())
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadEvent(f"Pub/Sub message {self.message_id} is not JSON: {exc}") from exc

    @classmethod
    def of(cls, data: bytes, attributes: Mapping[str, str], message_id: str) -> PubSubMessage:
        """The message Pub/Sub delivers for ``data`` published with ``attributes``."""
        return cls.model_validate(
            {
                "data": base64.b64encode(data).decode(),
                "attributes": dict(attributes),
                "messageId": message_id,
            }
        )

    @classmethod
    def from_cloud_event_data(cls, data: Any) -> PubSubMessage:
        if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
            raise BadEvent("CloudEvent data has no Pub/Sub 'message'")
        try:
            return cls.model_validate(data["message"])
        except ValidationError as exc:
            raise BadEvent(f"malformed Pub/Sub message: {exc}") from exc


def push_body(
    message: PubSubMessage, subscription: str, publish_time: str = "2026-01-01T00:00:00Z"
) -> dict[str, Any]:
    """The body a Pub/Sub push subscription POSTs for ``message``."""
    return {
        "message": {
            "data": message.data,
            "attributes": message.attributes,
            "messageId": message.message_id,
            "publishTime": publish_time,
        },
        "subscription": subscription,
    }


def topic_of(source: str | None) -> str:
    """The topic of a Pub/Sub CloudEvent, from its ``source`` (``.../topics/{topic}``)."""
    return str(source or "").rsplit("/topics/", 1)[-1]


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

    @staticmethod
    def is_one(message: PubSubMessage) -> bool:
        """Whether ``message`` is a bucket notification (not a stage's own message)."""
        return NOTIFICATION_ATTRIBUTE in message.attributes

    @classmethod
    def from_message(cls, message: PubSubMessage) -> GcsNotification:
        event_type = message.attributes.get(NOTIFICATION_ATTRIBUTE, "")
        payload_format = message.attributes.get("payloadFormat", JSON_API_V1)
        if payload_format != JSON_API_V1:
            raise BadEvent(f"unsupported notification payload format {payload_format!r}")
        try:
            return cls(
                event_type=event_type, object=GcsObject.model_validate(message.json_payload())
            )
        except ValidationError as exc:
            raise BadEvent(f"notification payload is not a GCS object: {exc}") from exc


def finalize_message(info: BlobInfo) -> tuple[bytes, dict[str, str]]:
    """The Pub/Sub message GCS sends for a finalized object (payload format JSON_API_V1)."""
    payload = {
        "kind": "storage#object",
        "id": f"{info.bucket}/{info.name}/{info.generation}",
        "name": info.name,
        "bucket": info.bucket,
        "generation": str(info.generation),
        "contentType": info.content_type,
        "size": str(info.size),
        "metadata": dict(info.metadata),
    }
    attributes = {
        "notificationConfig": "embedded",
        NOTIFICATION_ATTRIBUTE: OBJECT_FINALIZE,
        "payloadFormat": JSON_API_V1,
        "bucketId": info.bucket,
        "objectId": info.name,
        "objectGeneration": str(info.generation),
    }
    return json.dumps(payload).encode(), attributes

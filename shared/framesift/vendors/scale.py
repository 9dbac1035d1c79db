"""Scale AI through its official client (``scaleapi``): one image-annotation task per frame.

``unique_id`` is the frame id, so Scale itself refuses a second task for a frame: a 409 on
create is success, and the existing task is looked up (``GET /v1/tasks?unique_id=``).

The client retries 408/429/5xx by itself (three times, honouring Retry-After) but only over
https; whatever reaches us is sorted here: 408/429/5xx and connection failures are
:class:`VendorUnavailable` (the labeler backs off and retries, then Pub/Sub redelivers), and
401/402/400/404 are a :class:`VendorRejected` that no retry can fix. The API key is never
logged: the client sends it as basic auth and its errors carry only Scale's message.
"""

from __future__ import annotations

from collections.abc import Sequence

from scaleapi import ScaleClient
from scaleapi.exceptions import ScaleDuplicateResource, ScaleException
from scaleapi.tasks import TaskType

from framesift.config import Settings
from framesift.errors import VendorRejected, VendorUnavailable
from framesift.ports import LabelingRequest, LabelingTask

_RETRYABLE = {408, 429}


def _retryable(code: int | None) -> bool:
    return code is None or code in _RETRYABLE or code >= 500


class ScaleVendor:
    name = "scale"

    def __init__(self, settings: Settings) -> None:
        if settings.scale_api_key is None:
            raise VendorRejected("FRAMESIFT_SCALE_API_KEY is not set")
        self._settings = settings
        self._client = ScaleClient(
            settings.scale_api_key.get_secret_value(),
            source="framesift",
            api_instance_url=settings.scale_api_url,
        )

    def request(self, batch_id: str, frames: Sequence[LabelingRequest]) -> list[LabelingTask]:
        return [self._create(frame) for frame in frames]

    def _create(self, frame: LabelingRequest) -> LabelingTask:
        settings = self._settings
        callback = f"{settings.webhook_url.rstrip('/')}/scale" if settings.webhook_url else None
        try:
            task = self._client.create_task(
                TaskType.ImageAnnotation,
                project=settings.scale_project,
                instruction=settings.scale_instruction,
                attachment=frame.image_url,
                attachment_type="image",
                geometries={
                    "box": {
                        "objects_to_annotate": list(settings.labeling_classes),
                        "min_width": settings.scale_min_width,
                        "min_height": settings.scale_min_height,
                    }
                },
                unique_id=frame.frame_id,
                metadata=dict(frame.metadata),
                **({"callback_url": callback} if callback else {}),
            )
            return LabelingTask(frame.frame_id, str(task.id))
        except ScaleDuplicateResource:
            return self._existing(frame.frame_id)
        except ScaleException as exc:
            raise self._error(exc, "create a task") from exc

    def _existing(self, frame_id: str) -> LabelingTask:
        try:
            found = self._client.tasks(unique_id=frame_id).docs
        except ScaleException as exc:
            raise self._error(exc, "look up a task by unique_id") from exc
        if not found:
            raise VendorUnavailable(f"Scale reported a duplicate of {frame_id} but has no task")
        return LabelingTask(frame_id, str(found[0].id))

    @staticmethod
    def _error(exc: ScaleException, doing: str) -> Exception:
        message = f"Scale could not {doing}: {exc}"
        return VendorUnavailable(message) if _retryable(exc.code) else VendorRejected(message)

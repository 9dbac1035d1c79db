"""Labeler stage: kept frames in, one labeling task per frame at the configured vendor.

Exactly one task per frame, whatever the redeliveries:

1. a frame whose document already names a task at this vendor is skipped (redelivery after
   success changes nothing);
2. every vendor adapter is itself idempotent by frame id (Scale's ``unique_id``, a lookup by
   ``frame_id`` in Label Studio, deterministic object names for the manifest), which covers a
   crash between creating tasks and recording them;
3. the task is then recorded on the frame: ``labeling_status`` ``requested``, the vendor, its
   task id and ``labeling_requested_at``.

Before that, the selection policy (:mod:`framesift.selection`) orders the frames and may skip
some (``labeling_status`` ``skipped``, with the reason).

A vendor's 429/5xx is retried with exponential backoff and jitter within
``labeling_retry_seconds``; past that the invocation fails and Pub/Sub redelivers. A request the
vendor refuses (bad key, unknown project) is a :class:`~framesift.models.PermanentError`: no
retry storm, the message is dead-lettered at once. A dead-lettered message marks its frames
``labeling_failed`` with the vendor's error (:meth:`Labeler.give_up`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

from framesift.config import ImageUrlMode, Settings
from framesift.documents import FrameLabeling, LabelingStatus, utcnow
from framesift.errors import BadEvent, VendorUnavailable
from framesift.events import PubSubMessage
from framesift.logs import bind_context, get_logger
from framesift.messages import KeptFrames, SampledFrame
from framesift.naming import served_url
from framesift.ports import LabelingRequest, LabelingVendor
from framesift.selection import SelectionPolicy, load_policy
from framesift.topology import Collections
from framesift.wiring import Adapters

log = get_logger(__name__)


@dataclass(frozen=True)
class LabelResult:
    requested: int
    already_requested: int
    skipped: int = 0


class Labeler:
    def __init__(
        self,
        adapters: Adapters,
        settings: Settings,
        vendor: LabelingVendor,
        policy: SelectionPolicy | None = None,
    ) -> None:
        self._adapters = adapters
        self._settings = settings
        self._vendor = vendor
        self._policy = policy or load_policy(settings)

    def handle_message(self, message: PubSubMessage) -> LabelResult:
        return self.handle(KeptFrames.from_message(message))

    def handle(self, kept: KeptFrames) -> LabelResult:
        bind_context(batch_id=kept.batch_id, vendor=self._vendor.name)
        pending = [frame for frame in kept.frames if not self._has_task(frame.frame_id)]
        done = len(kept.frames) - len(pending)
        choices = self._policy(pending)
        for choice in choices:
            if choice.skip_reason is not None:
                self._adapters.documents.merge(
                    Collections.FRAMES,
                    choice.frame.frame_id,
                    FrameLabeling(
                        labeling_status=LabelingStatus.SKIPPED,
                        labeling_skip_reason=choice.skip_reason,
                    ).as_fields(),
                )
        pending = [choice.frame for choice in choices if choice.skip_reason is None]
        size = self._settings.labeling_batch_size
        for start in range(0, len(pending), size):
            chunk = pending[start : start + size]
            requests = [self._request(kept, frame) for frame in chunk]
            tasks = self._with_retries(kept.batch_id, requests)
            requested_at = utcnow()
            for task in tasks:
                self._adapters.documents.merge(
                    Collections.FRAMES,
                    task.frame_id,
                    {
                        **FrameLabeling(
                            labeling_status=LabelingStatus.REQUESTED,
                            labeling_vendor=self._vendor.name,
                            labeling_task_id=task.task_id,
                            labeling_requested_at=requested_at,
                            labeling_error=None,
                        ).as_fields(),
                        "updated_at": requested_at,
                    },
                )
        skipped = len(choices) - len(pending)
        log.info(
            "labeling requested",
            extra={
                "fields": {"requested": len(pending), "already_requested": done, "skipped": skipped}
            },
        )
        return LabelResult(requested=len(pending), already_requested=done, skipped=skipped)

    def give_up(self, message: PubSubMessage, reason: str) -> None:
        """Mark the message's frames that have no task ``labeling_failed``, with the reason."""
        try:
            kept = KeptFrames.from_message(message)
        except BadEvent:
            return  # nothing in it names a frame
        for frame in kept.frames:
            if not self._has_task(frame.frame_id):
                self._adapters.documents.merge(
                    Collections.FRAMES,
                    frame.frame_id,
                    {
                        **FrameLabeling(
                            labeling_status=LabelingStatus.FAILED,
                            labeling_vendor=self._vendor.name,
                            labeling_error=reason,
                        ).as_fields(),
                        "updated_at": utcnow(),
                    },
                )

    def _has_task(self, frame_id: str) -> bool:
        doc = self._adapters.documents.get(Collections.FRAMES, frame_id) or {}
        return bool(doc.get("labeling_task_id")) and doc.get("labeling_vendor") == self._vendor.name

    def _request(self, kept: KeptFrames, frame: SampledFrame) -> LabelingRequest:
        if self._settings.labeling_image_url is ImageUrlMode.GCS:
            image_url = f"gs://{frame.bucket}/{frame.object_name}"
        elif self._settings.image_base_url:
            image_url = served_url(self._settings.image_base_url, frame.bucket, frame.object_name)
        else:
            lifetime = timedelta(hours=self._settings.labeling_url_hours)
            image_url = self._adapters.blobs.stream_url(frame.bucket, frame.object_name, lifetime)
        return LabelingRequest(
            frame_id=frame.frame_id,
            image_url=image_url,
            gcs_uri=f"gs://{frame.bucket}/{frame.object_name}",
            width=frame.width,
            height=frame.height,
            metadata={
                "frame_id": frame.frame_id,
                "collector": kept.collector,
                "video_id": kept.video_id,
                "video_doc_id": kept.video_doc_id,
                "timestamp_ms": frame.timestamp_ms,
            },
        )

    def _with_retries(self, batch_id: str, requests: Sequence[LabelingRequest]) -> list:
        retrying = Retrying(
            retry=retry_if_exception_type(VendorUnavailable),
            stop=stop_after_delay(self._settings.labeling_retry_seconds),
            wait=wait_random_exponential(multiplier=0.5, max=20),
            before_sleep=lambda state: log.warning(
                "vendor unavailable, retrying: %s",
                state.outcome.exception() if state.outcome else "",
                extra={"fields": {"attempt": state.attempt_number}},
            ),
            reraise=True,
        )
        return retrying(self._vendor.request, batch_id, requests)

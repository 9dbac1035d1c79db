"""Labeler stage: kept frames in, one labeling task per frame at the configured vendor.

Exactly one task per frame, whatever the redeliveries:

1. a frame whose document already names a task at this vendor is skipped (redelivery after
   success changes nothing), as is one already queued for a round or skipped;
2. every vendor adapter is itself idempotent by frame id (Scale's ``unique_id``, a lookup by
   ``frame_id`` in Label Studio, deterministic object names for the manifest), which covers a
   crash between creating tasks and recording them;
3. the task is then recorded on the frame: ``labeling_status`` ``requested``, the vendor, its
   task id and ``labeling_requested_at``.

With a model (``FRAMESIFT_MODEL_URI``), each frame is pre-labeled first
(:mod:`framesift.prelabels`) and its boxes go with the task: Label Studio predictions, Scale's
hypothesis, the manifest's lines. The selection policy (:mod:`framesift.selection`) then orders
the frames and may skip some (``labeling_status`` ``skipped``, with the reason). With a budget,
the frames are ``queued`` instead, and a round (a :class:`~framesift.messages.LabelingRound` on
``labeling-rounds``) decides them all in transactions with the round's budget document
(``labeling_rounds/{round}``, never spent twice) and sends the ones it selected.

A vendor's 429/5xx is retried with exponential backoff and jitter within
``labeling_retry_seconds``; past that the invocation fails and Pub/Sub redelivers. A request the
vendor refuses (bad key, unknown project) is a :class:`~framesift.errors.PermanentError`: no
retry storm, the message is dead-lettered at once. A dead-lettered message marks its frames
``labeling_failed`` with the vendor's error (:meth:`Labeler.give_up`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

from framesift.bookkeeping import RoundBudget
from framesift.config import ImageUrlMode
from framesift.documents import FrameLabeling, LabelingStatus, utcnow
from framesift.errors import BadEvent, VendorUnavailable
from framesift.events import PubSubMessage
from framesift.logs import bind_context, get_logger
from framesift.messages import ROUND_MESSAGE, KeptFrames, LabelingRound, SampledFrame
from framesift.naming import served_url
from framesift.ports import BlobStore, DocKey, DocumentStore, LabelingRequest, LabelingVendor, Lazy
from framesift.prelabels import Prediction, Prelabeler, stored_predictions
from framesift.selection import (
    Candidate,
    SelectionPolicy,
    plan_round,
)
from framesift.topology import Collections

log = get_logger(__name__)

FRAMES = Collections.FRAMES
# Frames decided once and for all: a redelivered batch leaves them be.
_DECIDED = frozenset({LabelingStatus.QUEUED, LabelingStatus.SKIPPED, LabelingStatus.SELECTED})
# Frames a round decides per transaction (Firestore allows 500 writes in one).
_ROUND_CHUNK = 200


@dataclass(frozen=True)
class LabelResult:
    requested: int
    already_requested: int
    skipped: int = 0
    queued: int = 0


@dataclass(frozen=True)
class LabelerConfig:
    """The settings the labeler reads (each named as in :class:`~framesift.config.Settings`)."""

    labeling_budget: int
    labeling_audit_fraction: float
    labeling_batch_size: int
    labeling_image_url: ImageUrlMode
    image_base_url: str | None
    labeling_url_hours: int
    labeling_retry_seconds: float


class Labeler:
    def __init__(
        self,
        blobs: BlobStore,
        documents: DocumentStore,
        vendor: LabelingVendor,
        config: LabelerConfig,
        policy: SelectionPolicy,
        prelabeler: Lazy[Prelabeler] | None = None,
    ) -> None:
        self._blobs = blobs
        self._documents = documents
        self._vendor = vendor
        self._config = config
        self._policy = policy
        self._prelabeler = prelabeler

    def handle_message(self, message: PubSubMessage) -> LabelResult:
        if message.attributes.get(ROUND_MESSAGE):
            return self.run_round(LabelingRound.from_message(message).round or "")
        return self.handle(KeptFrames.from_message(message))

    def handle(self, kept: KeptFrames) -> LabelResult:
        bind_context(batch_id=kept.batch_id, vendor=self._vendor.name)
        docs = self._documents.get_many(FRAMES, [f.frame_id for f in kept.frames])
        pending = [f for f in kept.frames if self._undecided(docs.get(f.frame_id))]
        unsent = [
            f
            for f in kept.frames
            if (docs.get(f.frame_id) or {}).get("labeling_status") == LabelingStatus.SELECTED
        ]
        done = len(kept.frames) - len(pending) - len(unsent)
        predictions = (
            self._prelabeler.get().predictions(pending, docs)
            if self._prelabeler and pending
            else {}
        )
        choices = self._policy([Candidate(f, predictions.get(f.frame_id)) for f in pending])
        chosen = []
        for choice in choices:
            if choice.skip_reason is not None:
                self._mark(
                    choice.frame.frame_id,
                    LabelingStatus.SKIPPED,
                    choice.priority,
                    labeling_skip_reason=choice.skip_reason,
                )
            elif self._config.labeling_budget:
                self._mark(choice.frame.frame_id, LabelingStatus.QUEUED, choice.priority)
            else:
                chosen.append(choice.frame)
        skipped = sum(choice.skip_reason is not None for choice in choices)
        queued = len(choices) - skipped - len(chosen)
        self._send(kept, chosen + unsent, predictions)
        requested = len(chosen) + len(unsent)
        log.info(
            "labeling requested",
            extra={
                "fields": {
                    "requested": requested,
                    "already_requested": done,
                    "skipped": skipped,
                    "queued": queued,
                }
            },
        )
        return LabelResult(requested, done, skipped, queued)

    def run_round(self, round_id: str) -> LabelResult:
        """Spend round ``round_id``'s budget on the queued frames, then send the selected."""
        bind_context(labeling_round=round_id, vendor=self._vendor.name)
        documents = self._documents
        queued = documents.where(FRAMES, "labeling_status", LabelingStatus.QUEUED.value)
        plan = plan_round(
            [(doc["id"], float(doc.get("labeling_priority") or 0.0)) for doc in queued],
            self._config.labeling_budget,
            self._config.labeling_audit_fraction,
            round_id,
        )
        skipped = 0
        for start in range(0, len(plan), _ROUND_CHUNK):
            skipped += self._decide(round_id, plan[start : start + _ROUND_CHUNK])
        selected = sorted(
            documents.where(FRAMES, "labeling_status", LabelingStatus.SELECTED.value),
            key=lambda doc: -float(doc.get("labeling_priority") or 0.0),
        )
        by_batch: dict[tuple[str, str, str], list[SampledFrame]] = {}
        for doc in selected:
            try:
                frame = _sampled(doc)
            except ValidationError as exc:  # one broken document never holds up the round
                self._fail(doc["id"], f"its frame document cannot be sent: {exc}")
                continue
            key = (
                doc.get("collector") or "",
                doc.get("video_doc_id") or "",
                doc.get("video_id") or "",
            )
            by_batch.setdefault(key, []).append(frame)
        predictions = stored_predictions(
            self._documents,
            [str(doc["model_prediction_id"]) for doc in selected if doc.get("model_prediction_id")],
        )
        for (collector, video_doc_id, video_id), frames in by_batch.items():
            kept = KeptFrames(
                batch_id=f"round-{round_id}",
                collector=collector,
                video_doc_id=video_doc_id,
                video_id=video_id,
                frames=frames,
            )
            self._send(kept, frames, predictions)
        sent = sum(len(frames) for frames in by_batch.values())
        log.info(
            "labeling round",
            extra={"fields": {"requested": sent, "skipped": skipped, "queued": len(plan)}},
        )
        return LabelResult(requested=sent, already_requested=0, skipped=skipped)

    def _decide(self, round_id: str, decisions: Sequence[Any]) -> int:
        """Record a chunk of a round's plan in one transaction with the round's budget: a frame
        another delivery decided meanwhile is left be, and selections past what the budget has
        left become skips. Returns how many were skipped."""
        budget_key: DocKey = (Collections.LABELING_ROUNDS, round_id)
        keys = [budget_key, *((FRAMES, d.frame_id) for d in decisions)]
        limit = self._config.labeling_budget

        def change(docs: dict[DocKey, dict | None]) -> tuple[dict[DocKey, dict], int]:
            spent = int((docs[budget_key] or {}).get("spent") or 0)
            writes: dict[DocKey, dict] = {}
            skipped = 0
            for decision in decisions:
                frame = docs[(FRAMES, decision.frame_id)] or {}
                if frame.get("labeling_status") != LabelingStatus.QUEUED:
                    continue
                if decision.selected_as is not None and spent < limit:
                    spent += 1
                    labeling = FrameLabeling(
                        labeling_status=LabelingStatus.SELECTED,
                        labeling_selected_as=decision.selected_as.value,
                        labeling_round=round_id,
                    )
                else:
                    skipped += 1
                    reason = decision.reason or f"round {round_id}'s budget of {limit} was spent"
                    labeling = FrameLabeling(
                        labeling_status=LabelingStatus.SKIPPED,
                        labeling_skip_reason=reason,
                        labeling_round=round_id,
                    )
                writes[(FRAMES, decision.frame_id)] = labeling.as_fields()
            writes[budget_key] = RoundBudget(round=round_id, budget=limit, spent=spent).stored()
            return writes, skipped

        return self._documents.transact(keys, change)

    def _mark(self, frame_id: str, status: LabelingStatus, priority: float, **more: Any) -> None:
        self._documents.merge(
            FRAMES,
            frame_id,
            FrameLabeling(labeling_status=status, labeling_priority=priority, **more).as_fields(),
        )

    def _send(
        self,
        kept: KeptFrames,
        frames: Sequence[SampledFrame],
        predictions: Mapping[str, Prediction],
    ) -> None:
        size = self._config.labeling_batch_size
        for start in range(0, len(frames), size):
            chunk = frames[start : start + size]
            requests = [self._request(kept, f, predictions.get(f.frame_id)) for f in chunk]
            tasks = self._with_retries(kept.batch_id, requests)
            requested_at = utcnow()
            for task in tasks:
                self._documents.merge(
                    FRAMES,
                    task.frame_id,
                    FrameLabeling(
                        labeling_status=LabelingStatus.REQUESTED,
                        labeling_vendor=self._vendor.name,
                        labeling_task_id=task.task_id,
                        labeling_requested_at=requested_at,
                        labeling_error=None,
                    ).as_fields(),
                )

    def give_up(self, message: PubSubMessage, reason: str) -> None:
        """Mark the message's frames that have no task ``labeling_failed``, with the reason."""
        try:
            kept = KeptFrames.from_message(message)
        except BadEvent:
            return  # nothing in it names a frame (a round's frames stay selected or queued)
        docs = self._documents.get_many(FRAMES, [f.frame_id for f in kept.frames])
        for frame in kept.frames:
            if not self._has_task(docs.get(frame.frame_id)):
                self._fail(frame.frame_id, reason)

    def _fail(self, frame_id: str, reason: str) -> None:
        self._documents.merge(
            FRAMES,
            frame_id,
            FrameLabeling(
                labeling_status=LabelingStatus.FAILED,
                labeling_vendor=self._vendor.name,
                labeling_error=reason,
            ).as_fields(),
        )

    def _has_task(self, doc: Mapping[str, Any] | None) -> bool:
        doc = doc or {}
        return bool(doc.get("labeling_task_id")) and doc.get("labeling_vendor") == self._vendor.name

    def _undecided(self, doc: Mapping[str, Any] | None) -> bool:
        return not self._has_task(doc) and (doc or {}).get("labeling_status") not in _DECIDED

    def _request(
        self, kept: KeptFrames, frame: SampledFrame, prediction: Prediction | None
    ) -> LabelingRequest:
        if self._config.labeling_image_url is ImageUrlMode.GCS:
            image_url = f"gs://{frame.bucket}/{frame.object_name}"
        elif self._config.image_base_url:
            image_url = served_url(self._config.image_base_url, frame.bucket, frame.object_name)
        else:
            lifetime = timedelta(hours=self._config.labeling_url_hours)
            image_url = self._blobs.stream_url(frame.bucket, frame.object_name, lifetime)
        return LabelingRequest(
            frame_id=frame.frame_id,
            image_url=image_url,
            gcs_uri=f"gs://{frame.bucket}/{frame.object_name}",
            width=frame.width or (prediction.width if prediction else None),
            height=frame.height or (prediction.height if prediction else None),
            metadata={
                "frame_id": frame.frame_id,
                "collector": kept.collector,
                "video_id": kept.video_id,
                "video_doc_id": kept.video_doc_id,
                "timestamp_ms": frame.timestamp_ms,
            },
            prelabels=prediction.boxes if prediction else (),
            model_version=prediction.model_version if prediction else None,
            uncertainty=prediction.uncertainty if prediction else None,
        )

    def _with_retries(self, batch_id: str, requests: Sequence[LabelingRequest]) -> list:
        retrying = Retrying(
            retry=retry_if_exception_type(VendorUnavailable),
            stop=stop_after_delay(self._config.labeling_retry_seconds),
            wait=wait_random_exponential(multiplier=0.5, max=20),
            before_sleep=lambda state: log.warning(
                "vendor unavailable, retrying: %s",
                state.outcome.exception() if state.outcome else "",
                extra={"fields": {"attempt": state.attempt_number}},
            ),
            reraise=True,
        )
        return retrying(self._vendor.request, batch_id, requests)


def _sampled(doc: Mapping[str, Any]) -> SampledFrame:
    """What the labeler needs of a frame, from its document (a round has no message of it)."""
    known = {name: value for name, value in doc.items() if value is not None}
    return SampledFrame.model_validate({**known, "frame_id": doc["id"]})

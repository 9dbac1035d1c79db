"""Pre-labels: the model's boxes on a kept frame, before its task is created.

Each is stored once, as an annotation of its own kind (``annotations/model~{model version}~{frame
id}``, source ``model``, status ``predicted``: never a frame's label), with the model's class
names and how unsure it is of the frame; the frame records which pre-label it has
(``model_prediction_id``, ``model_version``, ``model_uncertainty``). A redelivered batch reads
the stored pre-label instead of running the model again. Boxes of classes outside
``FRAMESIFT_LABELING_CLASSES`` are left out: annotators could not keep them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from framesift.detection import UNCERTAINTY, frame_size
from framesift.documents import (
    AnnotationRecord,
    AnnotationSource,
    AnnotationStatus,
    Box,
    FramePrediction,
    create_or_get,
    utcnow,
)
from framesift.errors import InvalidModel
from framesift.messages import SampledFrame
from framesift.modelspec import Uncertainty
from framesift.ports import BlobStore, Detector, DocumentStore
from framesift.topology import Collections

MODEL_VENDOR = "model"


@dataclass(frozen=True)
class Prediction:
    """A frame's pre-label: the model's boxes (pixels and fractions, with scores)."""

    id: str
    model_version: str
    boxes: list[Box]
    uncertainty: float
    width: int
    height: int

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Prediction:
        return cls(
            id=str(doc["id"]),
            model_version=str(doc["model_version"]),
            boxes=[Box.model_validate(box) for box in doc.get("boxes") or []],
            uncertainty=float(doc.get("uncertainty") or 0.0),
            width=int(doc.get("image_width") or 0),
            height=int(doc.get("image_height") or 0),
        )


def prediction_id(model_version: str, frame_id: str) -> str:
    return AnnotationRecord.make_id(MODEL_VENDOR, f"{model_version}~{frame_id}")


def stored_predictions(documents: DocumentStore, ids: Sequence[str]) -> dict[str, Prediction]:
    """The stored pre-labels of these ids, by frame id, in one batched read."""
    if not ids:
        return {}
    stored = documents.get_many(Collections.ANNOTATIONS, list(ids))
    return {
        str(doc["frame_id"]): Prediction.from_doc(doc)
        for doc in stored.values()
        if doc.get("frame_id")
    }


@dataclass(frozen=True)
class PrelabelerConfig:
    """The settings the pre-labeler reads (each named as in :class:`~framesift.config.Settings`)."""

    labeling_classes: Sequence[str]
    selection_uncertainty: Uncertainty


class Prelabeler:
    def __init__(
        self,
        detector: Detector,
        documents: DocumentStore,
        blobs: BlobStore,
        config: PrelabelerConfig,
    ) -> None:
        self._detector = detector
        self._uncertainty = UNCERTAINTY[config.selection_uncertainty]
        self._documents = documents
        self._blobs = blobs
        self._classes = set(config.labeling_classes)
        if not self._classes & set(detector.classes):
            raise InvalidModel(
                f"none of the model's classes ({', '.join(detector.classes[:10])}) is one of "
                f"FRAMESIFT_LABELING_CLASSES ({', '.join(config.labeling_classes)})"
            )

    def predictions(
        self, frames: Sequence[SampledFrame], docs: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, Prediction]:
        """Each frame's pre-label by frame id, stored ones read back, others made and stored
        (``docs``: the frames' documents)."""
        wanted = {f.frame_id: prediction_id(self._detector.version, f.frame_id) for f in frames}
        found = stored_predictions(
            self._documents,
            [
                wanted[frame_id]
                for frame_id in wanted
                if (docs.get(frame_id) or {}).get("model_prediction_id") == wanted[frame_id]
            ],
        )
        for frame in frames:
            if frame.frame_id not in found:
                found[frame.frame_id] = self._predict(frame, wanted[frame.frame_id])
        return found

    def _predict(self, frame: SampledFrame, wanted: str) -> Prediction:
        image = self._blobs.get(frame.bucket, frame.object_name)
        width, height = frame_size(image)
        classes = self._detector.classes
        boxes = [
            Box(
                label=classes[found.class_index],
                left=found.left,
                top=found.top,
                width=found.width,
                height=found.height,
                x=found.left / width,
                y=found.top / height,
                w=found.width / width,
                h=found.height / height,
                score=found.score,
            )
            for found in self._detector.detect(image)
            if classes[found.class_index] in self._classes
        ]
        scores = [box.score or 0.0 for box in boxes]
        record = AnnotationRecord(
            id=wanted,
            frame_id=frame.frame_id,
            vendor=MODEL_VENDOR,
            task_id=None,
            annotation_id=wanted.removeprefix(f"{MODEL_VENDOR}~"),
            status=AnnotationStatus.PREDICTED,
            boxes=boxes,
            box_slots=len(boxes),
            image_width=width,
            image_height=height,
            source=AnnotationSource.MODEL,
            model_version=self._detector.version,
            model_classes=[name for name in classes if name in self._classes],
            uncertainty=self._uncertainty(scores),
            vendor_created_at=utcnow(),
            vendor_updated_at=utcnow(),
        )
        created, stored = create_or_get(self._documents, Collections.ANNOTATIONS, wanted, record)
        if not created:
            # Stored by an earlier delivery that died before recording it on the frame.
            record = AnnotationRecord.model_validate(stored)
        self._documents.merge(
            Collections.FRAMES,
            frame.frame_id,
            FramePrediction(
                model_prediction_id=wanted,
                model_version=record.model_version or self._detector.version,
                model_uncertainty=record.uncertainty or 0.0,
                model_boxes=len(record.boxes),
            ).as_fields(),
        )
        return Prediction.from_doc(record.model_dump())

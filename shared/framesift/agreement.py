"""How a human label agrees with the model's pre-label of the same frame, box by box.

Matched as COCO and Pascal VOC match detections to ground truth: per class, the model's boxes
from the highest score down, each to the still unmatched human box of its class it overlaps
most, if that overlap is at least :data:`MATCH_IOU` (a true positive); a model box left over is
a false positive, a human box left over a false negative. Only the model's classes take part
(a human box of a class the model does not know says nothing of it), and only boxes (a rotated
box by its axis-aligned envelope): polygons, keypoints and masks are not what a detector gives.

Each human annotation stores its matches when it is stored (:mod:`framesift.annotations`); the
exporter writes them to ``model_matches`` and the warehouse's views add precision, recall and
average precision at IoU 0.5 up per class, collector and day (:mod:`framesift.stages.exporter`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from framesift.documents import Box
from framesift.geometry import Shape, envelope

MATCH_IOU = 0.5


class Outcome(StrEnum):
    TRUE_POSITIVE = "tp"
    FALSE_POSITIVE = "fp"
    FALSE_NEGATIVE = "fn"


@dataclass(frozen=True)
class Match:
    label: str
    outcome: Outcome
    score: float | None  # the model box's (none for a false negative)
    iou: float | None  # a true positive's overlap
    model_slot: int | None  # the box's index in the pre-label
    human_slot: int | None  # the box's index in the human annotation

    def as_fields(self) -> dict[str, Any]:
        return {**asdict(self), "outcome": self.outcome.value}


def _xyxy(box: Box) -> tuple[float, float, float, float]:
    left, top, width, height = envelope(
        box.x or 0.0, box.y or 0.0, box.w or 0.0, box.h or 0.0, box.rotation
    )
    return left, top, left + width, top + height


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes (plain Python: the webhook, which
    stores matches, loads no numpy)."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    overlap = max(width, 0.0) * max(height, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap
    return overlap / union if union > 0 else 0.0


def match(predicted: Sequence[Box], human: Sequence[Box], classes: Sequence[str]) -> list[Match]:
    """The matches of a pre-label's boxes with a human label's (both in fractions)."""
    known = set(classes)
    matches: list[Match] = []
    for label in sorted(known):
        ours = [(slot, box) for slot, box in enumerate(predicted) if box.label == label]
        theirs = [
            (slot, box)
            for slot, box in enumerate(human)
            if box.label == label and box.shape is Shape.BOX
        ]
        ours.sort(key=lambda item: -(item[1].score or 0.0))
        taken: set[int] = set()
        for slot, box in ours:
            overlaps = {
                col: iou(_xyxy(box), _xyxy(other))
                for col, (_, other) in enumerate(theirs)
                if col not in taken
            }
            best = max(overlaps, key=overlaps.__getitem__, default=None)
            if best is not None and overlaps[best] >= MATCH_IOU:
                taken.add(best)
                matches.append(
                    Match(
                        label,
                        Outcome.TRUE_POSITIVE,
                        box.score,
                        overlaps[best],
                        slot,
                        theirs[best][0],
                    )
                )
            else:
                matches.append(Match(label, Outcome.FALSE_POSITIVE, box.score, None, slot, None))
        matches.extend(
            Match(label, Outcome.FALSE_NEGATIVE, None, None, None, theirs[col][0])
            for col in range(len(theirs))
            if col not in taken
        )
    return matches

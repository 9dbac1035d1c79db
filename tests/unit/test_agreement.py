"""Model-versus-human matching, box by box, as COCO and VOC match detections."""

from __future__ import annotations

import pytest

from framesift.agreement import Outcome, iou, match
from framesift.documents import Box
from framesift.geometry import Shape


def box(label: str, x: float, y: float, w: float, h: float, score: float | None = None) -> Box:
    return Box(label=label, x=x, y=y, w=w, h=h, score=score)


def outcomes(matches):
    return [(m.label, m.outcome.value, m.model_slot, m.human_slot) for m in matches]


def test_the_most_confident_box_takes_the_human_box_and_a_duplicate_is_a_false_positive():
    model = [box("car", 0.1, 0.1, 0.2, 0.2, 0.6), box("car", 0.11, 0.1, 0.2, 0.2, 0.9)]
    human = [box("car", 0.1, 0.1, 0.2, 0.2)]
    assert outcomes(match(model, human, ["car"])) == [
        ("car", "tp", 1, 0),
        ("car", "fp", 0, None),
    ]


def test_a_missed_box_is_a_false_negative_and_a_poor_overlap_is_no_match():
    model = [box("car", 0.0, 0.0, 0.2, 0.2, 0.8)]
    human = [box("car", 0.1, 0.0, 0.2, 0.2), box("car", 0.6, 0.6, 0.1, 0.1)]
    # IoU of the first pair: 0.1 x 0.2 / (0.04 + 0.04 - 0.02) = 1/3 < 0.5.
    assert outcomes(match(model, human, ["car"])) == [
        ("car", "fp", 0, None),
        ("car", "fn", None, 0),
        ("car", "fn", None, 1),
    ]


def test_classes_are_matched_apart_and_only_the_models_classes_count():
    model = [box("car", 0.1, 0.1, 0.2, 0.2, 0.9)]
    human = [
        box("person", 0.1, 0.1, 0.2, 0.2),  # same place, other class: no match
        box("bicycle", 0.5, 0.5, 0.1, 0.1),  # a class the model does not know: left out
    ]
    assert outcomes(match(model, human, ["car", "person"])) == [
        ("car", "fp", 0, None),
        ("person", "fn", None, 0),
    ]


def test_only_boxes_take_part_and_a_true_positive_keeps_its_overlap():
    model = [box("car", 0.1, 0.1, 0.2, 0.2, 0.7)]
    human = [
        Box(label="car", shape=Shape.POLYGON, points=[0.1, 0.1, 0.3, 0.1, 0.3, 0.3]),
        box("car", 0.12, 0.1, 0.2, 0.2),
    ]
    (only,) = match(model, human, ["car"])
    assert (only.outcome, only.human_slot, only.score) == (Outcome.TRUE_POSITIVE, 1, 0.7)
    assert only.iou == pytest.approx(iou((0.1, 0.1, 0.3, 0.3), (0.12, 0.1, 0.32, 0.3)))
    assert only.iou == pytest.approx(0.18 * 0.2 / (0.08 - 0.036))

"""How a pre-labeling model is read: the enums its settings name, in a module of their own so the
settings (:mod:`framesift.config`) can name them without loading numpy and Pillow, which the
code that decodes a model's outputs (:mod:`framesift.detection`) needs."""

from __future__ import annotations

from enum import StrEnum


class OutputFormat(StrEnum):
    """How a detector's outputs are decoded (framesift.detection)."""

    AUTO = "auto"  # from the model's outputs
    YOLO = "yolo"  # [1, 4 + classes, anchors], NMS by framesift
    NMS = "nms"  # NMS in the model


class Uncertainty(StrEnum):
    """How unsure the model is of a frame, from its boxes' scores (0 sure, 1 unsure)."""

    MARGIN = "margin"  # its most ambiguous box: 1 - |2s - 1|, highest at s = 0.5; none: 0
    LEAST_CONFIDENCE = "least_confidence"  # 1 - its most confident box's score; none: 1
    ENTROPY = "entropy"  # the highest binary entropy of a box's score, in bits; none: 0

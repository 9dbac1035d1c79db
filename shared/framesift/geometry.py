"""Plane geometry of labels, in one place for the store (checks) and the snapshots (export):
what annotators draw (:class:`Shape`), one labeled region (:class:`Box`) and the arithmetic."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

# The largest side an image can have: a JPEG's dimensions are 16-bit.
MAX_IMAGE_SIDE = 65535


class Shape(StrEnum):
    """What annotators draw around an object: each vendor's geometry maps to one of these."""

    BOX = "box"  # a rectangle, maybe rotated
    POLYGON = "polygon"
    KEYPOINT = "keypoint"
    MASK = "mask"  # a brush mask (Label Studio only)


class Box(BaseModel):
    """One labeled region: a box, or a polygon, keypoint or mask with the box around it.

    ``left``..``height`` are pixels of the vendor's image and ``x``..``h`` fractions of it (the
    stored truth, once checked); for a polygon and a keypoint they are the axis-aligned box
    around ``points``, for a mask they are set on export (decoding it needs the SDK)."""

    label: str
    left: float | None = None  # pixels
    top: float | None = None
    width: float | None = None
    height: float | None = None
    x: float | None = None  # the same, as fractions 0..1 of the image size (when known)
    y: float | None = None
    w: float | None = None
    h: float | None = None
    rotation: float = 0.0
    shape: Shape = Shape.BOX
    # A polygon's vertices or a keypoint, flat (x0, y0, x1, y1, ...) as COCO has them: in pixels
    # from a vendor, in fractions once stored (Firestore holds no arrays of arrays).
    points: list[float] | None = None
    rle: list[int] | None = None  # a mask, in Label Studio's brush RLE, the image's size
    region_id: str | None = None
    score: float | None = None  # a model's confidence in it
    attributes: dict[str, Any] = Field(default_factory=dict)


def corners(
    left: float, top: float, width: float, height: float, rotation: float = 0.0
) -> list[tuple[float, float]]:
    """The four corners of a box rotated by ``rotation`` degrees clockwise about its top-left
    corner (Label Studio's rotated rectangles), clockwise from the top-left."""
    angle = math.radians(rotation or 0.0)
    cos, sin = math.cos(angle), math.sin(angle)
    return [
        (left + dx * cos - dy * sin, top + dx * sin + dy * cos)
        for dx, dy in ((0.0, 0.0), (width, 0.0), (width, height), (0.0, height))
    ]


def envelope(
    left: float, top: float, width: float, height: float, rotation: float = 0.0
) -> tuple[float, float, float, float]:
    """The axis-aligned (left, top, width, height) around a rotated box; the box itself when it
    is not rotated."""
    if not rotation:
        return left, top, width, height
    points = corners(left, top, width, height, rotation)
    xs, ys = [x for x, _ in points], [y for _, y in points]
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)


def polygon_area(xs: list[float], ys: list[float]) -> float:
    """The area of a simple polygon (the shoelace formula), in the units of its coordinates."""
    twice = sum(
        xs[i] * ys[(i + 1) % len(xs)] - xs[(i + 1) % len(xs)] * ys[i] for i in range(len(xs))
    )
    return abs(twice) / 2

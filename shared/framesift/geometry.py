"""Plane geometry of labels, in one place for the store (checks) and the snapshots (export)."""

from __future__ import annotations

import math
from enum import StrEnum

# The largest side an image can have: a JPEG's dimensions are 16-bit.
MAX_IMAGE_SIDE = 65535


class Shape(StrEnum):
    """What annotators draw around an object: each vendor's geometry maps to one of these."""

    BOX = "box"  # a rectangle, maybe rotated
    POLYGON = "polygon"
    KEYPOINT = "keypoint"
    MASK = "mask"  # a brush mask (Label Studio only)


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

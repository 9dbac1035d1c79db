"""A rotated box's axis-aligned envelope, as COCO's bbox and YOLO's box take it."""

from __future__ import annotations

import pytest

from framesift.snapshot import envelope


def test_an_unrotated_box_is_its_own_envelope():
    box = {"left_px": 10.0, "top_px": 20.0, "width_px": 30.0, "height_px": 40.0, "rotation": 0}
    assert envelope(box) == (10.0, 20.0, 30.0, 40.0)


def test_a_box_rotated_30_degrees_about_its_top_left_corner():
    # Corners (0,0), (w,0), (w,h), (0,h) turned clockwise by 30 degrees, y downwards.
    box = {"left_px": 100.0, "top_px": 100.0, "width_px": 100.0, "height_px": 50.0, "rotation": 30}
    left, top, width, height = envelope(box)
    assert left == pytest.approx(75.0)  # the (0, h) corner swings 25 px to the left
    assert top == pytest.approx(100.0)
    assert width == pytest.approx(100 * 0.8660254 + 25.0)
    assert height == pytest.approx(50 + 50 * 0.8660254)


def test_a_quarter_turn_swaps_the_sides():
    box = {"left_px": 0.0, "top_px": 0.0, "width_px": 80.0, "height_px": 20.0, "rotation": 90}
    assert envelope(box) == pytest.approx((-20.0, 0.0, 20.0, 80.0))

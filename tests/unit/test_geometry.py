"""A rotated box's axis-aligned envelope, as COCO's bbox and YOLO's box take it."""

from __future__ import annotations

import pytest

from framesift.geometry import envelope


def test_an_unrotated_box_is_its_own_envelope():
    assert envelope(10.0, 20.0, 30.0, 40.0, 0) == (10.0, 20.0, 30.0, 40.0)


def test_a_box_rotated_30_degrees_about_its_top_left_corner():
    # Corners (0,0), (w,0), (w,h), (0,h) turned clockwise by 30 degrees, y downwards.
    left, top, width, height = envelope(100.0, 100.0, 100.0, 50.0, 30)
    assert left == pytest.approx(75.0)  # the (0, h) corner swings 25 px to the left
    assert top == pytest.approx(100.0)
    assert width == pytest.approx(100 * 0.8660254 + 25.0)
    assert height == pytest.approx(50 + 50 * 0.8660254)


def test_a_quarter_turn_swaps_the_sides():
    assert envelope(0.0, 0.0, 80.0, 20.0, 90) == pytest.approx((-20.0, 0.0, 20.0, 80.0))

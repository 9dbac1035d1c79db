"""The second check before a dataset-wide drop: within the pHash threshold and a colour layout
bound tighter than the within-video one."""

from __future__ import annotations

import pytest

from framesift.imagestats import LAYOUT_UNKNOWN
from framesift.samescene import DATASET_LAYOUT_THRESHOLD, dataset_layout_threshold, same_scene


def _layout(*values: int) -> str:
    """A colour layout whose 12 stored values (0..127) start with ``values``, the rest 64."""
    padded = [*values, *[64] * (12 - len(values))]
    return bytes(padded).hex()


BASE = _layout()


def test_a_pair_within_the_threshold_with_the_same_layout_is_the_same_scene():
    assert same_scene(0, BASE, BASE, threshold=10)
    assert same_scene(10, BASE, BASE, threshold=10)


def test_a_pair_past_the_threshold_is_not_whatever_the_layout():
    assert not same_scene(11, BASE, BASE, threshold=10)


def test_the_layout_bound_is_tighter_than_the_within_video_one():
    # Stored values are halved levels: one value 4 apart is 8 levels / 12 values ~ 0.67 levels.
    close = _layout(64 + 4 * 8)  # 32 apart: 64 levels / 12 ~ 5.3 levels
    apart = _layout(64 + 4 * 10)  # 40 apart: 80 levels / 12 ~ 6.7 levels
    assert same_scene(3, BASE, close, threshold=10)
    assert not same_scene(3, BASE, apart, threshold=10)
    # The within-video bound (12 levels) would have called both the same scene.
    assert same_scene(3, BASE, apart, threshold=10, layout_threshold=12.0)


def test_an_unknown_layout_leaves_the_phash_to_decide():
    assert same_scene(5, LAYOUT_UNKNOWN, BASE, threshold=10)
    assert same_scene(5, BASE, LAYOUT_UNKNOWN, threshold=10)
    assert not same_scene(11, LAYOUT_UNKNOWN, BASE, threshold=10)


def test_the_stage_passes_the_tighter_of_the_configured_and_the_dataset_bound():
    assert dataset_layout_threshold(12.0) == DATASET_LAYOUT_THRESHOLD == 6.0
    assert dataset_layout_threshold(4.0) == 4.0


@pytest.mark.parametrize("distance", [-1, 65])
def test_a_distance_outside_0_64_is_an_error(distance):
    with pytest.raises(ValueError, match=r"0\.\.64"):
        same_scene(distance, BASE, BASE, threshold=10)

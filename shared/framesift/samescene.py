"""The second check before a frame is dropped as the near duplicate of a frame of another video.

Within a video, a pHash within the threshold and a colour layout within
``dedup_layout_threshold`` (12 levels) say "the same scene": the two frames are seconds apart
and the light drifts. Across the dataset the same pair of numbers is asked a harder question
(is this frame a view already labeled, among up to 10^8 others?) and a false "yes" silently
drops a scene nobody labels, while a false "no" only labels a view twice. So a dataset-wide
candidate must also agree on the colour layout within :data:`DATASET_LAYOUT_THRESHOLD`, half the
within-video bound.

Why this and not a second hash, measured on real pictures (``framesift bench false-matches``,
docs/dedup-index.md): the derived near duplicates of 134 distinct real pictures (JPEG at quality
60-90, a 3 % shift, a 5 % crop, brightness +-10 %, downscaled to a half and a quarter) stay
within 5.2 levels of their original's colour layout, while the distinct pictures that pass
pHash <= 10 and layout <= 12 include tints of one design at 9.2 and 10.3 levels. A finer hash
of the same 128x128 luma (a 256-bit pHash, a gradient hash) puts those tints 18-31 bits apart,
but a 3 % shift moves it as far (31 bits at the median for the 256-bit pHash), it would add 30-32
bytes to each 20-byte index entry, and no hash of the luma separates the pictures that reach the
same flat frame (a blank wall, an overexposed sky). The colour layout is stored already: the
check costs nothing to store or read.

Colour layouts unknown (entries indexed before layouts were stored) cannot be checked: the pHash
decides alone, as :func:`framesift.phashindex.nearest` does.
"""

from __future__ import annotations

from framesift.imagestats import layout_distance

# Levels (0..255, mean absolute difference of the 12 layout values): the derived near duplicates
# of the real set reach 5.2 at most; distinct designs that pHash confuses start at 9.2.
DATASET_LAYOUT_THRESHOLD = 6.0


def dataset_layout_threshold(configured: float) -> float:
    """The colour layout bound for a dataset-wide candidate: the tighter of the configured one
    (``dedup_layout_threshold``) and :data:`DATASET_LAYOUT_THRESHOLD` (what the stage passes to
    the index's ``nearest`` for the dataset scope: it applies :func:`same_scene` to each
    candidate within the pHash threshold)."""
    return min(configured, DATASET_LAYOUT_THRESHOLD)


def same_scene(
    distance: int,
    layout: str,
    other_layout: str,
    threshold: int,
    layout_threshold: float = DATASET_LAYOUT_THRESHOLD,
) -> bool:
    """Whether a dataset-wide candidate at pHash ``distance`` shows the same scene: within the
    pHash threshold, and colour layouts within ``layout_threshold`` (or one of them unknown)."""
    if not 0 <= distance <= 64:
        raise ValueError(f"a pHash distance is 0..64 bits, not {distance}")
    return distance <= threshold and layouts_agree(layout, other_layout, layout_threshold)


def layouts_agree(layout: str, other_layout: str, layout_threshold: float) -> bool:
    """Whether two colour layouts are within ``layout_threshold`` (an unknown one agrees with
    any): the test every index's ``nearest`` applies to a candidate within the pHash bound."""
    apart = layout_distance(layout, other_layout)
    return apart is None or apart <= layout_threshold

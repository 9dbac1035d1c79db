"""pHash, sharpness and brightness from the gray frame, checked against a reference."""

from __future__ import annotations

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageFilter

from framesift.imagestats import GRAY_SIZE, frame_stats, hamming, phash, sharpness


def _pattern(seed: int) -> np.ndarray:
    """A smooth random picture, like a photo at 128x128 (no single-pixel noise)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(16, 16)).astype(np.uint8)
    image = Image.fromarray(coarse).resize((GRAY_SIZE, GRAY_SIZE), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


@pytest.mark.parametrize("seed", range(20))
def test_phash_matches_imagehash_on_the_same_32x32_image(seed):
    gray = _pattern(seed)
    small = gray.reshape(32, 4, 32, 4).mean(axis=(1, 3))
    # imagehash resizes to 32x32 itself; a 32x32 input is left as it is.
    reference = imagehash.phash(Image.fromarray(small.astype(np.float32), mode="F"))

    ours = phash(gray)

    assert (
        hamming(ours, str(reference)) <= 1
    )  # float32 vs float64 may flip a coefficient at the median


def test_near_identical_frames_are_close_and_different_pictures_far():
    picture = _pattern(1)
    noisy = np.clip(
        picture.astype(int) + np.random.default_rng(9).integers(-6, 7, picture.shape), 0, 255
    )
    shifted = np.roll(picture, 2, axis=1)

    assert hamming(phash(picture), phash(noisy.astype(np.uint8))) <= 4
    assert hamming(phash(picture), phash(shifted)) <= 8
    assert hamming(phash(picture), phash(_pattern(2))) >= 20


def test_blur_lowers_sharpness_and_brightness_is_the_mean():
    picture = _pattern(3)
    blurred = np.asarray(Image.fromarray(picture).filter(ImageFilter.GaussianBlur(3)))

    assert sharpness(blurred) < sharpness(picture) / 2
    stats = frame_stats(picture)
    assert stats.brightness == pytest.approx(picture.mean(), abs=0.001)
    assert sharpness(np.full((GRAY_SIZE, GRAY_SIZE), 77, dtype=np.uint8)) == 0.0


def test_phash_rejects_an_image_it_cannot_hash():
    with pytest.raises(ValueError, match="square"):
        phash(np.zeros((100, 80), dtype=np.uint8))

"""pHash, sharpness, brightness and the colour layout from the small YCbCr copy, checked
against a reference and against noise."""

from __future__ import annotations

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageFilter

from framesift.errors import UnreadableImage
from framesift.imagestats import (
    GRAY_SIZE,
    LAYOUT_UNKNOWN,
    SmallCopy,
    frame_stats,
    hamming,
    image_stats,
    layout_distance,
    phash,
    sharpness,
)


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

    ours = phash(gray, dead_zone=0)

    assert (
        hamming(ours, str(reference)) <= 1
    )  # float32 vs float64 may flip a coefficient at the median
    # The dead zone changes a textured picture's hash in a few bits at most.
    assert hamming(phash(gray), ours) <= 6


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
    stats = frame_stats(SmallCopy(picture, picture, picture))
    assert stats.brightness == pytest.approx(picture.mean(), abs=0.001)
    assert sharpness(np.full((GRAY_SIZE, GRAY_SIZE), 77, dtype=np.uint8)) == 0.0


def test_phash_rejects_an_image_it_cannot_hash():
    with pytest.raises(ValueError, match="square"):
        phash(np.zeros((100, 80), dtype=np.uint8))


def _noisy(picture: np.ndarray, rng: np.random.Generator, std: float) -> np.ndarray:
    """``picture`` as a 640x480 frame with sensor noise (std a fraction of full scale), scaled
    down by area to the small copy, as ffmpeg makes it."""
    big = Image.fromarray(picture.astype(np.float32), mode="F").resize((640, 480))
    noisy = np.asarray(big) + rng.normal(0, std * 255, (480, 640))
    small = Image.fromarray(noisy.astype(np.float32), mode="F").resize(
        (GRAY_SIZE, GRAY_SIZE), Image.Resampling.BOX
    )
    return np.clip(np.asarray(small), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("std", [0.015, 0.05])
def test_a_flat_picture_under_sensor_noise_keeps_its_hash(std):
    """Colour bars' luma and a gradient: without the dead zone noise decides many of their bits;
    with it two noisy frames of one still scene are a few bits apart at most."""
    rng = np.random.default_rng(4)
    across = np.linspace(0, 1, GRAY_SIZE)[None, :] * np.ones((GRAY_SIZE, 1))
    bars = np.array([191, 168, 134, 112, 63, 41, 16])[(across * 7).clip(0, 6).astype(int)]
    for flat in (bars.astype(float), 50 + 150 * across):
        frames = [_noisy(flat, rng, std) for _ in range(6)]
        worst = max(hamming(phash(frames[0]), phash(f)) for f in frames[1:])
        without = max(hamming(phash(frames[0], 0), phash(f, 0)) for f in frames[1:])
        assert worst <= 4, (worst, without)  # far inside the 10-bit threshold
        assert without >= 12  # what the dead zone is for


def test_the_colour_layout_tells_colours_of_one_layout_apart():
    """A red and a teal wall of the same luma hash alike; their colour layouts are far apart,
    and noise moves a layout by a level or two."""
    rng = np.random.default_rng(5)
    flat = np.full((GRAY_SIZE, GRAY_SIZE), 1.0)

    def wall(cb: float, cr: float) -> SmallCopy:
        return SmallCopy(*(_noisy(flat * value, rng, 0.015) for value in (115, cb, cr)))

    red, red_again, teal = wall(100, 190), wall(100, 190), wall(150, 70)
    assert hamming(frame_stats(red).phash, frame_stats(teal).phash) <= 2
    assert layout_distance(frame_stats(red).layout, frame_stats(red_again).layout) <= 2
    assert layout_distance(frame_stats(red).layout, frame_stats(teal).layout) >= 40
    assert layout_distance(frame_stats(red).layout, LAYOUT_UNKNOWN) is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x00" * 64, "not a readable image: no image format recognised"),
        (b"plain text", "not a readable image: no image format recognised"),
    ],
)
def test_an_unreadable_images_reason_names_no_memory_address(data, reason):
    with pytest.raises(UnreadableImage) as raised:
        image_stats(data)
    assert str(raised.value) == reason
    assert "0x" not in str(raised.value)

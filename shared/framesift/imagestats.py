"""Per-frame numbers computed with numpy from a small grayscale copy of each frame.

ffmpeg scales every sampled frame to ``GRAY_SIZE`` x ``GRAY_SIZE`` 8-bit gray in the same pass
that writes its JPEG, so these never need the JPEG again:

- pHash (64 bits): the 32x32 block mean of the gray image, its 2-D DCT-II, the 8x8 lowest
  frequencies, each bit set where the coefficient exceeds their median (as ``imagehash.phash``).
  Near-identical frames differ in a few bits; the Hamming distance compares them.
- sharpness: the variance of the 4-neighbour Laplacian (higher is sharper; motion blur and
  defocus lower it).
- brightness: the mean gray level, 0..255.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt
from PIL import Image

from framesift.errors import UnreadableImage

GRAY_SIZE = 128
HASH_SIZE = 8
_DCT_SIZE = 32


@dataclass(frozen=True)
class FrameStats:
    phash: str  # 16 hex digits
    sharpness: float
    brightness: float


@cache
def _dct_matrix(size: int) -> npt.NDArray[np.float64]:
    n = np.arange(size)
    return np.cos(np.pi * np.outer(n, 2 * n + 1) / (2 * size))


def phash(gray: npt.NDArray[np.uint8]) -> str:
    """64-bit perceptual hash of a square gray image whose side is a multiple of 32."""
    side = gray.shape[0]
    if gray.shape != (side, side) or side % _DCT_SIZE:
        raise ValueError(f"phash needs a square image with a side multiple of 32, not {gray.shape}")
    block = side // _DCT_SIZE
    small = gray.astype(np.float64).reshape(_DCT_SIZE, block, _DCT_SIZE, block).mean(axis=(1, 3))
    dct = _dct_matrix(_DCT_SIZE)
    low = (dct @ small @ dct.T)[:HASH_SIZE, :HASH_SIZE]
    bits = (low > np.median(low)).flatten()
    return f"{int(''.join('1' if bit else '0' for bit in bits), 2):016x}"


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def sharpness(gray: npt.NDArray[np.uint8]) -> float:
    image = gray.astype(np.float64)
    laplacian = (
        image[:-2, 1:-1]
        + image[2:, 1:-1]
        + image[1:-1, :-2]
        + image[1:-1, 2:]
        - 4 * image[1:-1, 1:-1]
    )
    return float(laplacian.var())


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str
    stats: FrameStats


def image_stats(data: bytes) -> ImageInfo:
    """Decode a whole JPEG/PNG (a truncated one is an error) and compute its frame stats."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # decodes everything: truncation and corruption surface here
            gray = image.convert("L").resize((GRAY_SIZE, GRAY_SIZE), Image.Resampling.BOX)
            return ImageInfo(
                image.width, image.height, str(image.format), frame_stats(np.asarray(gray))
            )
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(f"not a readable image: {exc}") from exc


def frame_stats(gray: npt.NDArray[np.uint8]) -> FrameStats:
    return FrameStats(
        phash=phash(gray),
        sharpness=round(sharpness(gray), 3),
        brightness=round(float(gray.mean()), 3),
    )

"""Per-frame numbers computed with numpy from a small copy of each frame.

ffmpeg scales every sampled frame to ``GRAY_SIZE`` x ``GRAY_SIZE`` 8-bit YCbCr (4:2:0: the
chroma planes at half the side) in the same pass that writes its JPEG, so these never need the
JPEG again:

- pHash (64 bits), from the luma: the 32x32 block mean, its 2-D DCT-II, the 8x8 lowest
  frequencies, each bit set where the coefficient exceeds their median by more than
  ``PHASH_DEAD_ZONE`` (``imagehash.phash`` has no dead zone). Near-identical frames differ in a
  few bits; the Hamming distance compares them. The dead zone is for flat and low-texture
  pictures (colour bars, a wall, the sky), most of whose coefficients sit at the median: without
  it sensor noise decides their bits (about half of them flip between two frames of a still
  flat scene); with it they are 0 and stay 0, and textured pictures keep their hash.
- colour layout (12 bytes, hex): for each quarter of the frame its mean Cb and Cr and its mean
  luma less the frame's (the layout of light, not the exposure: a brightness drift leaves it),
  in the spirit of MPEG-7's colour layout descriptor. pHash sees luma only and sets bits for
  coefficients above the median, so a red and a teal wall, or a sky and a sideways gradient of
  one tint, hash alike: dedup drops a frame as a near duplicate only if the colour layouts
  agree too (``layout_distance``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from framesift.errors import UnreadableImage

GRAY_SIZE = 128
HASH_SIZE = 8
_DCT_SIZE = 32
# A coefficient counts as above the median only past this margin (DCT units of the 32x32 block
# means): about 12 times the coefficients' own noise under 1.5 % sensor noise, 4 times under 5 %.
PHASH_DEAD_ZONE = 30.0
LAYOUT_GRID = 2  # 2 x 2 cells; luma, Cb and Cr each: 12 values
LAYOUT_UNKNOWN = "ff" * LAYOUT_GRID * LAYOUT_GRID * 3  # no layout (a frame hashed before them)


@dataclass(frozen=True)
class SmallCopy:
    """A frame's small YCbCr copy: the luma ``GRAY_SIZE`` square, the chroma planes any size."""

    luma: npt.NDArray[np.uint8]
    cb: npt.NDArray[np.uint8]
    cr: npt.NDArray[np.uint8]


@dataclass(frozen=True)
class FrameStats:
    phash: str  # 16 hex digits
    sharpness: float
    brightness: float
    layout: str  # 24 hex digits: each cell's mean luma (less the frame's), Cb and Cr


@cache
def _dct_matrix(size: int) -> npt.NDArray[np.float64]:
    n = np.arange(size)
    return np.cos(np.pi * np.outer(n, 2 * n + 1) / (2 * size))


def phash(gray: npt.NDArray[np.uint8], dead_zone: float | None = None) -> str:
    """64-bit perceptual hash of a square gray image whose side is a multiple of 32 (with
    ``dead_zone=0``, imagehash's)."""
    side = gray.shape[0]
    if gray.shape != (side, side) or side % _DCT_SIZE:
        raise ValueError(f"phash needs a square image with a side multiple of 32, not {gray.shape}")
    block = side // _DCT_SIZE
    small = gray.astype(np.float64).reshape(_DCT_SIZE, block, _DCT_SIZE, block).mean(axis=(1, 3))
    dct = _dct_matrix(_DCT_SIZE)
    low = (dct @ small @ dct.T)[:HASH_SIZE, :HASH_SIZE]
    margin = PHASH_DEAD_ZONE if dead_zone is None else dead_zone
    bits = (low > np.median(low) + margin).flatten()
    return f"{int(''.join('1' if bit else '0' for bit in bits), 2):016x}"


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def colour_layout(
    luma: npt.NDArray[np.uint8], cb: npt.NDArray[np.uint8], cr: npt.NDArray[np.uint8]
) -> str:
    """Each cell's mean luma less the frame's (plus 128), Cb and Cr, halved into 0..127 (255
    is :data:`LAYOUT_UNKNOWN`'s), as hex."""
    cells = [_grid_means(plane) for plane in (luma, cb, cr)]
    cells[0] = cells[0] - cells[0].mean() + 128
    values = (np.concatenate(cells).clip(0, 255) / 2).astype(np.uint8)
    return bytes(values.tolist()).hex()


def _grid_means(plane: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    side = plane.shape[0] // LAYOUT_GRID
    return (
        plane[: side * LAYOUT_GRID, : side * LAYOUT_GRID]
        .astype(np.float64)
        .reshape(LAYOUT_GRID, side, LAYOUT_GRID, side)
        .mean(axis=(1, 3))
        .flatten()
    )


def layout_distance(a: str, b: str) -> float | None:
    """The mean absolute difference of two colour layouts, in levels (0..255); None when either
    is unknown."""
    if LAYOUT_UNKNOWN in (a, b):
        return None
    left = np.frombuffer(bytes.fromhex(a), np.uint8).astype(np.int16)
    right = np.frombuffer(bytes.fromhex(b), np.uint8).astype(np.int16)
    return float(np.abs(left - right).mean() * 2)


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


_ORIENTATION = 0x0112  # EXIF's Orientation tag: 1 upright, 2-8 flipped and/or turned


@dataclass(frozen=True)
class ImageInfo:
    width: int  # as displayed: after its EXIF orientation
    height: int
    format: str
    stats: FrameStats  # of the picture as displayed
    orientation: int | None = None  # the EXIF Orientation applied (None: none, or not 1-8)


def image_stats(data: bytes) -> ImageInfo:
    """Decode a whole JPEG/PNG (a truncated one is an error), turn it as its EXIF orientation
    says, as browsers and Label Studio show it (CSS ``image-orientation: from-image`` is their
    default), and compute the frame stats of what is shown."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # decodes everything: truncation and corruption surface here
            orientation = image.getexif().get(_ORIENTATION)
            ImageOps.exif_transpose(image, in_place=True)
            small = image.convert("YCbCr").resize((GRAY_SIZE, GRAY_SIZE), Image.Resampling.BOX)
            luma, cb, cr = np.moveaxis(np.asarray(small), 2, 0)
            stats = frame_stats(SmallCopy(luma, cb, cr))
            applied = orientation if orientation in range(1, 9) else None
            return ImageInfo(image.width, image.height, str(image.format), stats, applied)
    except UnidentifiedImageError as exc:
        # Pillow names the stream it read in its message: a memory address, not a reason.
        raise UnreadableImage("not a readable image: no image format recognised") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(f"not a readable image: {exc}") from exc


def upright(data: bytes, orientation: int | None) -> bytes:
    """A photo's bytes with its EXIF ``orientation`` applied to the pixels (re-encoded as a JPEG
    at quality 95, the orientation tag reset), for readers that ignore EXIF (PIL's, OpenCV's
    and most training loaders'); unchanged when upright already."""
    if orientation in (None, 1):
        return data
    with Image.open(io.BytesIO(data)) as image:
        turned = ImageOps.exif_transpose(image)
        out = io.BytesIO()
        turned.convert("RGB").save(out, "JPEG", quality=95, exif=turned.getexif())
        return out.getvalue()


def frame_stats(small: SmallCopy) -> FrameStats:
    """The stats of a frame's small YCbCr copy."""
    luma, cb, cr = small.luma, small.cb, small.cr
    return FrameStats(
        phash=phash(luma),
        sharpness=round(sharpness(luma), 3),
        brightness=round(float(luma.mean()), 3),
        layout=colour_layout(luma, cb, cr),
    )

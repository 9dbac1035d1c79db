"""False matches of dataset-wide dedup on distinct real pictures, and what the second check keeps.

    framesift bench false-matches            # the tables (markdown)
    framesift bench false-matches --json     # one JSON object per set and per variant

The pictures are framesift_dev.realimages' (Debian's wallpaper packages, opencv-doc's sample
photographs, scikit-image's). Each is first made a frame: decoded, at most ``FRAME_WIDTH``
pixels wide (a video frame's size), saved as a JPEG at quality 95; then hashed as framesift
hashes a photo (``imagestats.image_stats``: decoded whole, turned upright, reduced to 128x128
YCbCr with a box filter, pHash and colour layout of that: what the sampler computes from
ffmpeg's 128x128 copy of a video frame).

Three sets of distinct pictures: the photographs alone, every distinct picture (drawings,
renders and gradients too), and the four quadrants of each photograph (distinct views, but
related: two parts of one sky). For each, every pair's pHash distance; the pairs a dataset-wide
lookup would call near duplicates today (pHash <= t, colour layouts within the configured
``dedup_layout_threshold``) and with the second check (:mod:`framesift.samescene`); those are
the lost scenes, listed by name.

Extrapolated to a scope of n kept frames: a fresh frame of a new scene meets n distinct stored
frames, so its expected false matches are ``n * p`` and the chance it is dropped ``1 - exp(-n p)``
(Poisson), with ``p`` a distinct pair's chance to match, four ways: measured (none may have
matched), its 95 % upper bound (``3 / pairs`` when none did), and two fits of ``P(d <= t)``
times the share of the pairs within ``TAIL_DISTANCE`` bits whose colour layouts agree (the
layouts of close pairs agree more often than all pairs'; Laplace's rule): the pHash distance's
fitted normal ``P(d <= t + 0.5)`` (light-tailed: optimistic) and a log-linear fit of the
empirical CDF's lowest ``TAIL_BITS`` populated bits read at t (:func:`tail_fit`: pessimistic
where the tail is heavy).

Near duplicates, derived from each picture (``VARIANTS``: JPEG at quality 60, 75 and 90, a 3 %
shift, a 5 % crop of each side, brightness +-10 %, downscaled to a half and a quarter): the
share still matched today and with the second check (what the check must keep), and of those the
share a tiered scope's tail (:mod:`framesift.tailindex`, the configured tables) would find once
the original is older than the window: the pair shares a leaf in some table, with leaves at
``TAIL_DEPTHS``' depths (the key bits a scope's leaves have up to the sizes named there).
"""

from __future__ import annotations

import argparse
import io
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from PIL import Image

from framesift import samescene, tailindex
from framesift.config import Settings
from framesift.imagestats import hamming, image_stats, layout_distance
from framesift_dev import realimages

FRAME_WIDTH = 1280
SETTINGS = Settings()
THRESHOLD = SETTINGS.dedup_threshold
LAYOUT_THRESHOLD = SETTINGS.dedup_layout_threshold
SCOPES = (10**5, 10**6, 10**7, 10**8)
TAIL_MIN_PAIRS = 3
TAIL_BITS = 6
TAIL_DISTANCE = 2 * THRESHOLD
TAIL = tailindex.TailGeometry(threshold=THRESHOLD, tables=SETTINGS.dedup_tail_tables)
# The tail's leaves are at depth 0 until its first documents pass the cap, at depth 1 until
# their children do (uniform hashes): the scope sizes each depth serves.
TAIL_DEPTHS = {depth: TAIL.cap * 2 ** TAIL.bits(depth) for depth in (0, 1)}


@dataclass(frozen=True)
class Hashed:
    name: str
    phash: str
    layout: str


def frame_of(path: Any) -> Image.Image:
    """A picture as a video frame would show it: RGB, at most FRAME_WIDTH wide."""
    with Image.open(path) as image:
        image.load()
        frame = image.convert("RGB")
    if frame.width > FRAME_WIDTH:
        height = round(frame.height * FRAME_WIDTH / frame.width)
        frame = frame.resize((FRAME_WIDTH, height), Image.Resampling.LANCZOS)
    return frame


def jpeg(image: Image.Image, quality: int = 95) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def hashed(name: str, image: Image.Image, quality: int = 95) -> Hashed:
    stats = image_stats(jpeg(image, quality)).stats
    return Hashed(name, stats.phash, stats.layout)


def _crop(image: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    w, h = image.size
    return image.crop((round(left * w), round(top * h), round(right * w), round(bottom * h)))


def _scaled(image: Image.Image, factor: float) -> Image.Image:
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _brightness(image: Image.Image, factor: float) -> Image.Image:
    return image.point(lambda v: min(255, round(v * factor)))


# (the variant's image, the JPEG quality it is saved at)
VARIANTS: dict[str, Callable[[Image.Image], tuple[Image.Image, int]]] = {
    "JPEG q60": lambda im: (im, 60),
    "JPEG q75": lambda im: (im, 75),
    "JPEG q90": lambda im: (im, 90),
    "shift 3 %": lambda im: (_crop(im, 0.03, 0, 1, 1), 95),
    "crop 5 % a side": lambda im: (_crop(im, 0.05, 0.05, 0.95, 0.95), 95),
    "brightness +10 %": lambda im: (_brightness(im, 1.1), 95),
    "brightness -10 %": lambda im: (_brightness(im, 0.9), 95),
    "downscaled 1/2": lambda im: (_scaled(im, 0.5), 95),
    "downscaled 1/4": lambda im: (_scaled(im, 0.25), 95),
}
QUADRANTS = {
    "top left": (0, 0, 0.5, 0.5),
    "top right": (0.5, 0, 1, 0.5),
    "bottom left": (0, 0.5, 0.5, 1),
    "bottom right": (0.5, 0.5, 1, 1),
}


def matched_today(distance: int, a: Hashed, b: Hashed) -> bool:
    """A dataset-wide match as dedup decides it today: pHash and the configured layout bound."""
    return samescene.same_scene(distance, a.layout, b.layout, THRESHOLD, LAYOUT_THRESHOLD)


def matched_checked(distance: int, a: Hashed, b: Hashed) -> bool:
    """... and with the second check."""
    bound = samescene.dataset_layout_threshold(LAYOUT_THRESHOLD)
    return samescene.same_scene(distance, a.layout, b.layout, THRESHOLD, bound)


@dataclass(frozen=True)
class Pairs:
    """Every pair of a set of distinct pictures."""

    distances: np.ndarray
    layouts: np.ndarray  # layout distances (nan: unknown)
    lost_today: list[tuple[str, str, int, float]]
    lost_checked: list[tuple[str, str, int, float]]

    @classmethod
    def of(cls, pictures: list[Hashed]) -> Pairs:
        distances, layouts = [], []
        today: list[tuple[str, str, int, float]] = []
        checked: list[tuple[str, str, int, float]] = []
        for a, b in combinations(pictures, 2):
            distance = hamming(a.phash, b.phash)
            apart = layout_distance(a.layout, b.layout)
            distances.append(distance)
            layouts.append(math.nan if apart is None else apart)
            row = (a.name, b.name, distance, round(apart or 0.0, 1))
            if matched_today(distance, a, b):
                today.append(row)
                if matched_checked(distance, a, b):
                    checked.append(row)
        return cls(np.array(distances), np.array(layouts), today, checked)


def tail_fit(distances: np.ndarray) -> float:
    """P(d <= t) from the empirical CDF's lower tail: log F(k) fitted by a line over the
    ``TAIL_BITS`` bits from the first k at which ``TAIL_MIN_PAIRS`` pairs are within k, and read
    at t (the tail measured nearest to t, extended; heavier than the normal's)."""
    cumulative = np.cumsum(np.bincount(distances, minlength=65)) / len(distances)
    start = int(np.argmax(cumulative * len(distances) >= TAIL_MIN_PAIRS))
    bits = np.arange(start, start + TAIL_BITS)
    slope, intercept = np.polyfit(bits, np.log(cumulative[bits]), 1)
    return float(min(1.0, math.exp(intercept + slope * THRESHOLD)))


def extrapolated(pairs: Pairs) -> dict[str, Any]:
    """A distinct pair's chance to match (measured; bound; two fits) and a fresh frame's chance
    to be dropped at each scope size."""
    count = len(pairs.distances)
    mean, spread = float(pairs.distances.mean()), float(pairs.distances.std())
    cut = THRESHOLD + 0.5
    normal = float(mean < cut)  # every pair at one distance
    if spread:
        normal = 0.5 * math.erfc((mean - cut) / (spread * math.sqrt(2)))
    tail = tail_fit(pairs.distances)
    # The layouts of the pairs nearest in pHash (flat regions: skies, walls) agree more often
    # than all pairs': their agreement is measured among the pairs within TAIL_DISTANCE bits,
    # with Laplace's rule ((agreeing + 1) / (pairs + 2)) so that a few pairs never say 0.
    near = pairs.layouts[pairs.distances <= TAIL_DISTANCE]
    checked = samescene.dataset_layout_threshold(LAYOUT_THRESHOLD)
    agree_today = (int(np.sum(near <= LAYOUT_THRESHOLD)) + 1) / (near.size + 2)
    agree_checked = (int(np.sum(near <= checked)) + 1) / (near.size + 2)
    chances = {
        "measured_today": len(pairs.lost_today) / count,
        "measured_checked": len(pairs.lost_checked) / count,
        "bound_today": max(len(pairs.lost_today), 3) / count,
        "bound_checked": max(len(pairs.lost_checked), 3) / count,
        "normal_today": normal * agree_today,
        "normal_checked": normal * agree_checked,
        "tail_today": tail * agree_today,
        "tail_checked": tail * agree_checked,
    }
    return {
        "distance_mean": round(mean, 2),
        "distance_std": round(spread, 2),
        "normal_within_t": normal,
        "tail_within_t": tail,
        "pairs_near": int(near.size),
        "layout_agree_today": round(agree_today, 4),
        "layout_agree_checked": round(agree_checked, 4),
        "per_pair": chances,
        "dropped_at_n": {
            key: {f"{n:.0e}": round(1 - math.exp(-n * chance), 4) for n in SCOPES}
            for key, chance in chances.items()
            if not key.startswith("measured")
        },
    }


def pictures(
    images: list[realimages.RealImage],
) -> tuple[list[Hashed], list[Hashed], list[Hashed], dict[str, dict[str, Hashed]]]:
    """The photographs, every distinct picture, the photographs' quadrants, and each picture's
    derived near duplicates (variant -> hashed), all hashed by framesift's code."""
    photos: list[Hashed] = []
    everything: list[Hashed] = []
    quadrants: list[Hashed] = []
    derived: dict[str, dict[str, Hashed]] = {}
    for picture in images:
        frame = frame_of(picture.path)
        original = hashed(picture.name, frame)
        everything.append(original)
        derived[picture.name] = {
            variant: hashed(picture.name, *make(frame)) for variant, make in VARIANTS.items()
        }
        derived[picture.name]["original"] = original
        if picture.photograph:
            photos.append(original)
            for where, box in QUADRANTS.items():
                quadrants.append(hashed(f"{picture.name} ({where})", _crop(frame, *box)))
    return photos, everything, quadrants, derived


def found_by_tail(a: Hashed, b: Hashed, depth: int) -> bool:
    """Whether a lookup of ``b`` reads the leaf of ``a`` in some table of the tail, with every
    leaf at ``depth`` (its own path and its probes)."""
    first, second = int(a.phash, 16), int(b.phash, 16)
    return any(tailindex.meets(second, first, table, depth, TAIL) for table in range(TAIL.tables))


def measure(images: list[realimages.RealImage]) -> Iterator[dict[str, Any]]:
    photos, everything, quadrants, derived = pictures(images)
    for name, members in (
        ("photographs", photos),
        ("all distinct pictures", everything),
        ("photographs' quadrants", quadrants),
    ):
        pairs = Pairs.of(members)
        histogram = np.bincount(pairs.distances, minlength=65)
        yield {
            "kind": "distinct",
            "set": name,
            "pictures": len(members),
            "pairs": len(pairs.distances),
            "histogram": histogram.tolist(),
            "within_t": int((pairs.distances <= THRESHOLD).sum()),
            "matched_today": len(pairs.lost_today),
            "matched_checked": len(pairs.lost_checked),
            "lost_today": pairs.lost_today,
            "lost_checked": pairs.lost_checked,
            **extrapolated(pairs),
        }
    for variant in VARIANTS:
        distances, layouts, today, checked = [], [], 0, 0
        in_tail = dict.fromkeys(TAIL_DEPTHS, 0)
        for forms in derived.values():
            original, near = forms["original"], forms[variant]
            distance = hamming(original.phash, near.phash)
            distances.append(distance)
            layouts.append(layout_distance(original.layout, near.layout) or 0.0)
            today += matched_today(distance, original, near)
            if matched_checked(distance, original, near):
                checked += 1
                for depth in TAIL_DEPTHS:
                    in_tail[depth] += found_by_tail(original, near, depth)
        yield {
            "kind": "near duplicate",
            "variant": variant,
            "pairs": len(distances),
            "distance_median": float(np.median(distances)),
            "distance_max": int(max(distances)),
            "layout_max": round(max(layouts), 1),
            "recall_today": round(today / len(distances), 3),
            "recall_checked": round(checked / len(distances), 3),
            # Of the pairs matched with the check, the share the tail finds, per leaf depth.
            "tail_recall": {
                f"{TAIL_DEPTHS[depth]:.0e}": round(found / checked, 4) if checked else None
                for depth, found in in_tail.items()
            },
        }


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"| set | pictures | pairs | pHash <= {THRESHOLD} | matched today | with the check |"
        " nearest | dropped at 10^6: normal fit, today / checked | tail fit, today / checked |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["kind"] != "distinct":
            continue
        at = r["dropped_at_n"]
        lines.append(
            f"| {r['set']} | {r['pictures']} | {r['pairs']} | {r['within_t']} |"
            f" {r['matched_today']} | {r['matched_checked']} |"
            f" {int(np.flatnonzero(r['histogram'])[0])} |"
            f" {at['normal_today']['1e+06']} / {at['normal_checked']['1e+06']} |"
            f" {at['tail_today']['1e+06']} / {at['tail_checked']['1e+06']} |"
        )
    lines += [
        "",
        "| near duplicate | pairs | median distance | max distance | max layout |"
        " recall today | with the check | of those, in the tail up to "
        + " / ".join(f"{n:.0e}" for n in TAIL_DEPTHS.values())
        + " |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["kind"] == "near duplicate":
            tail = " / ".join(str(share) for share in r["tail_recall"].values())
            lines.append(
                f"| {r['variant']} | {r['pairs']} | {r['distance_median']} | {r['distance_max']}"
                f" | {r['layout_max']} | {r['recall_today']} | {r['recall_checked']} | {tail} |"
            )
    lines += ["", "| set | lost today (distance, layout) | lost with the check |", "|---|---|---|"]
    for r in rows:
        if r["kind"] == "distinct":
            lines.append(
                f"| {r['set']} | {_names(r['lost_today'])} | {_names(r['lost_checked'])} |"
            )
    return "\n".join(lines)


def _names(lost: list[tuple[str, str, int, float]]) -> str:
    return "; ".join(f"{a} ~ {b} ({d}, {lay})" for a, b, d, lay in lost) or "none"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    args = parser.parse_args(argv)
    if reason := realimages.missing():
        raise SystemExit(reason)
    rows = list(measure(realimages.available()))
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    print(_table(rows))


if __name__ == "__main__":
    main()

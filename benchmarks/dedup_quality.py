"""Dedup quality benchmark: which frames survive sampling + dedup on a video with known scenes.

    .venv/bin/pip install -e .[bench]   # scikit-image, for its bundled photographs
    .venv/bin/python benchmarks/dedup_quality.py

The video (640x480, 10 fps, 260 s) is made of 31 segments showing 14 distinct photographs from
scikit-image's bundled data: static holds with sensor noise and a slow brightness drift, pans
across a photograph, zooms into one, hard cuts between them, holds that return to a
photograph already seen, and hard negatives: holds into which an object (a patch of another
photograph, its side from a half of the frame's down to a sixth) arrives half-way and stays, a new
scene that looks much like the old one; then flat and low-texture holds (colour bars for 30 s,
a gray gradient, a sky, a noisy night scene) and scenes that differ from the one before in colour
only (a warm then a cool gradient, a red then a teal wall, each pair of the same luminance).
For each pHash threshold it runs the embedded pipeline
(1 frame per second, then dedup) and reports:

- kept: frames that would be sent to labeling;
- scenes lost: photographs with no kept frame at all (lost data);
- redundant in holds: kept frames inside static holds beyond the first of a photograph not
  held before (paid for, worth nothing);
- kept in motion: kept frames inside pans and zooms (where the view really changes);
- arrivals missed: holds whose arriving object is in no kept frame (lost data, as lost scenes).

Baselines on the same video: ffmpeg's ``mpdecimate`` after ``fps=1``, and ffmpeg's scene-change
filter ``select='gt(scene,0.3)'`` on every frame.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framesift import imagestats
from framesift.config import Backend, Settings
from framesift.embedded import EmbeddedPipeline

WIDTH, HEIGHT, FPS = 640, 480, 10
PHOTOS = [
    "astronaut",
    "camera",
    "coffee",
    "chelsea",
    "rocket",
    "brick",
    "coins",
    "grass",
    "gravel",
    "moon",
    "text",
    "page",
    "hubble_deep_field",
    "retina",
]
# Flat and low-texture scenes, made here, where pHash's coefficients sit near their median and
# sensor noise flips its bits; and pairs that differ in colour only (the same luminance layout).
SYNTHETIC = [
    "colour_bars",
    "gray_gradient",
    "sky",
    "night",
    "warm_gradient",
    "cool_gradient",
    "red_wall",
    "teal_wall",
]


@dataclass(frozen=True)
class Segment:
    photo: str
    kind: str  # hold, pan, zoom, arrival (a hold into which `arriving` arrives half-way)
    seconds: int
    arriving: str | None = None
    arriving_side: float = 0.0  # the object's side as a fraction of the frame's


SCRIPT = [
    Segment("astronaut", "hold", 12),
    Segment("camera", "hold", 8),
    Segment("coffee", "pan", 8),
    Segment("chelsea", "hold", 10),
    Segment("rocket", "zoom", 8),
    Segment("astronaut", "hold", 6),
    Segment("brick", "hold", 6),
    Segment("coins", "pan", 8),
    Segment("grass", "hold", 6),
    Segment("gravel", "hold", 6),
    Segment("moon", "zoom", 8),
    Segment("camera", "hold", 6),
    Segment("text", "hold", 8),
    Segment("page", "pan", 8),
    Segment("hubble_deep_field", "hold", 8),
    Segment("retina", "zoom", 8),
    Segment("chelsea", "hold", 6),
    Segment("coffee", "hold", 6),
    Segment("rocket", "hold", 8),
    Segment("camera", "arrival", 8, arriving="chelsea", arriving_side=1 / 2),
    Segment("brick", "arrival", 8, arriving="coffee", arriving_side=1 / 3),
    Segment("moon", "arrival", 8, arriving="astronaut", arriving_side=1 / 4),
    Segment("coins", "arrival", 8, arriving="rocket", arriving_side=1 / 6),
    Segment("colour_bars", "hold", 30),
    Segment("gray_gradient", "hold", 10),
    Segment("sky", "hold", 10),
    Segment("night", "hold", 10),
    Segment("warm_gradient", "hold", 6),
    Segment("cool_gradient", "hold", 6),  # the same layout in another colour: a new scene
    Segment("red_wall", "hold", 6),
    Segment("teal_wall", "hold", 6),  # the same flat wall, another colour
]


def _synthetic(name: str) -> np.ndarray:
    """A flat or low-texture scene, twice the frame size, RGB in 0..1."""
    height, width = HEIGHT * 2, WIDTH * 2
    across = np.linspace(0, 1, width)[None, :, None] * np.ones((height, 1, 1))
    down = np.linspace(0, 1, height)[:, None, None] * np.ones((1, width, 1))
    if name == "colour_bars":  # SMPTE's seven bars at 75 %
        colours = (
            np.array([[1, 1, 1], [1, 1, 0], [0, 1, 1], [0, 1, 0], [1, 0, 1], [1, 0, 0], [0, 0, 1]])
            * 0.75
        )
        return colours[(across[..., 0] * 7).clip(0, 6).astype(int)]
    if name == "gray_gradient":
        return np.repeat(0.2 + 0.6 * across, 3, axis=2)
    if name == "sky":
        return np.concatenate([0.35 + 0.3 * down, 0.55 + 0.25 * down, 0.9 + 0 * down], axis=2)
    if name == "night":
        glow = np.exp(-(((across - 0.7) ** 2) + ((down - 0.3) ** 2)) * 20)
        return np.repeat(0.05 + 0.06 * glow, 3, axis=2) * np.array([0.9, 0.9, 1.2])
    # Gradients and walls in two colours of the same luminance (Rec. 601 weights).
    luma = 0.25 + 0.5 * across if name.endswith("gradient") else 0.45 + 0 * across
    tint = {
        "warm_gradient": [1.35, 0.92, 0.55],
        "cool_gradient": [0.55, 1.02, 1.45],
        "red_wall": [1.6, 0.75, 0.75],
        "teal_wall": [0.35, 1.2, 1.2],
    }[name]
    colour = np.asarray(tint) / (0.299 * tint[0] + 0.587 * tint[1] + 0.114 * tint[2])
    return (luma * colour).clip(0, 1)


def _photo(name: str) -> np.ndarray:
    from skimage import data, transform, util

    if name in SYNTHETIC:
        return _synthetic(name)
    image = util.img_as_float(getattr(data, name)())
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    image = image[..., :3]
    # Twice the frame size, so pans and zooms have room.
    return transform.resize(image, (HEIGHT * 2, WIDTH * 2), anti_aliasing=True)


def _frames(  # noqa: ANN202
    segment: Segment,
    photos: dict[str, np.ndarray],
    rng: np.random.Generator,
    noise: float,
    drift: float,
):
    photo = photos[segment.photo]
    count = segment.seconds * FPS
    for i in range(count):
        progress = i / max(count - 1, 1)
        if segment.kind == "pan":
            x = int(progress * WIDTH)
            view = photo[HEIGHT // 2 : HEIGHT // 2 + HEIGHT, x : x + WIDTH]
        elif segment.kind == "zoom":
            scale = 1.0 + 0.6 * progress  # crop a shrinking window around the centre
            h, w = int(HEIGHT * 2 / scale / 2), int(WIDTH * 2 / scale / 2)
            top, left = HEIGHT - h // 2, WIDTH - w // 2
            view = photo[top : top + h, left : left + w]
            view = view[np.linspace(0, h - 1, HEIGHT).astype(int)][
                :, np.linspace(0, w - 1, WIDTH).astype(int)
            ]
        else:
            view = photo[::2, ::2]
            if segment.arriving and i >= count // 2:
                h, w = int(HEIGHT * segment.arriving_side), int(WIDTH * segment.arriving_side)
                patch = photos[segment.arriving][:: HEIGHT * 2 // h, :: WIDTH * 2 // w][:h, :w]
                view = view.copy()
                view[HEIGHT // 8 : HEIGHT // 8 + patch.shape[0], WIDTH // 8 :][
                    :, : patch.shape[1]
                ] = patch
            view = view + drift * np.sin(progress * np.pi)  # slow brightness drift
        noisy = view + rng.normal(0, noise, view.shape)  # sensor noise
        yield (np.clip(noisy, 0, 1) * 255).astype(np.uint8)


def make_video(path: Path, noise: float, drift: float) -> list[tuple[float, float, Segment]]:
    """Write the video; return each segment's [start, end) in seconds."""
    rng = np.random.default_rng(7)
    photos = {name: _photo(name) for name in PHOTOS + SYNTHETIC}
    encoder = subprocess.Popen(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{WIDTH}x{HEIGHT}",
            "-r",
            str(FPS),
            "-i",
            "-",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        stdin=subprocess.PIPE,
    )
    stdin = encoder.stdin
    if stdin is None:
        raise RuntimeError("no pipe to ffmpeg")
    timeline, start = [], 0.0
    for segment in SCRIPT:
        for frame in _frames(segment, photos, rng, noise, drift):
            stdin.write(frame.tobytes())
        timeline.append((start, start + segment.seconds, segment))
        start += segment.seconds
    stdin.close()
    if encoder.wait() != 0:
        raise RuntimeError("ffmpeg could not encode the benchmark video")
    return timeline


@dataclass(frozen=True)
class Score:
    kept: int
    scenes_lost: int
    redundant_in_holds: int
    kept_in_motion: int
    arrivals_missed: int


def score(kept_ms: list[int], timeline: list[tuple[float, float, Segment]]) -> Score:
    seen: set[str] = set()  # photographs with a kept frame anywhere so far
    held: set[str] = set()  # photographs with a kept frame in a static hold so far
    redundant = motion = missed = 0
    for start, end, segment in timeline:
        inside = [ms for ms in kept_ms if start * 1000 <= ms < end * 1000]
        if segment.kind == "arrival":
            # Two scenes: the photograph, then the photograph with the object; each is worth
            # one frame (the first only if the photograph was not held before).
            arrival_ms = (start + segment.seconds / 2) * 1000
            before = [ms for ms in inside if ms < arrival_ms]
            after = len(inside) - len(before)
            redundant += len(before) - (0 if segment.photo in held or not before else 1)
            redundant += max(after - 1, 0)
            missed += after == 0
            if before:
                held.add(segment.photo)
        elif segment.kind == "hold":
            # A hold shows the whole photograph: one kept frame is worth it, unless an earlier
            # hold of the same photograph already gave one.
            redundant += len(inside) - (0 if segment.photo in held or not inside else 1)
            if inside:
                held.add(segment.photo)
        else:
            motion += len(inside)
        if inside:
            seen.add(segment.photo)
    return Score(len(kept_ms), len(set(PHOTOS + SYNTHETIC) - seen), redundant, motion, missed)


def framesift_kept(
    video: Path,
    threshold: int,
    workdir: Path,
    layout: float | None = None,
    dead_zone: float | None = None,
) -> list[int]:
    """The frames framesift keeps; ``layout`` and ``dead_zone`` replace the defaults (the
    baseline rows: pHash alone, as before colour layouts and the dead zone)."""
    settings = Settings(backend=Backend.EMBEDDED, workdir=workdir, dedup_threshold=threshold)
    if layout is not None:
        settings = settings.model_copy(update={"dedup_layout_threshold": layout})
    default_zone = imagestats.PHASH_DEAD_ZONE
    imagestats.PHASH_DEAD_ZONE = default_zone if dead_zone is None else dead_zone
    try:
        pipeline = EmbeddedPipeline(settings)
        pipeline.run([video], collector="bench")
    finally:
        imagestats.PHASH_DEAD_ZONE = default_zone
    frames = pipeline.adapters.documents.where("frames", "dedup_status", "kept")
    return sorted(int(f["timestamp_ms"]) for f in frames)


def ffmpeg_kept(video: Path, filters: str) -> list[int]:
    result = subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-i",
            str(video),
            "-vf",
            f"{filters},showinfo",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [round(float(t) * 1000) for t in re.findall(r"pts_time:\s*([\d.]+)", result.stderr)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--thresholds", type=int, nargs="+", default=[4, 6, 8, 10, 12, 14, 16, 20])
    parser.add_argument("--baseline-thresholds", type=int, nargs="+", default=[8, 10, 12])
    parser.add_argument("--noise", type=float, default=0.015, help="sensor noise, std of 0..1")
    parser.add_argument("--drift", type=float, default=0.06, help="brightness drift in a hold")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "scenes.mp4"
        timeline = make_video(video, args.noise, args.drift)
        holds = sum(1 for *_, s in timeline if s.kind == "hold")
        arrivals = sum(1 for *_, s in timeline if s.kind == "arrival")
        print(
            f"{len(timeline)} segments ({holds} static holds, {arrivals} with an arriving object),"
            f" {len(PHOTOS)} distinct photographs and {len(SYNTHETIC)} flat or colour-only scenes,"
            f" {int(timeline[-1][1])} s, noise {args.noise}, drift {args.drift};"
            " sampled at 1 frame per second"
        )
        print(
            "| method | kept | scenes lost | arrivals missed | redundant in holds"
            " | kept in motion |"
        )
        print("|---|---|---|---|---|---|")
        rows = [
            (
                f"pHash alone (before) <= {t}",
                framesift_kept(video, t, Path(tmp) / f"b{t}", layout=255, dead_zone=0),
            )
            for t in args.baseline_thresholds
        ]
        rows += [
            (f"framesift pHash <= {t}", framesift_kept(video, t, Path(tmp) / f"t{t}"))
            for t in args.thresholds
        ]
        rows.append(("ffmpeg fps=1,mpdecimate", ffmpeg_kept(video, "fps=1,mpdecimate")))
        rows.append(("ffmpeg scene > 0.3", ffmpeg_kept(video, "select='eq(n,0)+gt(scene,0.3)'")))
        for name, kept in rows:
            s = score(kept, timeline)
            cells = [
                name,
                s.kept,
                s.scenes_lost,
                s.arrivals_missed,
                s.redundant_in_holds,
                s.kept_in_motion,
            ]
            print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)


if __name__ == "__main__":
    main()

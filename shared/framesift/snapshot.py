"""Dataset snapshots of the labeled frames, from the warehouse, in COCO, YOLO or YOLO-OBB layout.

Frames are assigned to train/val/test by their video (a seeded hash of the video id), so frames
of one video never straddle splits and the same seed gives the same split. A snapshot writes the
images it includes (from the frames bucket), the labels, and ``manifest.json``: the query, the
time, the counts per split and a content hash over every file written, so a snapshot can be
reproduced and checked.

Each frame's label is its newest live annotation (the exporter's ``frame_labels`` view); its
regions are stored in fractions of the image, placed here on the frame's pixels:

- **COCO**: a box is a ``bbox`` (a rotated box's axis-aligned envelope; ``area`` the box's
  own); a polygon a ``segmentation`` polygon with its ``bbox`` and area; a keypoint an
  annotation with ``keypoints: [x, y, 2]`` (its category lists the one keypoint); a mask an
  uncompressed RLE ``segmentation`` (decoded from Label Studio's brush RLE) with its ``bbox``.
- **YOLO** (detection): one ``class cx cy w h`` line per box, polygon and mask (their
  envelopes); keypoints have no place in it and are counted in the manifest.
- **YOLO-OBB**: one ``class x1 y1 ... x4 y4`` line per region, a rotated box by its own
  corners, a polygon or mask by its envelope's; keypoints counted, as above.

Images are written as stored, but a photo with an EXIF orientation is written upright (its
regions are in the displayed geometry, and most loaders ignore EXIF).

A frame whose label holds a region no layout can (an ellipse, a line: ``unsupported``), or a
mask that cannot be decoded, is left out rather than half-labeled, and listed in the manifest
with the reason; so is a frame whose labeling task was deleted at the vendor (it has no label).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from framesift.documents import LabelingStatus
from framesift.geometry import Shape, corners, envelope, polygon_area
from framesift.imagestats import upright
from framesift.ports import BlobStore, Warehouse

QUERY = """
SELECT f.id AS frame_id, f.video_doc_id, f.bucket, f.object_name, f.width, f.height,
       f.orientation,
       l.image_width AS label_width, l.image_height AS label_height, l.unsupported,
       b.label, b.shape, b.x, b.y, b.w, b.h, b.rotation, b.points, b.mask_rle
FROM {dataset}.frames AS f
JOIN {dataset}.frame_labels AS l ON l.frame_id = f.id
LEFT JOIN {dataset}.annotation_boxes AS b
  ON b.annotation_id = l.annotation_id AND NOT COALESCE(b.deleted, FALSE) AND b.label IS NOT NULL
WHERE NOT COALESCE(f.deleted, FALSE)
ORDER BY f.id, b.id
"""
# The frames whose labeling task was deleted (formatted with our constant, no input).
TASK_DELETED_QUERY = (
    "SELECT id AS frame_id FROM {dataset}.frames WHERE NOT COALESCE(deleted, FALSE) AND "  # noqa: S608
    f"labeling_status = '{LabelingStatus.TASK_DELETED.value}'"
)
SPLITS = ("train", "val", "test")


class Layout(StrEnum):
    COCO = "coco"
    YOLO = "yolo"
    YOLO_OBB = "yolo-obb"


@dataclass(frozen=True)
class Snapshot:
    out: Path
    counts: dict[str, dict[str, int]]
    content_hash: str
    left_out: dict[str, str]  # frame id: why it is not in the snapshot


def split_of(video_doc_id: str, seed: int, fractions: Sequence[float]) -> str:
    """train, val or test for a whole video, from a seeded hash (stable across runs)."""
    point = int(hashlib.sha256(f"{seed}:{video_doc_id}".encode()).hexdigest()[:8], 16) / 2**32
    edge = 0.0
    for name, fraction in zip(SPLITS, fractions, strict=True):
        edge += fraction
        if point < edge:
            return name
    return SPLITS[-1]


@dataclass(frozen=True)
class Region:
    """A stored region placed on its frame's pixels."""

    label: str
    shape: Shape
    bbox: tuple[float, float, float, float]  # axis-aligned left, top, width, height
    area: float
    outline: list[tuple[float, float]]  # a rotated box's corners; a polygon's vertices
    rle: list[int] | None = None  # a mask: COCO's uncompressed RLE, column-major


def regions_of(frame: dict[str, Any]) -> list[Region]:
    """The frame's regions in its pixels. Raises ValueError for a mask that cannot be decoded."""
    width, height = frame["width"], frame["height"]
    placed = []
    for row in frame["boxes"]:
        shape = Shape(row["shape"] or Shape.BOX)
        if shape is Shape.MASK:
            placed.append(_mask(row, frame))
            continue
        if shape is Shape.BOX:
            left, top, w, h = (
                row["x"] * width,
                row["y"] * height,
                row["w"] * width,
                row["h"] * height,
            )
            outline = corners(left, top, w, h, row["rotation"] or 0.0)
            bbox = envelope(left, top, w, h, row["rotation"] or 0.0)
            placed.append(Region(row["label"], shape, bbox, w * h, outline))
            continue
        flat = json.loads(row["points"]) if isinstance(row["points"], str) else row["points"]
        xs = [v * width for v in flat[0::2]]
        ys = [v * height for v in flat[1::2]]
        outline = list(zip(xs, ys, strict=True))
        bbox = (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
        placed.append(Region(row["label"], shape, bbox, polygon_area(xs, ys), outline))
    return placed


def _mask(row: dict[str, Any], frame: dict[str, Any]) -> Region:
    """Label Studio's brush RLE (an RGBA bitmap of the image it showed) as COCO's RLE on the
    frame, decoded with the SDK's own decoder (imported here: only snapshots need it)."""
    import numpy as np
    from label_studio_sdk.converter.brush import decode_rle
    from PIL import Image

    width, height = row["label_width"] or frame["width"], row["label_height"] or frame["height"]
    rle = json.loads(row["mask_rle"]) if isinstance(row["mask_rle"], str) else row["mask_rle"]
    pixels = np.asarray(decode_rle(rle), dtype=np.uint8)
    if pixels.size != width * height * 4:
        raise ValueError(
            f"a {row['label']!r} mask holds {pixels.size // 4} pixels, not {width} x {height}"
        )
    mask = pixels.reshape(height, width, 4)[:, :, 3] > 0
    if (width, height) != (frame["width"], frame["height"]):
        resized = Image.fromarray(mask).resize(
            (frame["width"], frame["height"]), Image.Resampling.NEAREST
        )
        mask = np.asarray(resized) > 0
    ys, xs = np.nonzero(mask)
    if not len(xs):
        raise ValueError(f"a {row['label']!r} mask is empty")
    bbox = (
        float(xs.min()),
        float(ys.min()),
        float(xs.max() - xs.min() + 1),
        float(ys.max() - ys.min() + 1),
    )
    return Region(row["label"], Shape.MASK, bbox, float(mask.sum()), [], _coco_rle(mask))


def _coco_rle(mask: Any) -> list[int]:
    """COCO's uncompressed RLE: run lengths over the mask read column by column, starting with
    a run of background (0 when the first pixel is set)."""
    import numpy as np

    flat = np.asarray(mask, dtype=np.uint8).flatten(order="F")
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate(([0], edges, [flat.size]))).tolist()
    return ([0] if flat[0] else []) + [int(run) for run in runs]


def write_snapshot(
    warehouse: Warehouse,
    blobs: BlobStore,
    out: Path,
    layout: Layout,
    classes: Sequence[str],
    seed: int = 0,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
) -> Snapshot:
    if abs(sum(fractions) - 1.0) > 1e-9 or len(fractions) != len(SPLITS):
        raise ValueError("the split needs three fractions that sum to 1, e.g. 0.8,0.1,0.1")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty: give a new folder, so no stale file joins it")
    rows = warehouse.query(QUERY)
    frames: dict[str, dict[str, Any]] = {}
    for row in rows:
        frame = frames.setdefault(row["frame_id"], {**row, "boxes": []})
        if row["label"] is not None:  # None: a negative (or an annotation's only row)
            frame["boxes"].append(row)
    left_out = {
        row["frame_id"]: "its labeling task was deleted at the vendor"
        for row in warehouse.query(TASK_DELETED_QUERY)
    }
    placed: dict[str, list[Region]] = {}
    for frame_id, frame in frames.items():
        if frame["unsupported"]:
            left_out[frame_id] = f"regions no layout holds: {frame['unsupported']}"
            continue
        try:
            placed[frame_id] = regions_of(frame)
        except ValueError as exc:
            left_out[frame_id] = str(exc)
    labels = {r.label for regions in placed.values() for r in regions}
    names = list(classes) + sorted(labels - set(classes))
    by_split: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for frame_id, frame in frames.items():
        if frame_id in placed:
            by_split[split_of(frame["video_doc_id"], seed, fractions)].append(frame)

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    not_in_layout: Counter[str] = Counter()
    for split in SPLITS:
        for frame in by_split[split]:
            image = out / "images" / split / f"{frame['frame_id']}.jpg"
            image.parent.mkdir(parents=True, exist_ok=True)
            # A photo's pixels turned as it is shown: its regions are in that geometry (#30).
            stored = blobs.get(frame["bucket"], frame["object_name"])
            image.write_bytes(upright(stored, frame["orientation"]))
            written.append(image)
        if layout is Layout.COCO:
            written.append(_coco(out, split, by_split[split], placed, names))
        else:
            written.extend(
                _yolo_labels(out, split, by_split[split], placed, names, layout, not_in_layout)
            )
    if layout is not Layout.COCO:
        data = out / "data.yaml"
        # No `path:` key: YOLO tools take the folder of data.yaml, and the snapshot stays the
        # same bytes wherever it is written.
        lines = [f"{s}: images/{s}" for s in SPLITS]
        lines += ["names:"] + [f"  {i}: {json.dumps(n)}" for i, n in enumerate(names)]
        data.write_text("\n".join(lines) + "\n")
        written.append(data)

    digest = hashlib.sha256()
    for path in sorted(written):
        digest.update(path.relative_to(out).as_posix().encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    counts = {
        split: {
            "images": len(by_split[split]),
            "boxes": sum(len(placed[f["frame_id"]]) for f in by_split[split]),
            "videos": len({f["video_doc_id"] for f in by_split[split]}),
        }
        for split in SPLITS
    }
    manifest = {
        "format": layout.value,
        "created_at": datetime.now(UTC).isoformat(),
        "query": " ".join(QUERY.split()),
        "seed": seed,
        "fractions": list(fractions),
        "classes": names,
        "counts": counts,
        "left_out": dict(sorted(left_out.items())),  # frame id: why
        "regions_not_in_layout": dict(sorted(not_in_layout.items())),
        "content_sha256": digest.hexdigest(),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return Snapshot(out, counts, digest.hexdigest(), dict(sorted(left_out.items())))


def _coco(
    out: Path,
    split: str,
    frames: list[dict[str, Any]],
    placed: dict[str, list[Region]],
    names: list[str],
) -> Path:
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    with_keypoints: set[str] = set()
    for image_id, frame in enumerate(frames, start=1):
        images.append(
            {
                "id": image_id,
                "file_name": f"images/{split}/{frame['frame_id']}.jpg",
                "width": frame["width"],
                "height": frame["height"],
            }
        )
        for region in placed[frame["frame_id"]]:
            entry: dict[str, Any] = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": names.index(region.label) + 1,
                "bbox": list(region.bbox),
                "area": region.area,
                "iscrowd": 0,
            }
            if region.shape is Shape.POLYGON:
                entry["segmentation"] = [[c for point in region.outline for c in point]]
            elif region.shape is Shape.MASK:
                entry["segmentation"] = {
                    "size": [frame["height"], frame["width"]],
                    "counts": region.rle,
                }
            elif region.shape is Shape.KEYPOINT:
                ((x, y),) = region.outline
                entry.update({"keypoints": [x, y, 2], "num_keypoints": 1})
                with_keypoints.add(region.label)
            annotations.append(entry)
    path = out / "annotations" / f"instances_{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    categories = [
        {
            "id": i + 1,
            "name": name,
            **({"keypoints": [name], "skeleton": []} if name in with_keypoints else {}),
        }
        for i, name in enumerate(names)
    ]
    body = {"images": images, "annotations": annotations, "categories": categories}
    path.write_text(json.dumps(body, indent=1) + "\n")
    return path


def _yolo_labels(
    out: Path,
    split: str,
    frames: list[dict[str, Any]],
    placed: dict[str, list[Region]],
    names: list[str],
    layout: Layout,
    not_in_layout: Counter[str],
) -> list[Path]:
    paths = []
    for frame in frames:
        width, height = frame["width"], frame["height"]
        lines = []
        for region in placed[frame["frame_id"]]:
            if region.shape is Shape.KEYPOINT:
                not_in_layout[str(region.shape)] += 1
                continue
            class_id = names.index(region.label)
            left, top, box_width, box_height = region.bbox
            if layout is Layout.YOLO:
                centre_x = (left + box_width / 2) / width
                centre_y = (top + box_height / 2) / height
                lines.append(
                    f"{class_id} {centre_x:.6f} {centre_y:.6f}"
                    f" {box_width / width:.6f} {box_height / height:.6f}"
                )
                continue
            # YOLO-OBB: four corners, clockwise from the box's own first corner.
            outline = (
                region.outline
                if region.shape is Shape.BOX
                else corners(left, top, box_width, box_height)
            )
            points = " ".join(f"{x / width:.6f} {y / height:.6f}" for x, y in outline)
            lines.append(f"{class_id} {points}")
        path = out / "labels" / split / f"{frame['frame_id']}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths

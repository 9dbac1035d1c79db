"""Dataset snapshots of the labeled frames, from the warehouse, in COCO or YOLO layout.

Frames are assigned to train/val/test by their video (a seeded hash of the video id), so frames
of one video never straddle splits and the same seed gives the same split. A snapshot writes the
images it includes (from the frames bucket), the labels, and ``manifest.json``: the query, the
time, the counts per split and a content hash over every file written, so a snapshot can be
reproduced and checked.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from framesift.geometry import envelope
from framesift.ports import BlobStore, Warehouse

# Every frame with a label (its newest live annotation, the exporter's frame_labels view: boxes,
# or none, a negative, which a dataset needs as much), with the label's boxes in fractions of
# the image, which hold whatever size the vendor showed it at.
QUERY = """
SELECT f.id AS frame_id, f.video_doc_id, f.bucket, f.object_name, f.width, f.height,
       b.label, b.x, b.y, b.w, b.h, b.rotation
FROM {dataset}.frames AS f
JOIN {dataset}.frame_labels AS l ON l.frame_id = f.id
LEFT JOIN {dataset}.annotation_boxes AS b
  ON b.annotation_id = l.annotation_id AND NOT COALESCE(b.deleted, FALSE) AND b.label IS NOT NULL
WHERE NOT COALESCE(f.deleted, FALSE)
ORDER BY f.id, b.id
"""
SPLITS = ("train", "val", "test")


class Layout(StrEnum):
    COCO = "coco"
    YOLO = "yolo"


@dataclass(frozen=True)
class Snapshot:
    out: Path
    counts: dict[str, dict[str, int]]
    content_hash: str


def split_of(video_doc_id: str, seed: int, fractions: Sequence[float]) -> str:
    """train, val or test for a whole video, from a seeded hash (stable across runs)."""
    point = int(hashlib.sha256(f"{seed}:{video_doc_id}".encode()).hexdigest()[:8], 16) / 2**32
    edge = 0.0
    for name, fraction in zip(SPLITS, fractions, strict=True):
        edge += fraction
        if point < edge:
            return name
    return SPLITS[-1]


def in_pixels(box: dict[str, Any], frame: dict[str, Any]) -> tuple[float, float, float, float]:
    """The box's axis-aligned envelope (COCO's bbox; the box itself unless rotated) in the
    frame's pixels."""
    width, height = frame["width"], frame["height"]
    return envelope(
        box["x"] * width, box["y"] * height, box["w"] * width, box["h"] * height, box["rotation"]
    )


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
    labels = {r["label"] for r in rows if r["label"] is not None}
    names = list(classes) + sorted(labels - set(classes))
    by_split: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for frame in frames.values():
        by_split[split_of(frame["video_doc_id"], seed, fractions)].append(frame)

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for split in SPLITS:
        for frame in by_split[split]:
            image = out / "images" / split / f"{frame['frame_id']}.jpg"
            image.parent.mkdir(parents=True, exist_ok=True)
            image.write_bytes(blobs.get(frame["bucket"], frame["object_name"]))
            written.append(image)
        if layout is Layout.COCO:
            written.append(_coco(out, split, by_split[split], names))
        else:
            written.extend(_yolo_labels(out, split, by_split[split], names))
    if layout is Layout.YOLO:
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
            "boxes": sum(len(f["boxes"]) for f in by_split[split]),
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
        "content_sha256": digest.hexdigest(),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return Snapshot(out, counts, digest.hexdigest())


def _coco(out: Path, split: str, frames: list[dict[str, Any]], names: list[str]) -> Path:
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, frame in enumerate(frames, start=1):
        images.append(
            {
                "id": image_id,
                "file_name": f"images/{split}/{frame['frame_id']}.jpg",
                "width": frame["width"],
                "height": frame["height"],
            }
        )
        for box in frame["boxes"]:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": names.index(box["label"]) + 1,
                    # A rotated box's envelope: COCO's bbox is axis-aligned.
                    "bbox": list(in_pixels(box, frame)),
                    # The object's own area.
                    "area": box["w"] * frame["width"] * box["h"] * frame["height"],
                    "iscrowd": 0,
                }
            )
    path = out / "annotations" / f"instances_{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(names)]
    body = {"images": images, "annotations": annotations, "categories": categories}
    path.write_text(json.dumps(body, indent=1) + "\n")
    return path


def _yolo_labels(
    out: Path, split: str, frames: list[dict[str, Any]], names: list[str]
) -> list[Path]:
    paths = []
    for frame in frames:
        width, height = frame["width"], frame["height"]
        lines = []
        for box in frame["boxes"]:
            left, top, box_width, box_height = in_pixels(box, frame)
            centre_x = (left + box_width / 2) / width
            centre_y = (top + box_height / 2) / height
            lines.append(
                f"{names.index(box['label'])} {centre_x:.6f} {centre_y:.6f}"
                f" {box_width / width:.6f} {box_height / height:.6f}"
            )
        path = out / "labels" / split / f"{frame['frame_id']}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths

"""framesift export: COCO and YOLO snapshots from the warehouse, split by video, reproducible."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from framesift import bootstrap
from framesift.cli import app
from framesift.documents import AnnotationStatus, Box
from framesift.embedded import EmbeddedPipeline
from framesift.snapshot import SPLITS, split_of
from tests.support.labels import annotate


def _annotate(documents, frame: dict, status: AnnotationStatus, boxes: list[Box]) -> None:
    annotate(documents, frame["id"], boxes, status)


@pytest.fixture
def labeled(media, embedded_settings):
    """Two videos through the embedded pipeline, every kept frame labeled with two boxes."""
    pipeline = EmbeddedPipeline(embedded_settings)
    pipeline.run([media["three_shots"], media["clip_5s_25fps"]], "cam")
    documents = pipeline.adapters.documents
    kept = [
        frame
        for result in pipeline.summary.results
        for frame in documents.where("frames", "video_doc_id", result.video_doc_id)
        if frame.get("dedup_status") == "kept"
    ]
    for frame in kept:
        _annotate(
            documents,
            frame,
            AnnotationStatus.SUBMITTED,
            [
                Box(label="car", left=10, top=20, width=40, height=30),
                Box(label="bicycle", left=0, top=0, width=frame["width"], height=frame["height"]),
            ],
        )
    bootstrap.exporter(pipeline.adapters, embedded_settings).run()
    return embedded_settings, kept


def _export(settings, out, layout, seed="7"):
    env = {"FRAMESIFT_BACKEND": "embedded", "FRAMESIFT_WORKDIR": str(settings.workdir)}
    args = ["export", "--format", layout, "--out", str(out), "--seed", seed]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return json.loads((out / "manifest.json").read_text())


def test_coco_snapshot_is_valid_and_split_by_video(labeled, tmp_path):
    settings, kept = labeled
    manifest = _export(settings, tmp_path / "coco", "coco")

    images, splits_of_video = [], {}
    for split in SPLITS:
        coco = json.loads(
            (tmp_path / "coco" / "annotations" / f"instances_{split}.json").read_text()
        )
        categories = {c["id"]: c["name"] for c in coco["categories"]}
        assert list(categories.values()) == settings.labeling_classes  # in configured order
        ids = {image["id"] for image in coco["images"]}
        for image in coco["images"]:
            assert (tmp_path / "coco" / image["file_name"]).stat().st_size > 0
            images.append(image["file_name"])
        for annotation in coco["annotations"]:
            assert annotation["image_id"] in ids
            assert annotation["category_id"] in categories
            left, top, w, h = annotation["bbox"]
            assert left >= 0 and top >= 0 and w > 0 and h > 0 and annotation["area"] == w * h
        assert len(coco["annotations"]) == 2 * len(coco["images"])
        assert manifest["counts"][split]["images"] == len(coco["images"])
    assert len(images) == len(kept)
    for frame in kept:
        split = split_of(frame["video_doc_id"], 7, (0.8, 0.1, 0.1))
        assert splits_of_video.setdefault(frame["video_doc_id"], split) == split
        assert f"images/{split}/{frame['id']}.jpg" in images


def test_yolo_snapshot_has_normalised_labels_and_is_reproducible(labeled, tmp_path):
    settings, kept = labeled
    first = _export(settings, tmp_path / "a", "yolo")
    second = _export(settings, tmp_path / "b", "yolo")
    other_seed = _export(settings, tmp_path / "c", "yolo", seed="8")

    assert first["content_sha256"] == second["content_sha256"]
    assert first["counts"] == second["counts"]
    assert other_seed["seed"] == 8
    labels = list((tmp_path / "a" / "labels").rglob("*.txt"))
    assert len(labels) == len(kept)
    for path in labels:
        rows = [line.split() for line in path.read_text().splitlines()]
        assert len(rows) == 2
        for class_id, *box in rows:
            assert 0 <= int(class_id) < len(first["classes"])
            assert all(0.0 <= float(value) <= 1.0 for value in box)
        whole = next(r for r in rows if first["classes"][int(r[0])] == "bicycle")
        assert [float(v) for v in whole[1:]] == [0.5, 0.5, 1.0, 1.0]  # the whole image
        image = tmp_path / "a" / "images" / path.parent.name / f"{path.stem}.jpg"
        assert image.exists()
    data = (tmp_path / "a" / "data.yaml").read_text()
    assert "train: images/train" in data and '"bicycle"' in data


def test_a_frame_labeled_empty_is_a_negative_in_both_layouts(media, embedded_settings, tmp_path):
    """A frame an annotator saw and found nothing in is kept: a COCO image with no annotation
    and an empty YOLO label file; a skipped one is left out."""
    pipeline = EmbeddedPipeline(embedded_settings)
    pipeline.run([media["three_shots"]], "cam")
    documents = pipeline.adapters.documents
    kept = sorted(
        (f for f in documents.where("frames", "collector", "cam") if f["dedup_status"] == "kept"),
        key=lambda f: f["id"],
    )
    negative, skipped = kept[0], kept[1]
    for frame, status in (
        (negative, AnnotationStatus.EMPTY),
        (skipped, AnnotationStatus.CANCELLED),
    ):
        drawn = [Box(label="car", left=1, top=1, width=5, height=5)]
        _annotate(documents, frame, status, drawn if status is AnnotationStatus.CANCELLED else [])
    bootstrap.exporter(pipeline.adapters, embedded_settings).run()

    coco = _export(embedded_settings, tmp_path / "coco", "coco")
    yolo = _export(embedded_settings, tmp_path / "yolo", "yolo")
    assert sum(split["images"] for split in coco["counts"].values()) == 1
    assert sum(split["boxes"] for split in coco["counts"].values()) == 0
    [instances] = [
        json.loads(p.read_text())
        for p in (tmp_path / "coco" / "annotations").glob("*.json")
        if json.loads(p.read_text())["images"]
    ]
    assert [image["file_name"].rsplit("/", 1)[1] for image in instances["images"]] == [
        f"{negative['id']}.jpg"
    ]
    assert instances["annotations"] == []
    [labels] = (tmp_path / "yolo" / "labels").rglob("*.txt")
    assert labels.name == f"{negative['id']}.txt" and labels.read_text().strip() == ""
    assert sum(split["images"] for split in yolo["counts"].values()) == 1


def test_every_shape_in_each_layout_and_unsupported_frames_left_out(
    media, embedded_settings, tmp_path
):
    """A polygon, a keypoint, a brush mask and a rotated box on one frame, in COCO, YOLO and
    YOLO-OBB, against values worked out here; a frame with an ellipse is left out, and said."""
    import numpy as np
    from label_studio_sdk.converter.brush import mask2rle

    pipeline = EmbeddedPipeline(embedded_settings)
    pipeline.run([media["three_shots"]], "cam")
    documents = pipeline.adapters.documents
    shaped, odd = sorted(
        (f for f in documents.where("frames", "collector", "cam") if f["dedup_status"] == "kept"),
        key=lambda f: f["id"],
    )[:2]
    width, height = shaped["width"], shaped["height"]
    drawn = np.zeros((height, width), dtype=np.uint8)
    drawn[10:30, 40:100] = 255  # rows 10..29, columns 40..99
    annotate(
        documents,
        shaped["id"],
        [
            Box(label="car", shape="polygon", points=[10, 10, 50, 10, 30, 40]),
            Box(label="person", shape="keypoint", points=[20, 30]),
            Box(label="truck", shape="mask", rle=mask2rle(drawn)),
            Box(label="bicycle", left=100, top=100, width=40, height=20, rotation=90),
        ],
    )
    annotate(documents, odd["id"], [Box(label="car", left=1, top=1, width=5, height=5)])
    # As a callback with an ellipse beside its box stores it.
    documents.merge("annotations", f"scale~task-{odd['id']}", {"unsupported": ["ellipse e1"]})
    bootstrap.exporter(pipeline.adapters, embedded_settings).run()

    coco = _export(embedded_settings, tmp_path / "coco", "coco", seed="1")
    assert coco["left_out"] == {odd["id"]: "regions no layout holds: ellipse e1"}
    [instances] = [
        json.loads(p.read_text())
        for p in (tmp_path / "coco" / "annotations").glob("*.json")
        if json.loads(p.read_text())["images"]
    ]
    names = {c["id"]: c for c in instances["categories"]}
    by_label = {names[a["category_id"]]["name"]: a for a in instances["annotations"]}
    polygon = by_label["car"]
    assert polygon["segmentation"] == [pytest.approx([10, 10, 50, 10, 30, 40])]
    assert polygon["bbox"] == pytest.approx([10, 10, 40, 30]) and polygon["area"] == 600
    keypoint = by_label["person"]
    assert keypoint["keypoints"] == pytest.approx([20, 30, 2]) and keypoint["num_keypoints"] == 1
    assert names[keypoint["category_id"]]["keypoints"] == ["person"]
    mask = by_label["truck"]
    assert mask["bbox"] == [40, 10, 60, 20] and mask["area"] == 1200
    assert mask["segmentation"]["size"] == [height, width]
    decoded = np.repeat(
        np.tile([0, 1], len(mask["segmentation"]["counts"]))[: len(mask["segmentation"]["counts"])],
        mask["segmentation"]["counts"],
    ).reshape((height, width), order="F")
    assert np.array_equal(decoded, drawn > 0)
    rotated = by_label["bicycle"]
    assert rotated["bbox"] == pytest.approx([80, 100, 20, 40]) and rotated["area"] == 800

    yolo = _export(embedded_settings, tmp_path / "yolo", "yolo", seed="1")
    obb = _export(embedded_settings, tmp_path / "obb", "yolo-obb", seed="1")
    assert yolo["regions_not_in_layout"] == obb["regions_not_in_layout"] == {"keypoint": 1}
    rows = _label_rows(tmp_path / "yolo", shaped["id"], yolo["classes"])
    assert [float(v) for v in rows["truck"]] == pytest.approx(
        [70 / width, 20 / height, 60 / width, 20 / height], abs=1e-6
    )
    rows = _label_rows(tmp_path / "obb", shaped["id"], obb["classes"])
    # The quarter-turned box by its own corners, clockwise from its top-left.
    assert [float(v) for v in rows["bicycle"]] == pytest.approx(
        [
            100 / width,
            100 / height,
            100 / width,
            140 / height,
            80 / width,
            140 / height,
            80 / width,
            100 / height,
        ],
        abs=1e-6,
    )
    assert not list((tmp_path / "yolo" / "labels").rglob(f"{odd['id']}.txt"))


def _label_rows(snapshot, frame_id: str, classes: list[str]) -> dict[str, list[str]]:
    """A YOLO label file's rows by class name: the numbers after the class id."""
    [path] = (snapshot / "labels").rglob(f"{frame_id}.txt")
    return {classes[int(r.split()[0])]: r.split()[1:] for r in path.read_text().split("\n") if r}

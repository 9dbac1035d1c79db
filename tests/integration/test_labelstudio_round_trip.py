"""The whole vendor round trip against a real Label Studio, embedded, as a user runs it
(``framesift run --vendor labelstudio``): frames served to Label Studio, annotations created,
updated, skipped and deleted by its API as annotators' would be, its webhooks into the store,
one update and one deletion while the webhook is down recovered by ``framesift reconcile``,
then framesift's COCO and YOLO snapshots compared numerically with Label Studio's own exports
of the same project, whose images Label Studio fetched from framesift's server.

Differences by design (docs/architecture.md, "Which label counts"): Label Studio exports every
annotator's annotation of a task as an image entry of its own; framesift exports one label per
frame, the newest live annotation (the others stay in the warehouse).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile

import pytest

from framesift import bootstrap
from framesift.config import section
from framesift.ingest import reconcile
from framesift.serve import LocalServer
from framesift.snapshot import Layout, write_snapshot
from framesift.vendors.labelstudio import LabelStudioConfig, LabelStudioVendor
from tests.support.labels import ls_box, start_served_pipeline
from tests.support.waiting import wait_for

pytestmark = pytest.mark.labelstudio
CLASSES = ["car", "person"]


def _pixel_envelope(x, y, w, h, degrees, width, height) -> tuple[float, float, float, float]:
    """The axis-aligned envelope of Label Studio's rotated rectangle as its editor draws it:
    percent values scaled to pixels, turned clockwise about the top-left corner."""
    left, top, w_px, h_px = x * width / 100, y * height / 100, w * width / 100, h * height / 100
    cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    xs = [left + dx * cos - dy * sin for dx, dy in ((0, 0), (w_px, 0), (w_px, h_px), (0, h_px))]
    ys = [top + dx * sin + dy * cos for dx, dy in ((0, 0), (w_px, 0), (w_px, h_px), (0, h_px))]
    return pytest.approx((min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)), abs=1e-9)


def _export_zip(vendor: LabelStudioVendor, export_type: str) -> zipfile.ZipFile:
    """Label Studio's own export, with the images it downloads itself (download_resources)."""
    chunks = vendor.client.projects.exports.download_sync(
        id=vendor.project_id(), export_type=export_type, download_resources=True
    )
    return zipfile.ZipFile(io.BytesIO(b"".join(chunks)))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def session(media, embedded_settings, labelstudio, unique):
    served, pipeline, server = start_served_pipeline(
        media, embedded_settings, labelstudio, f"round-trip-{unique}"
    )
    servers = [server]
    yield served, pipeline, servers
    servers[-1].stop()


def test_label_studio_round_trip_matches_its_own_exports(session, tmp_path):
    settings, pipeline, servers = session
    server = servers[0]
    documents = pipeline.adapters.documents
    vendor = LabelStudioVendor(documents, section(LabelStudioConfig, settings))
    tasks = sorted(
        vendor.client.tasks.list(project=vendor.project_id(), fields="all"),
        key=lambda t: t.data["frame_id"],
    )
    assert len(tasks) >= 4
    frames = {t.data["frame_id"]: documents.get("frames", t.data["frame_id"]) for t in tasks}
    for task in tasks:
        assert task.data["image"].startswith(server.url + "/frames/")
    a, b, c, d = tasks[:4]

    def annotate(task, result, cancelled=False):
        return vendor.client.annotations.create(
            id=task.id, result=result, was_cancelled=cancelled, ground_truth=False
        )

    def stored(annotation_id):
        return documents.get("annotations", f"labelstudio~{annotation_id}")

    # A: two annotators; the second's (newer) is the frame's label.
    a1 = annotate(a, [ls_box("car", 10, 20, 30, 25, a), ls_box("person", 55, 10, 20, 40, a, 20)])
    a2 = annotate(a, [ls_box("car", 12.5, 21, 29, 24.5, a)])
    # B: looked at, nothing there: a negative.
    b1 = annotate(b, [])
    # C: drawn, then corrected while the webhook is down.
    c1 = annotate(c, [ls_box("person", 40, 30, 10, 50, c)])
    # D: skipped by one annotator; another's box is deleted while the webhook is down.
    annotate(d, [], cancelled=True)
    d2 = annotate(d, [ls_box("car", 5, 5, 10, 10, d)])
    wait_for(lambda: all(stored(x.id) for x in (a1, a2, b1, c1, d2)), "Label Studio's webhooks")
    assert documents.get("frames", d.data["frame_id"])["labeling_status"] == "labeled"

    server.stop()  # the webhook is down: Label Studio posts once and never retries
    vendor.client.annotations.update(id=c1.id, result=[ls_box("car", 41, 31, 12, 48, c, 15)])
    vendor.client.annotations.delete(id=d2.id)
    assert stored(c1.id)["boxes"][0]["label"] == "person"
    assert stored(d2.id)["status"] == "submitted"

    result = reconcile(settings, documents)
    again = reconcile(settings, documents)
    # The server back on its address: Label Studio fetches the frames from it for its exports.
    port = int(server.url.rsplit(":", 1)[1])
    servers.append(LocalServer(settings, pipeline.adapters, "127.0.0.1", port).start())

    assert (result.stored, result.deleted, result.refused) == (1, 1, [])
    assert (again.stored, again.deleted, again.refused) == (0, 0, [])
    assert stored(c1.id)["boxes"][0]["label"] == "car"
    assert stored(d2.id)["status"] == "deleted"
    statuses = {t.data["frame_id"]: documents.get("frames", t.data["frame_id"]) for t in tasks}
    assert statuses[a.data["frame_id"]]["labeling_status"] == "labeled"
    assert statuses[d.data["frame_id"]]["labeling_status"] == "labeling_cancelled"

    bootstrap.exporter(pipeline.adapters, settings).run()
    ours = {}
    for layout in Layout:
        write_snapshot(
            pipeline.adapters.warehouse,
            pipeline.adapters.blobs,
            tmp_path / layout.value,
            layout,
            CLASSES,
            fractions=(1.0, 0.0, 0.0),
        )
    coco = json.loads((tmp_path / "coco" / "annotations" / "instances_train.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    for image in coco["images"]:
        frame_id = image["file_name"].rsplit("/", 1)[1].removesuffix(".jpg")
        boxes = sorted(
            (names[x["category_id"]], *x["bbox"])
            for x in coco["annotations"]
            if x["image_id"] == image["id"]
        )
        ours[frames[frame_id]["sha256"]] = (frame_id, image["width"], image["height"], boxes)
    labeled = {a.data["frame_id"], b.data["frame_id"], c.data["frame_id"]}
    assert {frame_id for frame_id, *_ in ours.values()} == labeled

    # Label Studio's COCO: its images are what it fetched from our server, byte for byte.
    theirs_zip = _export_zip(vendor, "COCO_WITH_IMAGES")
    theirs = json.loads(theirs_zip.read("result.json"))
    their_names = {c["id"]: c["name"] for c in theirs["categories"]}
    first_entry = {}
    for image in theirs["images"]:  # newest annotation first, as Label Studio sorts them
        digest = _sha256(theirs_zip.read(image["file_name"]))
        assert digest in ours, f"Label Studio's {image['file_name']} is no frame we served"
        boxes = sorted(
            (their_names[x["category_id"]], *x["bbox"])
            for x in theirs["annotations"]
            if x["image_id"] == image["id"]
        )
        first_entry.setdefault(digest, (image["width"], image["height"], boxes))
    assert set(first_entry) == set(ours)
    for digest, (frame_id, width, height, boxes) in ours.items():
        their_width, their_height, their_boxes = first_entry[digest]
        assert (width, height) == (their_width, their_height), frame_id
        assert [b[0] for b in boxes] == [b[0] for b in their_boxes], frame_id
        if frame_id == c.data["frame_id"]:
            # Rotated: Label Studio's converter turns the box in percent coordinates, which
            # shears it on a non-square image; its editor turns it in pixels, about the
            # top-left corner, and so does framesift (a difference by design).
            [(label, *bbox)] = boxes
            assert label == "car"
            assert bbox == _pixel_envelope(41, 31, 12, 48, 15, width, height)
            assert their_boxes[0][1:] != pytest.approx(boxes[0][1:], abs=1)
            continue
        for mine, its in zip(boxes, their_boxes, strict=True):
            assert mine[1:] == pytest.approx(its[1:], abs=1e-6), frame_id
    # The difference by design: Label Studio also exports A's older annotation.
    assert len(theirs["images"]) == len(ours) + 1

    # YOLO: the same boxes, normalised, by class name. Label Studio writes one label file per
    # image, each of a task's annotations over the last, so A's is its oldest annotation's.
    yolo_zip = _export_zip(vendor, "YOLO_WITH_IMAGES")
    their_classes = yolo_zip.read("classes.txt").decode().split()
    our_classes = CLASSES
    for digest, (frame_id, *_rest) in ours.items():
        oldest_wins = frame_id == a.data["frame_id"]
        [image_name] = [
            n
            for n in yolo_zip.namelist()
            if n.startswith("images/") and _sha256(yolo_zip.read(n)) == digest
        ]
        label_name = "labels/" + image_name.removeprefix("images/").rsplit(".", 1)[0] + ".txt"
        their_rows = sorted(
            (their_classes[int(row[0])], *map(float, row[1:]))
            for row in (line.split() for line in yolo_zip.read(label_name).decode().splitlines())
            if row
        )
        our_rows = sorted(
            (our_classes[int(row[0])], *map(float, row[1:]))
            for row in (
                line.split()
                for line in (tmp_path / "yolo" / "labels" / "train" / f"{frame_id}.txt")
                .read_text()
                .splitlines()
            )
            if row
        )
        if frame_id == c.data["frame_id"]:
            continue  # rotated, as above
        if oldest_wins:
            assert [r[0] for r in their_rows] == ["car", "person"]  # a1's boxes
            assert [r[0] for r in our_rows] == ["car"]  # a2's, the newest
            continue
        assert [r[0] for r in our_rows] == [r[0] for r in their_rows], frame_id
        for mine, its in zip(our_rows, their_rows, strict=True):
            assert mine[1:] == pytest.approx(its[1:], abs=1e-6), frame_id


def test_every_shape_round_trips_through_label_studio(
    media, embedded_settings, labelstudio, unique, tmp_path
):
    """A box, a polygon, a keypoint and a brush mask drawn in Label Studio come back through its
    webhook and leave in framesift's COCO as Label Studio's own COCO has them (keypoints to its
    whole-pixel rounding; it leaves brush masks out, framesift writes them as RLE)."""
    import numpy as np
    from label_studio_sdk.converter.brush import mask2rle

    settings, pipeline, server = start_served_pipeline(
        media,
        embedded_settings,
        labelstudio,
        f"shapes-{unique}",
        labeling_shapes=["box", "polygon", "keypoint", "mask"],
    )
    try:
        documents = pipeline.adapters.documents
        vendor = LabelStudioVendor(documents, section(LabelStudioConfig, settings))
        task = min(
            vendor.client.tasks.list(project=vendor.project_id(), fields="all"),
            key=lambda t: t.data["frame_id"],
        )
        width, height = task.data["width"], task.data["height"]
        drawn = np.zeros((height, width), dtype=np.uint8)
        drawn[20:60, 30:90] = 255

        def region(kind, value, name):
            return {
                "id": f"{kind}-1",
                "type": kind,
                "from_name": name,
                "to_name": "image",
                "original_width": width,
                "original_height": height,
                "image_rotation": 0,
                "value": value,
            }

        created = vendor.client.annotations.create(
            id=task.id,
            result=[
                ls_box("car", 10, 20, 30, 25, task),
                region(
                    "polygonlabels",
                    {"points": [[50, 10], [90, 15], [70, 60]], "polygonlabels": ["person"]},
                    "polygon",
                ),
                region(
                    "keypointlabels",
                    {"x": 33.3, "y": 44.4, "width": 1, "keypointlabels": ["car"]},
                    "keypoint",
                ),
                region(
                    "brushlabels",
                    {"format": "rle", "rle": mask2rle(drawn), "brushlabels": ["person"]},
                    "brush",
                ),
            ],
            was_cancelled=False,
            ground_truth=False,
        )
        stored = wait_for(
            lambda: documents.get("annotations", f"labelstudio~{created.id}"), "the webhook"
        )
        assert [b["shape"] for b in stored["boxes"]] == ["box", "polygon", "keypoint", "mask"]

        bootstrap.exporter(pipeline.adapters, settings).run()
        write_snapshot(
            pipeline.adapters.warehouse,
            pipeline.adapters.blobs,
            tmp_path / "coco",
            Layout.COCO,
            CLASSES,
            fractions=(1.0, 0.0, 0.0),
        )
        ours = json.loads((tmp_path / "coco" / "annotations" / "instances_train.json").read_text())
        theirs_zip = _export_zip(vendor, "COCO_WITH_IMAGES")
        theirs = json.loads(theirs_zip.read("result.json"))
    finally:
        server.stop()

    ours_names = {c["id"]: c["name"] for c in ours["categories"]}
    mine = {ours_names[a["category_id"]] + ":" + _kind(a): a for a in ours["annotations"]}
    assert set(mine) == {"car:box", "person:polygon", "car:keypoint", "person:mask"}
    # A project with keypoints makes Label Studio file every class under one "default"
    # category (with the classes as its keypoint names): its regions are matched by kind.
    its = {_kind(a): a for a in theirs["annotations"]}
    assert set(its) == {"box", "polygon", "keypoint"}
    assert mine["car:box"]["bbox"] == pytest.approx(its["box"]["bbox"], abs=1e-6)
    polygon = mine["person:polygon"]
    assert polygon["segmentation"][0] == pytest.approx(its["polygon"]["segmentation"][0], abs=1e-6)
    assert polygon["bbox"] == pytest.approx(its["polygon"]["bbox"], abs=1e-6)
    assert polygon["area"] == pytest.approx(its["polygon"]["area"], abs=1e-6)
    # Label Studio rounds keypoints to whole pixels, in the slot of their class (car: 0).
    x, y, visible = mine["car:keypoint"]["keypoints"]
    assert (round(x), round(y), visible) == tuple(its["keypoint"]["keypoints"][:3])
    assert (x, y) == pytest.approx((0.333 * width, 0.444 * height))
    # The brush mask: only framesift's export has it, pixel for pixel.
    assert "person:mask" not in its
    counts = mine["person:mask"]["segmentation"]["counts"]
    decoded = np.repeat(np.tile([0, 1], len(counts))[: len(counts)], counts)
    assert np.array_equal(decoded.reshape((height, width), order="F"), drawn > 0)


def _kind(annotation: dict) -> str:
    if "keypoints" in annotation:
        return "keypoint"
    segmentation = annotation.get("segmentation")
    if isinstance(segmentation, dict):
        return "mask"
    return "polygon" if segmentation else "box"

"""A portrait phone video labeled through a real Label Studio (#30): the iPhone MOV of
tests/support/footage.py (coded 320x240, a display matrix turning it 90° clockwise) sampled
embedded with Label Studio as the vendor, behind a local server, as ``framesift run --vendor
labelstudio`` runs it. An annotator boxes the red mark, shown top-right of the 240x320 picture
Label Studio displays; framesift's stored annotation and COCO export must place that box where
Label Studio's own COCO export of the same task does, on the image Label Studio fetched.

Label Studio's regions are in percent of the image its editor displays, with that image's
natural size as ``original_width``/``original_height``
(https://labelstud.io/guide/export#Units-of-image-annotations): for a portrait frame, 240x320.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest
from PIL import Image

from framesift import bootstrap
from framesift.config import section
from framesift.snapshot import Layout, write_snapshot
from framesift.vendors.labelstudio import LabelStudioConfig, LabelStudioVendor
from tests.support import footage as fs
from tests.support.labels import ls_box, serve_and_run
from tests.support.waiting import wait_for

pytestmark = pytest.mark.labelstudio
DISPLAYED = (240, 320)  # the portrait frame as shown: the coded 320x240 turned 90°
# The annotator's box, in percent of the displayed image: inside the red mark, which covers
# x 75-100 % and y 0-25 % (pixels 180-240 x 0-80). Not square, so a swap of the sides shows.
BOX_PERCENT = (77.5, 2.5, 20.0, 20.0)
BOX_PIXELS = (186.0, 8.0, 48.0, 64.0)  # the same box in pixels of the displayed 240x320 image


@pytest.fixture
def portrait_session(embedded_settings, labelstudio, unique, tmp_path_factory):
    """The portrait video sampled embedded into a Label Studio project of its own, served."""
    video = fs.portrait(tmp_path_factory.mktemp("portrait"), 90)
    served, pipeline, server = serve_and_run(
        [video.path], "phone", embedded_settings, labelstudio, f"portrait-{unique}"
    )
    try:
        yield served, pipeline
    finally:
        server.stop()


def _coco_boxes(coco: dict, image: dict) -> list[tuple]:
    names = {c["id"]: c["name"] for c in coco["categories"]}
    return [
        (names[a["category_id"]], *a["bbox"])
        for a in coco["annotations"]
        if a["image_id"] == image["id"]
    ]


def test_a_box_on_a_portrait_frame_exports_as_label_studios_own_coco(portrait_session, tmp_path):
    settings, pipeline = portrait_session
    documents = pipeline.adapters.documents
    vendor = LabelStudioVendor(documents, section(LabelStudioConfig, settings))
    task = min(
        vendor.client.tasks.list(project=vendor.project_id(), fields="all"),
        key=lambda t: t.data["frame_id"],
    )
    frame = documents.get("frames", task.data["frame_id"])
    assert (task.data["width"], task.data["height"]) == DISPLAYED
    assert (frame["width"], frame["height"]) == DISPLAYED

    # What Label Studio's editor submits: percent of the displayed image, its natural size.
    created = vendor.client.annotations.create(
        id=task.id, result=[ls_box("car", *BOX_PERCENT, task)], was_cancelled=False
    )
    stored = wait_for(
        lambda: documents.get("annotations", f"labelstudio~{created.id}"), "the webhook"
    )
    [box] = stored["boxes"]
    assert (stored["image_width"], stored["image_height"]) == DISPLAYED
    assert [box[k] for k in "xywh"] == pytest.approx([p / 100 for p in BOX_PERCENT], abs=1e-12)

    bootstrap.exporter(pipeline.adapters, settings).run()
    write_snapshot(
        pipeline.adapters.warehouse,
        pipeline.adapters.blobs,
        tmp_path / "coco",
        Layout.COCO,
        ["car", "person"],
        fractions=(1.0, 0.0, 0.0),
    )
    ours = json.loads((tmp_path / "coco" / "annotations" / "instances_train.json").read_text())
    [our_image] = ours["images"]
    our_jpeg = (tmp_path / "coco" / our_image["file_name"]).read_bytes()

    # Label Studio's own COCO, with the image it fetched from framesift's server.
    chunks = vendor.client.projects.exports.download_sync(
        id=vendor.project_id(), export_type="COCO_WITH_IMAGES", download_resources=True
    )
    theirs_zip = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    theirs = json.loads(theirs_zip.read("result.json"))
    [their_image] = theirs["images"]
    their_jpeg = theirs_zip.read(their_image["file_name"])
    assert hashlib.sha256(their_jpeg).digest() == hashlib.sha256(our_jpeg).digest()
    assert Image.open(io.BytesIO(our_jpeg)).size == DISPLAYED

    assert (our_image["width"], our_image["height"]) == DISPLAYED
    assert (their_image["width"], their_image["height"]) == DISPLAYED
    [(label, *bbox)] = _coco_boxes(ours, our_image)
    [(their_label, *their_bbox)] = _coco_boxes(theirs, their_image)
    assert label == their_label == "car"
    assert bbox == pytest.approx(their_bbox, rel=1e-6, abs=0.01)
    assert bbox == pytest.approx(BOX_PIXELS, rel=1e-6, abs=0.01)
    # The stored fractions, in the displayed pixels, are Label Studio's box too.
    width, height = DISPLAYED
    placed = [box["x"] * width, box["y"] * height, box["w"] * width, box["h"] * height]
    assert placed == pytest.approx(their_bbox, rel=1e-6, abs=0.01)
    # And the box is on the mark in the image both exported.
    left, top, w, h = bbox
    inside = Image.open(io.BytesIO(our_jpeg)).crop((left + 4, top + 4, left + w - 4, top + h - 4))
    assert set(fs.mark_corners(inside).values()) == {"red"}

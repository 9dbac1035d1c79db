"""The detector: ONNX models built here with known outputs, run by onnxruntime through the
adapter, decoded, suppressed and mapped back to the frame's pixels exactly."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from framesift.adapters.onnx import OnnxDetector, class_names, load_detector
from framesift.config import Settings
from framesift.detection import UNCERTAINTY, Letterbox, model_input, nms, output_format
from framesift.errors import InvalidModel
from framesift.modelspec import OutputFormat, Uncertainty
from framesift_dev.onnxmodels import fixed_nms, fixed_yolo

CLASSES = ["car", "person"]


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(out, "JPEG")
    return out.getvalue()


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(out, "PNG")
    return out.getvalue()


def yolo_rows(*anchors: tuple[float, float, float, float, float, float]) -> np.ndarray:
    """Anchors (cx, cy, w, h, car score, person score) as the head's columns."""
    return np.array(anchors, dtype=np.float64).T


def detector(path, **settings) -> OnnxDetector:
    return load_detector(Settings(model_uri=str(path), **settings), blobs=None)  # type: ignore[arg-type]


def test_a_yolo_head_is_decoded_suppressed_per_class_and_mapped_to_the_frame(tmp_path):
    rows = yolo_rows(
        (320, 320, 100, 80, 0.90, 0.10),  # a car
        (322, 321, 100, 80, 0.80, 0.05),  # the same car again: suppressed (IoU ~0.95)
        (320, 320, 100, 80, 0.05, 0.60),  # a person on the car: another class, kept
        (100, 200, 50, 100, 0.20, 0.24),  # below the confidence floor
    )
    found = detector(fixed_yolo(tmp_path / "m.onnx", rows, CLASSES)).detect(jpeg(320, 240))
    # 320x240 in 640x640: scale 2, 80 px of grey above and below.
    assert [(d.class_index, round(d.score, 2)) for d in found] == [(0, 0.9), (1, 0.6)]
    car = found[0]
    assert (car.left, car.top, car.width, car.height) == pytest.approx((135, 100, 50, 40))


def test_boxes_are_clipped_to_the_frame_and_a_png_is_read_too(tmp_path):
    rows = yolo_rows((20, 100, 100, 40, 0.9, 0.0))  # reaches 30 px left of the input
    found = detector(fixed_yolo(tmp_path / "m.onnx", rows, CLASSES)).detect(png(640, 480))
    # 640x480: scale 1, 80 px above; x1 = -30 clipped to 0.
    assert (found[0].left, found[0].top, found[0].width) == pytest.approx((0, 0, 70))


def test_a_dynamic_input_uses_the_configured_size(tmp_path):
    rows = yolo_rows((160, 160, 32, 32, 0.9, 0.0))
    model = fixed_yolo(tmp_path / "m.onnx", rows, CLASSES, size=None)
    found = detector(model, model_input_size=320).detect(jpeg(320, 320))
    assert (found[0].left, found[0].top, found[0].width) == pytest.approx((144, 144, 32))


@pytest.mark.parametrize("single_output", [False, True], ids=["boxes-scores-labels", "nx6"])
def test_a_model_with_nms_built_in_is_decoded_as_given(tmp_path, single_output):
    model = fixed_nms(
        tmp_path / "m.onnx",
        boxes=np.array([[270, 280, 370, 360], [0, 80, 64, 144]], dtype=np.float32),
        scores=np.array([0.7, 0.1], dtype=np.float32),
        labels=np.array([1, 0]),
        classes=CLASSES,
        single_output=single_output,
    )
    found = detector(model).detect(jpeg(320, 240))
    assert [(d.class_index, round(d.score, 2)) for d in found] == [(1, 0.7)]  # 0.1: below 0.25
    assert (found[0].left, found[0].top, found[0].width, found[0].height) == pytest.approx(
        (135, 100, 50, 40)
    )


def test_the_output_format_is_told_from_the_shapes():
    assert output_format({"output0": [1, 84, 8400]}) is OutputFormat.YOLO
    assert output_format({"output0": [1, 6, 8400]}) is OutputFormat.YOLO  # two classes
    assert output_format({"output0": [1, 300, 6]}) is OutputFormat.NMS
    assert output_format({"boxes": [1, 9, 4], "scores": [1, 9], "labels": [1, 9]}) is (
        OutputFormat.NMS
    )
    with pytest.raises(InvalidModel, match="FRAMESIFT_MODEL_FORMAT"):
        output_format({"a": [1], "b": [2]})


def test_class_names_come_from_the_metadata_or_the_setting(tmp_path):
    rows = yolo_rows((320, 320, 100, 80, 0.9, 0.1))
    assert detector(fixed_yolo(tmp_path / "a.onnx", rows, CLASSES)).classes == CLASSES
    named = detector(fixed_yolo(tmp_path / "b.onnx", rows, None), model_classes="truck,bus")
    assert named.classes == ["truck", "bus"]
    with pytest.raises(InvalidModel, match="FRAMESIFT_MODEL_CLASSES"):
        detector(fixed_yolo(tmp_path / "c.onnx", rows, None))
    assert class_names({"names": "{0: 'a', 1: 'b'}"}) == ["a", "b"]
    with pytest.raises(InvalidModel, match="not a literal"):
        class_names({"names": "__import__('os').system('true')"})


def test_a_class_index_past_the_names_is_a_clear_error(tmp_path):
    rows = yolo_rows((320, 320, 100, 80, 0.1, 0.9))
    model = fixed_yolo(tmp_path / "m.onnx", rows, ["car"], size=640)
    with pytest.raises(InvalidModel, match="class 1 but names 1"):
        detector(model).detect(jpeg(64, 64))


def test_what_is_not_a_model_is_a_clear_permanent_error(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(InvalidModel, match="onnxruntime can load"):
        detector(tmp_path / "junk.onnx")
    with pytest.raises(InvalidModel, match="no such file"):
        detector(tmp_path / "missing.onnx")


def test_the_version_is_the_files_name_and_digest_unless_set(tmp_path):
    rows = yolo_rows((320, 320, 100, 80, 0.9, 0.1))
    model = fixed_yolo(tmp_path / "det.onnx", rows, CLASSES)
    assert detector(model).version.startswith("det-") and len(detector(model).version) == 16
    assert detector(model, model_version="v7").version == "v7"


def test_letterbox_matches_ultralytics_padding():
    box = Letterbox(1920, 1080, 640, 640)
    assert box.scale == pytest.approx(1 / 3)
    assert box.resized == (640, 360)
    assert box.offset == (0, 140)
    tensor, _ = model_input(jpeg(1920, 1080), 640, 640)
    assert tensor.shape == (1, 3, 640, 640) and tensor.dtype == np.float32
    assert tensor[0, :, 0, 0] == pytest.approx([114 / 255] * 3)  # grey padding
    assert tensor[0, 1, 320, 320] > 0.7  # the green frame


def test_nms_keeps_the_best_of_overlapping_boxes_of_a_class():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], float)
    scores = np.array([0.6, 0.9, 0.5, 0.3])
    classes = np.array([0, 0, 1, 0])
    assert nms(boxes, scores, classes, iou=0.5).tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    ("kind", "scores", "expected"),
    [
        (Uncertainty.MARGIN, [0.9, 0.55], 0.9),
        (Uncertainty.MARGIN, [], 0.0),
        (Uncertainty.LEAST_CONFIDENCE, [0.9, 0.55], 0.1),
        (Uncertainty.LEAST_CONFIDENCE, [], 1.0),
        (Uncertainty.ENTROPY, [0.5, 0.99], 1.0),
        (Uncertainty.ENTROPY, [0.9], -(0.9 * math.log2(0.9) + 0.1 * math.log2(0.1))),
    ],
)
def test_uncertainty_of_a_frame(kind, scores, expected):
    assert UNCERTAINTY[kind](scores) == pytest.approx(expected)

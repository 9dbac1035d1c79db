"""A detector's output, from its raw tensors to boxes on the frame: letterboxing, the decoders of
the exports people use, non-maximum suppression, and how unsure the model is of a frame.

Plain numpy, no runtime: the ONNX adapter (:mod:`framesift.adapters.onnx`) runs the model and
hands its outputs here.

- :class:`OutputFormat` ``yolo``: Ultralytics YOLOv8/YOLO11 exported to ONNX without NMS, one
  output ``[1, 4 + classes, anchors]`` (centre x, centre y, width, height in input pixels, then
  each class's score); framesift runs the NMS Ultralytics would (per class, IoU
  ``FRAMESIFT_MODEL_IOU``, at most 300 boxes).
- ``nms``: NMS inside the model, either one output ``[1, N, 6]`` (x1, y1, x2, y2, score, class:
  Ultralytics ``nms=True``, YOLOv10/YOLO26 end-to-end), or three outputs named ``boxes``
  ``[1, N, 4]`` (x1, y1, x2, y2), ``scores`` ``[1, N]`` and ``labels`` ``[1, N]``.

Boxes are in the letterboxed input's pixels and go back to the frame's by undoing the
letterbox (:class:`Letterbox`), as Ultralytics' ``scale_boxes`` does.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import simplejpeg
from PIL import Image

from framesift.errors import InvalidModel, UnreadableImage
from framesift.modelspec import OutputFormat, Uncertainty

# Ultralytics pads with this grey and keeps at most this many boxes per image.
PAD_GREY = 114
MAX_DETECTIONS = 300
# Per-class NMS shifts each class's boxes this far apart (Ultralytics' max_wh).
_CLASS_OFFSET = 7680.0


@dataclass(frozen=True)
class Detection:
    """One box the model found, in the frame's pixels (left, top, width, height)."""

    class_index: int
    score: float
    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class Letterbox:
    """How a frame of ``width`` x ``height`` fits an input of ``input_width`` x ``input_height``:
    scaled by ``scale`` keeping its aspect, centred, the rest padded grey."""

    width: int
    height: int
    input_width: int
    input_height: int

    @property
    def scale(self) -> float:
        return min(self.input_width / self.width, self.input_height / self.height)

    @property
    def resized(self) -> tuple[int, int]:
        return round(self.width * self.scale), round(self.height * self.scale)

    @property
    def offset(self) -> tuple[int, int]:
        """The left and top padding (Ultralytics rounds half a pixel less, as here)."""
        resized_width, resized_height = self.resized
        return (
            round((self.input_width - resized_width) / 2 - 0.1),
            round((self.input_height - resized_height) / 2 - 0.1),
        )

    def to_frame(self, xyxy: np.ndarray) -> np.ndarray:
        """Boxes (x1, y1, x2, y2) from input pixels to the frame's, clipped to it."""
        left, top = self.offset
        boxes = (xyxy - np.array([left, top, left, top], dtype=np.float64)) / self.scale
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, self.width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, self.height)
        return boxes


def decode_image(data: bytes, at_least: tuple[int, int] | None = None) -> np.ndarray:
    """A JPEG or PNG as RGB ``[height, width, 3]`` uint8. A JPEG is decoded at the smallest
    1/2, 1/4 or 1/8 scale still ``at_least`` (width, height) big: the model's input is smaller
    than a 1080p frame, so most of the full decode would be thrown away by the resize."""
    try:
        if simplejpeg.is_jpeg(data):
            if at_least is None:
                return simplejpeg.decode_jpeg(data, colorspace="RGB")
            return simplejpeg.decode_jpeg(
                data, colorspace="RGB", min_width=at_least[0], min_height=at_least[1]
            )
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    except (ValueError, OSError) as exc:
        raise UnreadableImage(f"cannot decode the frame for the model: {exc}") from exc


def frame_size(data: bytes) -> tuple[int, int]:
    """The (width, height) of a JPEG or PNG, from its header."""
    if simplejpeg.is_jpeg(data):
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
        return int(width), int(height)
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def model_input(data: bytes, input_width: int, input_height: int) -> tuple[np.ndarray, Letterbox]:
    """The frame as the model's input, ``[1, 3, height, width]`` float32 RGB in 0..1,
    letterboxed; and the letterbox, to map boxes back."""
    width, height = frame_size(data)
    box = Letterbox(width, height, input_width, input_height)
    resized_width, resized_height = box.resized
    pixels = decode_image(data, (resized_width, resized_height))
    if pixels.shape[1] != resized_width or pixels.shape[0] != resized_height:
        pixels = np.asarray(
            Image.fromarray(pixels).resize(
                (resized_width, resized_height), Image.Resampling.BILINEAR
            )
        )
    canvas = np.full((input_height, input_width, 3), PAD_GREY, dtype=np.uint8)
    left, top = box.offset
    canvas[top : top + resized_height, left : left + resized_width] = pixels
    tensor = canvas.transpose(2, 0, 1)[np.newaxis].astype(np.float32) / 255.0
    return np.ascontiguousarray(tensor), box


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The intersection over union of every box of ``a`` with every box of ``b`` (x1, y1, x2,
    y2 rows)."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    overlap = np.prod((bottom_right - top_left).clip(min=0), axis=2)
    area_a = np.prod((a[:, 2:] - a[:, :2]).clip(min=0), axis=1)
    area_b = np.prod((b[:, 2:] - b[:, :2]).clip(min=0), axis=1)
    union = area_a[:, None] + area_b[None, :] - overlap
    return np.where(union > 0, overlap / np.where(union > 0, union, 1), 0.0)


def nms(xyxy: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes kept by greedy per-class non-maximum suppression, best first."""
    shifted = xyxy + (classes.astype(np.float64) * _CLASS_OFFSET)[:, None]
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < MAX_DETECTIONS:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        overlaps = iou_matrix(shifted[best : best + 1], shifted[rest])[0]
        order = rest[overlaps <= iou]
    return np.array(keep, dtype=np.int64)


def _detections(
    xyxy: np.ndarray, scores: np.ndarray, classes: np.ndarray, box: Letterbox
) -> list[Detection]:
    on_frame = box.to_frame(xyxy.astype(np.float64))
    return [
        Detection(
            class_index=int(cls),
            score=float(score),
            left=float(x1),
            top=float(y1),
            width=float(x2 - x1),
            height=float(y2 - y1),
        )
        for (x1, y1, x2, y2), score, cls in zip(on_frame, scores, classes, strict=True)
        if x2 > x1 and y2 > y1
    ]


def decode_yolo(
    output: np.ndarray, box: Letterbox, min_score: float, iou: float
) -> list[Detection]:
    """Ultralytics' raw head ``[1, 4 + classes, anchors]``: each anchor's best class, those
    scoring ``min_score`` or more, then per-class NMS."""
    if output.ndim != 3 or output.shape[0] != 1 or output.shape[1] < 5:
        raise InvalidModel(f"a YOLO output is [1, 4 + classes, anchors], not {list(output.shape)}")
    head = output[0]  # (4 + classes) x anchors; filtered before anything is copied
    class_scores = head[4:]
    classes = class_scores.argmax(axis=0)
    scores = class_scores[classes, np.arange(head.shape[1])]
    wanted = scores >= min_score
    rows = head[:4, wanted].T.astype(np.float64)
    classes, scores = classes[wanted], scores[wanted].astype(np.float64)
    centre, size = rows[:, :2], rows[:, 2:4]
    xyxy = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    kept = nms(xyxy, scores, classes, iou)
    return _detections(xyxy[kept], scores[kept], classes[kept], box)


def decode_nms(outputs: dict[str, np.ndarray], box: Letterbox, min_score: float) -> list[Detection]:
    """A model that ran NMS itself: ``[1, N, 6]`` rows, or ``boxes``, ``scores``, ``labels``."""
    xyxy: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    if {"boxes", "scores", "labels"} <= outputs.keys():
        xyxy = outputs["boxes"].reshape(-1, 4)
        scores = outputs["scores"].reshape(-1)
        classes = outputs["labels"].reshape(-1)
    else:
        (single,) = outputs.values()
        if single.ndim != 3 or single.shape[0] != 1 or single.shape[2] != 6:
            raise InvalidModel(
                "an NMS model's output is [1, N, 6] (x1, y1, x2, y2, score, class) or boxes, "
                f"scores and labels, not {list(single.shape)}"
            )
        xyxy, scores, classes = single[0, :, :4], single[0, :, 4], single[0, :, 5]
    if not (len(xyxy) == len(scores) == len(classes)):
        raise InvalidModel("an NMS model's boxes, scores and labels differ in length")
    wanted = scores >= min_score
    return _detections(
        xyxy[wanted], scores[wanted].astype(np.float64), classes[wanted].astype(np.int64), box
    )


def output_format(outputs: dict[str, Sequence[int | str | None]]) -> OutputFormat:
    """Which decoder a model's outputs (name: shape) need."""
    if {"boxes", "scores", "labels"} <= outputs.keys():
        return OutputFormat.NMS
    if len(outputs) == 1:
        (shape,) = outputs.values()
        if len(shape) == 3 and shape[2] == 6 and shape[1] != 6:
            return OutputFormat.NMS
        return OutputFormat.YOLO
    raise InvalidModel(
        f"cannot tell how to decode outputs {dict(outputs)}: set FRAMESIFT_MODEL_FORMAT"
    )


def _binary_entropy(score: float) -> float:
    if score <= 0 or score >= 1:
        return 0.0
    return -(score * math.log2(score) + (1 - score) * math.log2(1 - score))


UNCERTAINTY: dict[Uncertainty, Callable[[Sequence[float]], float]] = {
    Uncertainty.MARGIN: lambda scores: max((1 - abs(2 * s - 1) for s in scores), default=0.0),
    Uncertainty.LEAST_CONFIDENCE: lambda scores: 1 - max(scores, default=0.0),
    Uncertainty.ENTROPY: lambda scores: max((_binary_entropy(s) for s in scores), default=0.0),
}

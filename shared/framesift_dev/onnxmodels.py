"""ONNX detectors built with the onnx package's helpers, for the tests and the benchmarks (the
``onnx`` package is a dev dependency; framesift itself only runs models, with onnxruntime).

- :func:`fixed_yolo` and :func:`fixed_nms`: models whose outputs are given, whatever the image
  (they still read it, so onnxruntime runs the input path): decoding, NMS, letterboxing and
  everything downstream are then checked against known boxes;
- :func:`yolov8n_sized`: a convolutional network with YOLOv8n's input, output, parameter count
  and about its compute (random weights), for timing inference and the labeler's memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _names(classes: Sequence[str]) -> str:
    """Class names as an Ultralytics export writes them in the metadata."""
    return repr(dict(enumerate(classes)))


def _save(graph: onnx.GraphProto, path: Path, classes: Sequence[str] | None) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # what onnxruntime releases of the last years all load
    if classes is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = "names", _names(classes)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _image_input(size: int | None) -> onnx.ValueInfoProto:
    side: int | str = size if size is not None else "side"
    return helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, side, side])


def _plus_zero_times_image(name: str, value: np.ndarray, nodes: list) -> None:
    """``name`` = ``value`` + 0 x mean(image): a constant the graph cannot prune away."""
    nodes += [
        helper.make_node(
            "Constant", [], [f"{name}_value"], value=numpy_helper.from_array(value, f"{name}_c")
        ),
        helper.make_node("ReduceMean", ["images"], [f"{name}_mean"], keepdims=0),
        helper.make_node(
            "Constant",
            [],
            [f"{name}_zero"],
            value=numpy_helper.from_array(np.array(0.0, dtype=np.float32), f"{name}_z"),
        ),
        helper.make_node("Mul", [f"{name}_mean", f"{name}_zero"], [f"{name}_nothing"]),
        helper.make_node("Add", [f"{name}_value", f"{name}_nothing"], [name]),
    ]


def fixed_yolo(
    path: Path, rows: np.ndarray, classes: Sequence[str] | None, size: int | None = 640
) -> Path:
    """A raw YOLOv8 head ``[1, 4 + classes, anchors]`` that always outputs ``rows`` (one
    column per anchor: centre x, centre y, width, height in input pixels, class scores).
    ``size`` None: a dynamic input side."""
    output = rows.astype(np.float32)[np.newaxis]
    nodes: list = []
    _plus_zero_times_image("output0", output, nodes)
    graph = helper.make_graph(
        nodes,
        "fixed_yolo",
        [_image_input(size)],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))],
    )
    return _save(graph, path, classes)


def fixed_nms(
    path: Path,
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str] | None,
    size: int = 640,
    single_output: bool = False,
) -> Path:
    """A model with NMS built in that always outputs these boxes (x1, y1, x2, y2 in input
    pixels), scores and labels: as three outputs ``boxes``, ``scores``, ``labels``, or
    (``single_output``) as Ultralytics' ``[1, N, 6]``."""
    nodes: list = []
    if single_output:
        rows = np.concatenate(
            [boxes, scores[:, None], labels[:, None].astype(np.float32)], axis=1
        ).astype(np.float32)[np.newaxis]
        _plus_zero_times_image("output0", rows, nodes)
        outputs = [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(rows.shape))]
    else:
        _plus_zero_times_image("boxes", boxes.astype(np.float32)[np.newaxis], nodes)
        _plus_zero_times_image("scores", scores.astype(np.float32)[np.newaxis], nodes)
        nodes.append(
            helper.make_node(
                "Constant",
                [],
                ["labels"],
                value=numpy_helper.from_array(labels.astype(np.int64)[np.newaxis], "labels_c"),
            )
        )
        count = len(scores)
        outputs = [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, count, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, count]),
            helper.make_tensor_value_info("labels", TensorProto.INT64, [1, count]),
        ]
    graph = helper.make_graph(nodes, "fixed_nms", [_image_input(size)], outputs)
    return _save(graph, path, classes)


# YOLOv8n at 640: 3.2 M parameters, 8.7 GFLOPs; its head outputs 8,400 anchors (80x80, 40x40,
# 20x20) of 4 + 80 values.
YOLOV8N_PARAMETERS = 3_200_000
YOLOV8N_GFLOPS = 8.7
COCO_CLASSES = 80


def _conv(
    nodes: list,
    inits: list,
    name: str,
    source: str,
    cin: int,
    cout: int,
    stride: int,
    kernel: int,
    rng: np.random.Generator,
) -> str:
    weight = rng.standard_normal((cout, cin, kernel, kernel)) * (2 / (cin * kernel**2)) ** 0.5
    bias = np.zeros(cout)
    inits += [
        numpy_helper.from_array(weight.astype(np.float32), f"{name}_w"),
        numpy_helper.from_array(bias.astype(np.float32), f"{name}_b"),
    ]
    pad = kernel // 2
    nodes += [
        helper.make_node(
            "Conv",
            [source, f"{name}_w", f"{name}_b"],
            [f"{name}_conv"],
            strides=[stride, stride],
            pads=[pad, pad, pad, pad],
        ),
        # SiLU, as YOLOv8's convolutions: x * sigmoid(x).
        helper.make_node("Sigmoid", [f"{name}_conv"], [f"{name}_gate"]),
        helper.make_node("Mul", [f"{name}_conv", f"{name}_gate"], [name]),
    ]
    return name


def yolov8n_sized(path: Path, seed: int = 0) -> tuple[Path, int, float]:
    """A network of YOLOv8n's shape and size with random weights; returns the path, its
    parameter count and its GFLOPs (multiply-adds x 2) at 640x640."""
    rng = np.random.default_rng(seed)
    nodes: list = []
    inits: list = []
    # (input channels, output channels, stride, kernel, repeats), with the side it runs at.
    stages = [
        (3, 16, 2, 3, 1),
        (16, 32, 2, 3, 1),
        (32, 32, 1, 3, 2),
        (32, 64, 2, 3, 1),
        (64, 64, 1, 3, 4),  # P3: 80x80
        (64, 128, 2, 3, 1),
        (128, 128, 1, 3, 4),  # P4: 40x40
        (128, 256, 2, 3, 1),
        (256, 256, 1, 3, 3),  # P5: 20x20
    ]
    source, side, params, macs = "images", 640, 0, 0
    taps: list[tuple[str, int, int]] = []
    for index, (cin, cout, stride, kernel, repeats) in enumerate(stages):
        for repeat in range(repeats):
            first = repeat == 0
            name = f"s{index}r{repeat}"
            channels_in = cin if first else cout
            step = stride if first else 1
            source = _conv(nodes, inits, name, source, channels_in, cout, step, kernel, rng)
            side //= step
            params += channels_in * cout * kernel * kernel + cout
            macs += channels_in * cout * kernel * kernel * side * side
        if index in (4, 6, 8):
            taps.append((source, cout, side))
    heads = []
    outputs = 4 + COCO_CLASSES
    for tap, channels, tap_side in taps:
        hidden = _conv(nodes, inits, f"{tap}_h", tap, channels, 64, 1, 3, rng)
        params += channels * 64 * 9 + 64
        macs += channels * 64 * 9 * tap_side * tap_side
        weight = rng.standard_normal((outputs, 64, 1, 1)) * 0.05
        # Class scores start near sigmoid(-8): like a trained model's, few anchors pass the
        # confidence floor (random ones would all score about 0.5, NMS's worst case).
        bias = np.zeros(outputs)
        bias[4:] = -8.0
        inits += [
            numpy_helper.from_array(weight.astype(np.float32), f"{tap}_o_w"),
            numpy_helper.from_array(bias.astype(np.float32), f"{tap}_o_b"),
            numpy_helper.from_array(np.array([1, outputs, -1], dtype=np.int64), f"{tap}_shape"),
        ]
        nodes += [
            helper.make_node("Conv", [hidden, f"{tap}_o_w", f"{tap}_o_b"], [f"{tap}_o"]),
            helper.make_node("Reshape", [f"{tap}_o", f"{tap}_shape"], [f"{tap}_flat"]),
        ]
        params += 64 * outputs + outputs
        macs += 64 * outputs * tap_side * tap_side
        heads.append(f"{tap}_flat")
    nodes += [
        helper.make_node("Concat", heads, ["raw"], axis=2),
        helper.make_node("Sigmoid", ["raw"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "yolov8n_sized",
        [_image_input(640)],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, outputs, 8400])],
        initializer=inits,
    )
    _save(graph, path, [f"class{i}" for i in range(COCO_CLASSES)])
    return path, params, 2 * macs / 1e9

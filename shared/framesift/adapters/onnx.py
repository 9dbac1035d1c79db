"""The detector port on onnxruntime, on CPU: one session per instance, built from a model file
in a folder or a bucket (``FRAMESIFT_MODEL_URI``).

Class names come from ``FRAMESIFT_MODEL_CLASSES`` or the model's metadata: Ultralytics writes
``names`` as a Python dict literal (``{0: 'person', 1: 'bicycle'}``), read here as its own
loader does, with :func:`ast.literal_eval`, never ``eval``.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from framesift.config import Settings
from framesift.detection import (
    Detection,
    decode_nms,
    decode_yolo,
    model_input,
    output_format,
)
from framesift.errors import InvalidModel
from framesift.modelspec import OutputFormat
from framesift.ports import BlobStore


def read_model(uri: str, blobs: BlobStore) -> bytes:
    """The model file's bytes, from ``gs://bucket/object`` (through the blob store) or a path."""
    if uri.startswith("gs://"):
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        if not bucket or not name:
            raise InvalidModel(f"FRAMESIFT_MODEL_URI={uri!r} is not gs://bucket/object")
        return blobs.get(bucket, name)
    path = Path(uri).expanduser()
    if not path.is_file():
        raise InvalidModel(f"FRAMESIFT_MODEL_URI={uri!r}: no such file")
    return path.read_bytes()


def class_names(metadata: dict[str, str]) -> list[str]:
    """The ``names`` an Ultralytics export writes in the model's metadata, by class index."""
    raw = metadata.get("names")
    if raw is None:
        return []
    try:
        names = ast.literal_eval(raw)
    except (ValueError, SyntaxError) as exc:
        raise InvalidModel(f"the model's metadata 'names' is not a literal: {raw[:100]!r}") from exc
    if isinstance(names, dict):
        return [str(names[index]) for index in sorted(names)]
    if isinstance(names, list):
        return [str(name) for name in names]
    raise InvalidModel(f"the model's metadata 'names' is neither a dict nor a list: {raw[:100]!r}")


class OnnxDetector:
    def __init__(self, model: bytes, name: str, settings: Settings) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if settings.model_threads:
            options.intra_op_num_threads = settings.model_threads
        try:
            self._session = onnxruntime.InferenceSession(
                model, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors for a bad model
            raise InvalidModel(f"{name} is not a model onnxruntime can load: {exc}") from exc
        self.version = settings.model_version or (
            f"{PurePosixPath(name).stem}-{hashlib.sha256(model).hexdigest()[:12]}"
        )
        metadata = dict(self._session.get_modelmeta().custom_metadata_map)
        self.classes: Sequence[str] = settings.model_classes or class_names(metadata)
        if not self.classes:
            raise InvalidModel(
                f"{name} names no classes in its metadata: set FRAMESIFT_MODEL_CLASSES"
            )
        (model_input_spec,) = self._session.get_inputs()
        self._input = model_input_spec.name
        height, width = model_input_spec.shape[2:4]
        size = settings.model_input_size
        self._width = width if isinstance(width, int) else size
        self._height = height if isinstance(height, int) else size
        outputs = {output.name: output.shape for output in self._session.get_outputs()}
        self._format = (
            output_format(outputs)
            if settings.model_format is OutputFormat.AUTO
            else settings.model_format
        )
        self._confidence = settings.model_confidence
        self._iou = settings.model_iou

    def detect(self, image: bytes) -> list[Detection]:
        tensor, box = model_input(image, self._width, self._height)
        names = [output.name for output in self._session.get_outputs()]
        values: list[np.ndarray] = self._session.run(names, {self._input: tensor})
        outputs = dict(zip(names, values, strict=True))
        if self._format is OutputFormat.YOLO:
            (raw,) = outputs.values()
            found = decode_yolo(raw, box, self._confidence, self._iou)
        else:
            found = decode_nms(outputs, box, self._confidence)
        unknown = {d.class_index for d in found} - set(range(len(self.classes)))
        if unknown:
            raise InvalidModel(
                f"the model gave class {min(unknown)} but names {len(self.classes)} classes"
            )
        return found


def load_detector(settings: Settings, blobs: BlobStore) -> OnnxDetector:
    """The configured model (``FRAMESIFT_MODEL_URI``), loaded and checked."""
    if not settings.model_uri:
        raise InvalidModel("FRAMESIFT_MODEL_URI is not set")
    return OnnxDetector(read_model(settings.model_uri, blobs), settings.model_uri, settings)

"""The offline vendor: manifests to hand to any labeling tool, written to the frames bucket.

Per kept-frames batch, two objects under ``manifests/``:

- ``{batch id}.jsonl``: a SageMaker Ground Truth input manifest, one JSON object per line,
  ``{"source-ref": "gs://...", "framesift-frame-id": ..., ...}``;
- ``{batch id}.labelstudio.json``: the same frames as a Label Studio import file
  (``[{"data": {"image": ..., "frame_id": ...}}]``).

A pre-labeled frame's line has ``framesift-prediction``: the model's version, uncertainty and
boxes in pixels, and the same as a Label Studio prediction, which the import file carries.

GCS objects cannot be appended to, so the manifest is partitioned by batch (concatenate the
``.jsonl`` parts for one manifest). A redelivery adds only the frames a part lacks, with a
generation-conditional write (compare-and-swap), so two deliveries of a batch never drop or
repeat a line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from framesift.config import Vendor
from framesift.errors import NotFound, PreconditionFailed
from framesift.ports import BlobStore, LabelingRequest, LabelingTask
from framesift.vendors.labelstudio_tasks import prediction
from framesift.vendors.registry import MANIFEST

PREFIX = MANIFEST.writes_frames_under
_MAX_SWAPS = 20


@dataclass(frozen=True)
class ManifestConfig:
    """The settings the manifest vendor reads (each named as in
    :class:`~framesift.config.Settings`)."""

    frames_bucket: str  # where the manifests are written


class ManifestVendor:
    name = Vendor.MANIFEST.value

    def __init__(self, blobs: BlobStore, config: ManifestConfig) -> None:
        self._blobs = blobs
        self._bucket = config.frames_bucket

    def request(self, batch_id: str, frames: Sequence[LabelingRequest]) -> list[LabelingTask]:
        name = f"{PREFIX}{batch_id}.jsonl"
        for _ in range(_MAX_SWAPS):
            try:
                generation = self._blobs.stat(self._bucket, name).generation
                lines = self._blobs.get(self._bucket, name).decode().splitlines()
                entries = [json.loads(line) for line in lines if line.strip()]
            except NotFound:
                generation, entries = 0, []
            present = {entry["framesift-frame-id"] for entry in entries}
            entries += [ground_truth_line(f) for f in frames if f.frame_id not in present]
            body = "".join(json.dumps(entry, sort_keys=True) + "\n" for entry in entries)
            try:
                self._blobs.put(
                    self._bucket,
                    name,
                    body.encode(),
                    "application/jsonl",
                    if_generation_match=generation,
                )
                break
            except PreconditionFailed:
                continue  # another delivery wrote the part meanwhile: merge with it
        else:
            raise PreconditionFailed(f"{name} kept changing")
        self._blobs.put(
            self._bucket,
            f"{PREFIX}{batch_id}.labelstudio.json",
            json.dumps([label_studio_task(entry) for entry in entries], indent=1).encode(),
            "application/json",
        )
        return [LabelingTask(frame.frame_id, f"{name}#{frame.frame_id}") for frame in frames]


def ground_truth_line(frame: LabelingRequest) -> dict[str, Any]:
    line = {
        "source-ref": frame.gcs_uri,
        "framesift-frame-id": frame.frame_id,
        "framesift-metadata": {**frame.metadata, "width": frame.width, "height": frame.height},
    }
    if frame.model_version is not None:
        # Ground Truth's own key for model pre-labels in an input manifest is the label
        # attribute a job is created with, not known here: framesift's key carries them.
        line["framesift-prediction"] = {
            "model_version": frame.model_version,
            "uncertainty": frame.uncertainty,
            "label_studio": prediction(frame),
            "boxes": [
                {
                    "label": box.label,
                    "score": box.score,
                    "left": box.left,
                    "top": box.top,
                    "width": box.width,
                    "height": box.height,
                }
                for box in frame.prelabels
            ],
        }
    return line


def label_studio_task(entry: dict[str, Any]) -> dict[str, Any]:
    task: dict[str, Any] = {
        "data": {
            "image": entry["source-ref"],
            "frame_id": entry["framesift-frame-id"],
            **entry["framesift-metadata"],
        }
    }
    if "framesift-prediction" in entry:
        task["predictions"] = [entry["framesift-prediction"]["label_studio"]]
    return task

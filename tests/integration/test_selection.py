"""The selection-policy hook: the built-in sharpness policy and a plugged-in one."""

from __future__ import annotations

import json
import re

import pytest

from framesift.embedded import EmbeddedPipeline
from framesift.errors import PermanentError
from framesift.messages import KeptFrames
from framesift.selection import load_policy
from framesift.topology import Topics


def _manifest_ids(pipeline: EmbeddedPipeline) -> list[str]:
    bucket = pipeline.settings.frames_bucket
    return [
        json.loads(line)["framesift-frame-id"]
        for blob in pipeline.blobs.list(bucket, "manifests/")
        if blob.name.endswith(".jsonl")
        for line in pipeline.blobs.get(bucket, blob.name).decode().splitlines()
    ]


def _kept(pipeline: EmbeddedPipeline) -> list:
    return [
        frame
        for message in pipeline.publisher.published[Topics.FRAMES_KEPT]
        for frame in KeptFrames.model_validate_json(message.data).frames
    ]


def test_frames_below_the_sharpness_floor_are_skipped_and_the_sharpest_go_first(
    media, embedded_settings
):
    settings = embedded_settings.model_copy(update={"selection_min_sharpness": 1.0})
    pipeline = EmbeddedPipeline(settings)
    summary = pipeline.run([media["three_shots"]], "cam")

    kept = _kept(pipeline)
    flat = [f for f in kept if f.sharpness < 1.0]  # the solid red and blue shots
    sharp = [f for f in kept if f.sharpness >= 1.0]  # the test pattern
    assert flat and sharp
    assert _manifest_ids(pipeline) == [
        f.frame_id for f in sorted(sharp, key=lambda f: -f.sharpness)
    ]
    for frame in flat:
        doc = pipeline.adapters.documents.get("frames", frame.frame_id) or {}
        assert doc["labeling_status"] == "skipped"
        assert "below the floor 1" in doc["labeling_skip_reason"]
    assert sum(r.skipped for r in summary.labeling) == len(flat)


def test_a_policy_plugged_in_by_import_path_decides(media, embedded_settings):
    settings = embedded_settings.model_copy(
        update={"selection_policy": "tests.support.policies:whole_seconds_only"}
    )
    pipeline = EmbeddedPipeline(settings)
    pipeline.run([media["clip_5s_25fps"]], "cam")

    kept = _kept(pipeline)
    chosen = sorted((f for f in kept if f.timestamp_ms % 2000 == 0), key=lambda f: -f.timestamp_ms)
    assert chosen and len(chosen) < len(kept)
    assert _manifest_ids(pipeline) == [f.frame_id for f in chosen]


def test_a_policy_that_cannot_be_loaded_is_a_clear_permanent_error(embedded_settings):
    settings = embedded_settings.model_copy(update={"selection_policy": "no.such.module:policy"})
    with pytest.raises(PermanentError, match=re.escape("POLICY='no.such.module:policy'")):
        load_policy(settings)

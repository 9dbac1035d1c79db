"""framesift ingest: annotations from files land as their webhooks would (embedded mode)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from framesift.bootstrap import build_adapters
from framesift.cli import app
from framesift.config import Backend, Settings
from tests.support.payloads import (
    LS_FRAME,
    ls_event,
    scale_callback,
    sent_frame,
    store_sent_frames,
)


def _documents(tmp_path):
    settings = Settings(backend=Backend.EMBEDDED, workdir=tmp_path / "work")
    documents = build_adapters(settings).documents
    store_sent_frames(documents)
    return documents


def _ingest(tmp_path, path, vendor):
    env = {"FRAMESIFT_BACKEND": "embedded", "FRAMESIFT_WORKDIR": str(tmp_path / "work")}
    return CliRunner().invoke(app, ["ingest", str(path), "--vendor", vendor], env=env)


def test_a_label_studio_export_is_ingested_once(tmp_path):
    documents = _documents(tmp_path)
    event = ls_event()
    export = [{**event["task"], "annotations": [event["annotation"]]}]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))

    first = _ingest(tmp_path, path, "labelstudio")
    second = _ingest(tmp_path, path, "labelstudio")

    assert first.exit_code == 0, first.output
    assert "1 annotations read, 1 stored" in first.output
    assert "1 annotations read, 0 stored" in second.output
    stored = documents.get("annotations", "labelstudio~7")
    assert stored["boxes"][0]["left"] == 64
    assert documents.get("frames", LS_FRAME)["labeling_status"] == "labeled"


def test_saved_scale_callbacks_are_ingested_from_json_lines(tmp_path):
    documents = _documents(tmp_path)
    documents.create("frames", "v_other", sent_frame("v_other", "scale", "b"))
    path = tmp_path / "callbacks.jsonl"
    other = scale_callback(task_id="b", unique_id="v_other", metadata={"frame_id": "v_other"})
    bodies = [scale_callback(), other]
    path.write_text("".join(json.dumps(body) + "\n" for body in bodies))

    result = _ingest(tmp_path, path, "scale")

    assert result.exit_code == 0, result.output
    assert "2 annotations read, 2 stored" in result.output
    assert documents.get("annotations", "scale~t1")["boxes"][0]["x"] == 0.1
    assert documents.get("annotations", "scale~b")["frame_id"] == "v_other"


def test_a_refused_record_is_listed_and_the_others_are_stored(tmp_path):
    documents = _documents(tmp_path)
    path = tmp_path / "callbacks.jsonl"
    foreign = scale_callback(task_id="t-foreign")
    nan_box = scale_callback(boxes=[{"label": "car", "left": 1, "top": 1, "width": 1}])
    nan_box["response"]["annotations"][0]["height"] = float("nan")
    path.write_text("".join(json.dumps(b) + "\n" for b in (foreign, nan_box, scale_callback())))

    result = _ingest(tmp_path, path, "scale")

    assert result.exit_code == 1
    assert "3 annotations read, 1 stored" in result.output
    assert "scale~t-foreign: task 't-foreign' is not the task framesift created" in result.output
    assert "scale task t1: 1 validation error" in result.output
    assert documents.get("annotations", "scale~t1")["status"] == "submitted"
    assert documents.get("annotations", "scale~t-foreign") is None


def test_a_frame_listed_in_a_manifest_takes_a_label_studio_export_of_it(tmp_path):
    """The manifest's Label Studio import file, annotated in a project framesift never saw: its
    export is taken for the frames the manifest listed (any task id), and no others."""
    documents = _documents(tmp_path)
    listed = sent_frame("v_listed", "manifest", "manifests/b1.jsonl#v_listed")
    documents.create("frames", "v_listed", listed)
    event = ls_event()
    export = [
        {
            **event["task"],
            "id": 901,
            "data": {"frame_id": "v_listed"},
            "annotations": [{**event["annotation"], "id": 31}],
        },
        {
            **event["task"],
            "id": 902,
            "data": {"frame_id": LS_FRAME},
            "annotations": [{**event["annotation"], "id": 32}],
        },
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))

    result = _ingest(tmp_path, path, "labelstudio")

    assert "2 annotations read, 1 stored" in result.output
    assert "task '902' is not the task framesift created" in result.output
    assert documents.get("annotations", "labelstudio~31")["frame_id"] == "v_listed"
    assert documents.get("frames", "v_listed")["labeling_status"] == "labeled"

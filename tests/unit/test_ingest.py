"""framesift ingest: annotations from files land as their webhooks would (embedded mode)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from framesift.cli import app
from framesift.config import Backend, Settings
from framesift.wiring import build_adapters
from tests.support.payloads import FRAME, ls_event, scale_callback


def _documents(tmp_path):
    settings = Settings(backend=Backend.EMBEDDED, workdir=tmp_path / "work")
    documents = build_adapters(settings).documents
    documents.create("frames", FRAME, {"id": FRAME, "width": 640, "height": 480})
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
    assert documents.get("frames", FRAME)["labeling_status"] == "labeled"


def test_saved_scale_callbacks_are_ingested_from_json_lines(tmp_path):
    documents = _documents(tmp_path)
    path = tmp_path / "callbacks.jsonl"
    bodies = [scale_callback(task_id="a"), scale_callback(task_id="b")]
    path.write_text("".join(json.dumps(body) + "\n" for body in bodies))

    result = _ingest(tmp_path, path, "scale")

    assert result.exit_code == 0, result.output
    assert "2 annotations read, 2 stored" in result.output
    assert documents.get("annotations", "scale~a")["boxes"][0]["x"] == 0.1
    assert documents.get("annotations", "scale~b") is not None

"""Model-assisted labeling against a real Label Studio, as a stranger runs it: the embedded
pipeline with an ONNX detector, its boxes as predictions on the tasks (shown: the project's
model version is the model's), three frames labeled through Label Studio's API as annotators
would (one accepted as predicted, one corrected, one negative), their webhooks into the store,
and the model's agreement with them from the warehouse and ``framesift report``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from framesift.config import section
from framesift.vendors.labelstudio import LabelStudioConfig, LabelStudioVendor
from framesift_dev.onnxmodels import fixed_yolo
from tests.integration.test_model_assisted import CAR, HEAD, exported_quality, report
from tests.support.labels import ls_box, start_served_pipeline
from tests.support.waiting import wait_for

pytestmark = pytest.mark.labelstudio


@pytest.fixture
def session(media, embedded_settings, labelstudio, unique, tmp_path: Path):
    model = fixed_yolo(tmp_path / "detector.onnx", HEAD, ["car", "person"])
    served, pipeline, server = start_served_pipeline(
        media, embedded_settings, labelstudio, f"model-{unique}", model_uri=str(model)
    )
    yield served, pipeline
    server.stop()


def test_predictions_in_label_studio_and_the_models_agreement_with_its_annotators(
    session, tmp_path
):
    settings, pipeline = session
    documents = pipeline.adapters.documents
    vendor = LabelStudioVendor(documents, section(LabelStudioConfig, settings))
    project = vendor.client.projects.get(id=vendor.project_id())
    tasks = sorted(
        vendor.client.tasks.list(project=project.id, fields="all"),
        key=lambda t: t.data["frame_id"],
    )
    assert len(tasks) >= 3
    version = documents.get("frames", tasks[0].data["frame_id"])["model_version"]
    assert project.model_version == version  # so Label Studio pre-labels with these

    for task in tasks:
        (prediction,) = vendor.client.predictions.list(task=task.id)
        assert prediction.model_version == version
        assert prediction.score == pytest.approx(0.1)  # 1 - the frame's uncertainty 0.9
        car, person = sorted(prediction.result, key=lambda r: r["value"]["rectanglelabels"])
        assert car["value"]["rectanglelabels"] == ["car"]
        assert (car["value"]["x"], car["value"]["y"]) == pytest.approx((CAR[0] * 100, CAR[1] * 100))
        assert (car["value"]["width"], car["value"]["height"]) == pytest.approx(
            (CAR[2] * 100, CAR[3] * 100)
        )
        assert car["score"] == pytest.approx(0.9) and person["score"] == pytest.approx(0.55)

    a, b, c = tasks[:3]
    (first,) = vendor.client.predictions.list(task=a.id)
    accepted = first.result
    made = [
        vendor.client.annotations.create(id=a.id, result=accepted, ground_truth=False),
        # The car is elsewhere, and there is no person.
        vendor.client.annotations.create(
            id=b.id, result=[ls_box("car", 80, 80, 10, 10, b)], ground_truth=False
        ),
        vendor.client.annotations.create(id=c.id, result=[], ground_truth=False),  # nothing
    ]
    wait_for(
        lambda: all(documents.get("annotations", f"labelstudio~{x.id}") for x in made),
        "Label Studio's webhooks",
    )
    # Car: a match on A, a miss and a false box on B, a false box on C.
    car, person = exported_quality(pipeline)
    assert (car["tp"], car["fp"], car["fn"]) == (1, 2, 1)
    assert (person["tp"], person["fp"], person["fn"]) == (1, 2, 0)
    assert (car["precision"], car["recall"]) == (pytest.approx(1 / 3), pytest.approx(1 / 2))
    assert (person["precision"], person["recall"]) == (pytest.approx(1 / 3), pytest.approx(1.0))
    matched = pipeline.adapters.warehouse.query(
        "SELECT iou FROM {dataset}.model_match_rows WHERE outcome = 'tp'"
    )
    assert [row["iou"] for row in matched] == [pytest.approx(1.0)] * 2

    output = report(settings.workdir, tmp_path / "report")
    assert "per class" in output and version in output
    assert np.isfinite(
        pipeline.adapters.warehouse.query("SELECT map50 FROM {dataset}.model_map")[0]["map50"]
    )

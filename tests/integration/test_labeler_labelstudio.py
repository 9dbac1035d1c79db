"""Labeler against a real Label Studio server: tasks, redelivery, crash recovery, set-up."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from framesift import bootstrap
from framesift.bootstrap import build_adapters
from framesift.config import section
from framesift.errors import VendorRejected
from framesift.vendors.labelstudio import WEBHOOK_ACTIONS, LabelStudioConfig, LabelStudioVendor
from framesift.vendors.registry import LABELSTUDIO_CALLBACK
from tests.support.labels import labelstudio_settings
from tests.support.payloads import kept_frames

pytestmark = pytest.mark.labelstudio


@pytest.fixture
def settings(embedded_settings, labelstudio, unique):
    return labelstudio_settings(
        embedded_settings,
        labelstudio,
        f"framesift-{unique}",
        labelstudio_webhook_secret=SecretStr(f"secret-{unique}"),
        webhook_url="http://127.0.0.1:9/hooks",
    )


def _tasks(vendor: LabelStudioVendor) -> list:
    return list(vendor.client.tasks.list(project=vendor.project_id(), fields="all"))


def test_one_task_per_frame_whatever_the_redeliveries(settings):
    adapters = build_adapters(settings)
    vendor = LabelStudioVendor(adapters.documents, section(LabelStudioConfig, settings))
    labeler = bootstrap.labeler(adapters, settings, vendor)
    kept = kept_frames(settings, 5)

    first = labeler.handle(kept)
    again = [labeler.handle(kept) for _ in range(2)]

    assert first.requested == 5
    assert [r.requested for r in again] == [0, 0]
    tasks = _tasks(vendor)
    assert sorted(t.data["frame_id"] for t in tasks) == [f.frame_id for f in kept.frames]
    for task in tasks:
        frame = adapters.documents.get("frames", task.data["frame_id"])
        assert frame is not None
        assert frame["labeling_task_id"] == str(task.id)
        assert frame["labeling_vendor"] == "labelstudio"
        assert task.data["image"].endswith(f"{task.data['timestamp_ms']:010d}.jpg")
        assert task.data["collector"] == "cam"


def test_tasks_imported_before_a_crash_are_found_not_imported_again(settings):
    adapters = build_adapters(settings)
    vendor = LabelStudioVendor(adapters.documents, section(LabelStudioConfig, settings))
    kept = kept_frames(settings, 4)
    labeler = bootstrap.labeler(adapters, settings, vendor)
    # The crash: the first two frames were imported, nothing was recorded on the frames.
    early = vendor.request(
        kept.batch_id, [labeler._request(kept, f, None) for f in kept.frames[:2]]
    )

    labeler.handle(kept)

    tasks = _tasks(vendor)
    assert len(tasks) == 4
    for task in early:
        frame = adapters.documents.get("frames", task.frame_id)
        assert frame is not None and frame["labeling_task_id"] == task.task_id


def test_project_and_webhook_are_set_up_once(settings):
    adapters = build_adapters(settings)
    one = LabelStudioVendor(adapters.documents, section(LabelStudioConfig, settings))
    two = LabelStudioVendor(adapters.documents, section(LabelStudioConfig, settings))

    assert one.project_id() == two.project_id()
    project = one.client.projects.get(id=one.project_id())
    assert project.title == settings.labelstudio_project
    assert '<Label value="car" model_index="0"/>' in (project.label_config or "")
    assert "<RectangleLabels" in (project.label_config or "")
    hooks = [
        h
        for h in one.client.webhooks.list(project=str(one.project_id()))
        if h.project == one.project_id()
    ]
    [hook] = hooks
    assert hook.url == "http://127.0.0.1:9/hooks/labelstudio"
    secret = settings.labelstudio_webhook_secret.get_secret_value()
    assert hook.headers == {LABELSTUDIO_CALLBACK.header: secret}
    assert sorted(hook.actions or []) == sorted(WEBHOOK_ACTIONS)
    assert hook.send_payload is True


def test_a_refused_token_is_a_permanent_error(settings):
    settings = settings.model_copy(update={"labelstudio_api_key": SecretStr("0" * 40)})
    adapters = build_adapters(settings)
    vendor = LabelStudioVendor(adapters.documents, section(LabelStudioConfig, settings))
    labeler = bootstrap.labeler(adapters, settings, vendor)
    with pytest.raises(VendorRejected, match="401"):
        labeler.handle(kept_frames(settings, 1))


def test_a_rotated_secret_and_a_new_url_reach_the_webhook_when_the_labeler_starts(settings):
    """Label Studio never retries a call it got 401 for: the labeler keeps the one webhook of
    the project in step with its settings each time it starts."""
    adapters = build_adapters(settings)
    LabelStudioVendor(adapters.documents, section(LabelStudioConfig, settings)).project_id()
    rotated = settings.model_copy(
        update={
            "labelstudio_webhook_secret": SecretStr("rotated-secret"),
            "webhook_url": "http://127.0.0.1:9/new-hooks",
        }
    )
    vendor = LabelStudioVendor(adapters.documents, section(LabelStudioConfig, rotated))

    project = vendor.project_id()
    hooks = [h for h in vendor.client.webhooks.list(project=str(project)) if h.project == project]
    [hook] = hooks
    assert hook.url == "http://127.0.0.1:9/new-hooks/labelstudio"
    assert hook.headers == {LABELSTUDIO_CALLBACK.header: "rotated-secret"}
    assert sorted(hook.actions or []) == sorted(WEBHOOK_ACTIONS)


def test_a_new_model_versions_predictions_are_the_ones_label_studio_shows(settings):
    """Label Studio pre-labels with the project's model version only, set by the first import;
    framesift moves it to the version it sends (which must have predictions by then)."""
    from dataclasses import replace

    from framesift.documents import Box

    adapters = build_adapters(settings)
    vendor = LabelStudioVendor(adapters.documents, section(LabelStudioConfig, settings))
    labeler = bootstrap.labeler(adapters, settings, vendor)
    kept = kept_frames(settings, 2)
    car = Box(label="car", x=0.1, y=0.1, w=0.2, h=0.2, score=0.8)
    for frame, version in zip(kept.frames, ("detector-v1", "detector-v2"), strict=True):
        request = replace(
            labeler._request(kept, frame, None),
            prelabels=[car],
            model_version=version,
            uncertainty=0.4,
        )
        vendor.request(kept.batch_id, [request])
        assert vendor.client.projects.get(id=vendor.project_id()).model_version == version
    (second,) = [t for t in _tasks(vendor) if t.data["frame_id"] == kept.frames[1].frame_id]
    (prediction,) = vendor.client.predictions.list(task=second.id)
    assert (prediction.model_version, prediction.score) == ("detector-v2", pytest.approx(0.6))

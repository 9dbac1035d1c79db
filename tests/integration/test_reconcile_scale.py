"""framesift reconcile with Scale: its task list (by project, updated since the last reconcile,
page by page, with responses) brings the store to Scale's state when callbacks were lost.

Embedded stack; Scale is the HTTP fake (tests/support/scale.py), paging two tasks at a time.
"""

from __future__ import annotations

import pytest
import requests
from pydantic import SecretStr

from framesift.config import Vendor
from framesift.embedded import EmbeddedPipeline
from framesift.ingest import reconcile
from tests.support.scale import API_KEY


@pytest.fixture
def fake_scale(scale):
    scale.reset()
    scale.page_size = 2
    return scale


def _box(label: str, left: float, width: float = 40) -> dict:
    return {
        "uuid": f"{label}-{left}",
        "label": label,
        "left": left,
        "top": 10,
        "width": width,
        "height": 30,
        "attributes": {},
    }


def test_lost_callbacks_are_recovered_from_the_task_list(media, embedded_settings, fake_scale):
    settings = embedded_settings.model_copy(
        update={
            "labeling_vendor": Vendor.SCALE,
            "scale_api_key": SecretStr(API_KEY),
            "scale_api_url": fake_scale.url,
        }
    )
    pipeline = EmbeddedPipeline(settings)
    pipeline.run([media["three_shots"], media["clip_5s_25fps"]], "cam")
    documents = pipeline.adapters.documents
    tasks = sorted(fake_scale.tasks.values(), key=lambda t: t["unique_id"])
    assert len(tasks) >= 4
    labeled, cancelled, poisoned, pending = tasks[0], tasks[1], tasks[2], tasks[3:]
    # Every callback is lost (the webhook was down): only Scale knows.
    fake_scale.complete(labeled["task_id"], [_box("car", 5), _box("person", 60)])
    fake_scale.complete(cancelled["task_id"], [], status="canceled")
    fake_scale.complete(poisoned["task_id"], [_box("car", 5, width=1e6)])
    # A task in the project that framesift never created.
    requests.post(
        f"{fake_scale.url}/task/imageannotation",
        json={
            "project": settings.scale_project,
            "attachment": "https://x.test/a.jpg",
            "geometries": {"box": {"objects_to_annotate": ["car"]}},
            "unique_id": "not-a-frame",
            "metadata": {"frame_id": "not-a-frame"},
        },
        auth=(API_KEY, ""),
        timeout=10,
    ).raise_for_status()
    foreign = fake_scale.by_unique_id("not-a-frame")[0]
    fake_scale.complete(foreign["task_id"], [_box("car", 1)])

    dry = reconcile(settings, documents, dry_run=True)
    assert sorted(change.split(":")[0] for change in dry.changes) == sorted(
        f"scale~{task['task_id']}" for task in (labeled, cancelled, poisoned, foreign)
    )
    assert documents.get("annotations", f"scale~{labeled['task_id']}") is None
    assert documents.get("labeling_vendors", f"scale~{settings.scale_project}~reconciled") is None

    first = reconcile(settings, documents)
    again = reconcile(settings, documents)

    assert (first.annotations, first.stored) == (4, 2)
    assert sorted(r.split(":")[0] for r in first.refused) == sorted(
        [f"scale~{poisoned['task_id']}", f"scale~{foreign['task_id']}"]
    )
    assert "past the image's edge" in " ".join(first.refused)
    assert "unknown frame 'not-a-frame'" in " ".join(first.refused)
    # Read again from the last reconcile's start (minus the overlap): nothing new is stored.
    assert again.stored == 0
    stored = documents.get("annotations", f"scale~{labeled['task_id']}")
    assert [b["label"] for b in stored["boxes"]] == ["car", "person"]
    frame = documents.get("frames", labeled["unique_id"])
    assert frame["labeling_status"] == "labeled"
    assert documents.get("frames", cancelled["unique_id"])["labeling_status"] == (
        "labeling_cancelled"
    )
    assert documents.get("frames", poisoned["unique_id"])["labeling_status"] == "requested"
    for task in pending:
        assert documents.get("annotations", f"scale~{task['task_id']}") is None
    # Pages of two: every finished task was read through next_token.
    lists = [r for r in fake_scale.requests if r == ("GET", "/v1/tasks")]
    assert len(lists) >= 2 * 3

    # An annotator's later correction at Scale reaches the store on the next reconcile.
    fake_scale.complete(labeled["task_id"], [_box("truck", 7)])
    later = reconcile(settings, documents)
    assert later.stored == 1
    assert [
        b["label"] for b in documents.get("annotations", f"scale~{labeled['task_id']}")["boxes"]
    ] == ["truck"]

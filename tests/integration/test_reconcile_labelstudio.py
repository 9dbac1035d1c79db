"""framesift reconcile against a real Label Studio with two projects: it compares only the
annotations of the project it reads, a wrong deletion is undone by a right reconcile, a dry run
writes nothing, a run that would delete too many live labels stops; and a task deleted in Label
Studio reaches the store through its TASKS_DELETED webhook and leaves its frame out of
snapshots, saying so."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from framesift import bootstrap
from framesift.annotations import store
from framesift.bootstrap import build_adapters
from framesift.cli import app
from framesift.config import section
from framesift.documents import AnnotationRecord, AnnotationStatus, DeletedBy
from framesift.embedded import EmbeddedPipeline
from framesift.ingest import reconcile
from framesift.serve import LocalServer
from framesift.snapshot import Layout, write_snapshot
from framesift.vendors.labelstudio import LabelStudioConfig, LabelStudioVendor
from tests.support.labels import RULES, labelstudio_settings, ls_box
from tests.support.payloads import kept_frames
from tests.support.waiting import wait_for

pytestmark = pytest.mark.labelstudio
CLASSES = ["car", "person"]


@pytest.fixture
def base(embedded_settings, labelstudio, unique):
    return labelstudio_settings(embedded_settings, labelstudio, f"unset-{unique}")


def _labeled_project(adapters, base, title: str, batch: str, count: int):
    """A project whose ``count`` frames framesift sent, each annotated with one box in Label
    Studio (the webhook down: only reconcile brings them); its settings and its vendor."""
    settings = base.model_copy(update={"labelstudio_project": title})
    vendor = LabelStudioVendor(adapters.documents, section(LabelStudioConfig, settings))
    bootstrap.labeler(adapters, settings, vendor).handle(kept_frames(settings, count, batch))
    tasks = list(vendor.client.tasks.list(project=vendor.project_id(), fields="all"))
    annotations = [
        vendor.client.annotations.create(
            id=task.id, result=[ls_box("car", 10, 20, 30, 25, task)], ground_truth=False
        )
        for task in tasks
    ]
    return settings, vendor, [f"labelstudio~{a.id}" for a in annotations]


def _statuses(documents, ids: list[str]) -> list[str]:
    return [(documents.get("annotations", doc_id) or {}).get("status") for doc_id in ids]


@pytest.fixture
def two_projects(base, unique):
    adapters = build_adapters(base)
    first = _labeled_project(adapters, base, f"first-{unique}", "first", 3)
    second = _labeled_project(adapters, base, f"second-{unique}", "second", 2)
    return adapters.documents, first, second


def test_a_reconcile_of_another_project_deletes_nothing_of_the_first(two_projects):
    documents, (first, _, first_ids), (second, _, second_ids) = two_projects
    assert (reconcile(first, documents).stored, reconcile(first, documents).stored) == (3, 0)

    other = reconcile(second, documents)  # the title set to the next batch's project

    assert (other.stored, other.deleted, other.refused) == (2, 0, [])
    assert _statuses(documents, first_ids) == ["submitted"] * 3
    assert _statuses(documents, second_ids) == ["submitted"] * 2
    projects = {documents.get("annotations", i)["project"] for i in first_ids + second_ids}
    assert len(projects) == 2


def test_a_wrong_deletion_is_undone_by_a_right_reconcile(two_projects):
    documents, (first, _, first_ids), _ = two_projects
    reconcile(first, documents)
    # Wrong deletions: as reconcile wrote them before (framesift's clock as the vendor's time),
    # and one by absence read after the annotation's last change.
    now = datetime.now(UTC)
    legacy, absent, _ = first_ids
    documents.merge("annotations", legacy, {"status": "deleted", "vendor_updated_at": now})
    store(
        documents,
        AnnotationRecord(
            id=absent,
            frame_id=None,
            vendor="labelstudio",
            task_id=None,
            annotation_id=absent.split("~")[1],
            status=AnnotationStatus.DELETED,
            deleted_by=DeletedBy.ABSENT,
            deleted_at=now,
        ),
        RULES,
    )
    frame_id = documents.get("annotations", absent)["frame_id"]
    assert documents.get("frames", frame_id)["labeling_status"] == "requested"

    right = reconcile(first, documents)

    assert (right.stored, right.deleted, right.refused) == (2, 0, [])
    assert _statuses(documents, first_ids) == ["submitted"] * 3
    assert documents.get("frames", frame_id)["labeling_status"] == "labeled"
    restored = documents.get("annotations", absent)
    assert restored["deleted_by"] is None and restored["observed_at"] is not None


def _cli(settings, *args: str):
    env = {
        "FRAMESIFT_BACKEND": "embedded",
        "FRAMESIFT_WORKDIR": str(settings.workdir),
        "FRAMESIFT_LABELING_VENDOR": "labelstudio",
        "FRAMESIFT_LABELSTUDIO_URL": settings.labelstudio_url,
        "FRAMESIFT_LABELSTUDIO_API_KEY": settings.labelstudio_api_key.get_secret_value(),
        "FRAMESIFT_LABELSTUDIO_PROJECT": settings.labelstudio_project,
        "FRAMESIFT_LABELING_CLASSES": ",".join(CLASSES),
    }
    return CliRunner().invoke(app, ["reconcile", *args], env=env)


def test_a_dry_run_writes_nothing_and_the_guard_stops_until_confirmed(two_projects):
    documents, (first, vendor, first_ids), (second, _, second_ids) = two_projects
    reconcile(first, documents)
    reconcile(second, documents)
    gone = first_ids[:2]  # 2 of the project's 3 live labels: over 20 %
    for doc_id in gone:
        vendor.client.annotations.delete(id=int(doc_id.split("~")[1]))
    before = {doc_id: documents.get("annotations", doc_id) for doc_id in first_ids}

    dry = _cli(first, "--dry-run")
    after_dry = {doc_id: documents.get("annotations", doc_id) for doc_id in first_ids}
    stopped = _cli(first)
    after_stop = _statuses(documents, first_ids)
    confirmed = _cli(first, "--yes")

    assert dry.exit_code == 0, dry.output
    changes = [line for line in dry.output.splitlines() if line.startswith("labelstudio~")]
    assert [line.split(":")[0] for line in changes] == gone
    assert all(": delete (not in project" in line for line in changes)
    assert "2 changes; dry run, nothing written" in dry.output
    assert after_dry == before
    assert stopped.exit_code == 1
    assert "reconcile stopped: would mark 2 of project" in " ".join(stopped.output.split())
    assert after_stop == ["submitted"] * 3
    assert confirmed.exit_code == 0, confirmed.output
    assert _statuses(documents, first_ids) == ["deleted", "deleted", "submitted"]
    assert _statuses(documents, second_ids) == ["submitted"] * 2
    tombstone = documents.get("annotations", gone[0])
    assert tombstone["deleted_by"] == "absent_from_export" and tombstone["deleted_at"]


def test_a_task_deleted_in_label_studio_leaves_its_frame_out_of_snapshots(
    media, base, unique, tmp_path
):
    settings = base.model_copy(update={"labelstudio_project": f"deleted-{unique}"})
    with LocalServer(settings, build_adapters(settings), "127.0.0.1", 0) as server:
        served = server.settings_for(settings)
        pipeline = EmbeddedPipeline(served)
        pipeline.run([media["three_shots"]], "cam")
        documents = pipeline.adapters.documents
        vendor = LabelStudioVendor(documents, section(LabelStudioConfig, served))
        tasks = sorted(
            vendor.client.tasks.list(project=vendor.project_id(), fields="all"),
            key=lambda t: t.data["frame_id"],
        )
        labeled, deleted = tasks[:2]
        for task in (labeled, deleted):
            created = vendor.client.annotations.create(
                id=task.id, result=[ls_box("car", 10, 20, 30, 25, task)], ground_truth=False
            )
            wait_for(lambda a=created: documents.get("annotations", f"labelstudio~{a.id}"), "LS")
        frame_id = deleted.data["frame_id"]

        vendor.client.tasks.delete(id=deleted.id)
        frame = wait_for(
            lambda: (
                (documents.get("frames", frame_id) or {}).get("labeling_status")
                == "labeling_task_deleted"
                and documents.get("frames", frame_id)
            ),
            "the TASKS_DELETED webhook",
        )
        bootstrap.exporter(pipeline.adapters, served).run()
        snapshot = write_snapshot(
            pipeline.adapters.warehouse,
            pipeline.adapters.blobs,
            tmp_path / "coco",
            Layout.COCO,
            CLASSES,
            fractions=(1.0, 0.0, 0.0),
        )

    assert frame["labeling_annotations"] == []
    [tombstone] = [
        doc
        for doc in documents.where("annotations", "task_id", str(deleted.id))
        if doc["vendor"] == "labelstudio"
    ]
    assert (tombstone["status"], tombstone["deleted_by"]) == ("deleted", "task_deleted")
    assert snapshot.left_out == {frame_id: "its labeling task was deleted at the vendor"}
    assert snapshot.counts["train"]["images"] == 1

"""Exporter: documents -> warehouse, incremental and idempotent, with deletions.

The same tests run embedded (SQLite -> DuckDB) and, marked emulated, Firestore emulator ->
BigQuery emulator (local-bigquery).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime

import pytest
from google.cloud import firestore

from framesift import bootstrap
from framesift.bootstrap import Adapters, build_adapters
from framesift.config import Backend, Settings
from framesift.documents import AnnotationStatus, Box
from framesift.topology import Collections
from framesift.warehouse.schemas import ANNOTATION_BOXES_TABLE
from tests.support.bulk import write_frame, write_frame_documents
from tests.support.labels import annotate
from tests.support.stack import warehouse_stack, with_dataset


@pytest.fixture(params=["embedded", pytest.param("emulated", marks=pytest.mark.emulated)])
def stack(request, tmp_path, unique) -> tuple[Adapters, Settings]:
    return warehouse_stack(request, tmp_path / "work", unique)


def _video(documents, unique: str) -> str:
    video_id = f"v_{unique}"
    documents.create(
        "videos",
        video_id,
        {
            "id": video_id,
            "collector": f"cam-{unique}",
            "video_id": "drive",
            "bucket": "raw",
            "object_name": f"cam-{unique}/drive.mp4",
            "generation": 1,
            "status": "sampled",
            "policy": {"mode": "every_seconds", "every_seconds": 1.0},
            "created_at": datetime.now(UTC),
        },
    )
    return video_id


def _annotate(documents, frame_id: str, labels: list[str], version: int, status=None) -> None:
    annotate(
        documents,
        frame_id,
        [Box(label=label, left=10, top=5, width=20, height=10) for label in labels],
        status=status or AnnotationStatus.SUBMITTED,
        at=datetime(2026, 11, 1, version, tzinfo=UTC),
    )


def _rows(adapters: Adapters, table: str, unique: str, where: str = "TRUE") -> list[dict]:
    """This test's rows (the emulated stack's Firestore is shared by the session's tests)."""
    return adapters.warehouse.query(
        f"SELECT * FROM {{dataset}}.{table} WHERE id LIKE '%{unique}%' AND {where} ORDER BY id"
    )


def test_incremental_runs_export_what_changed_once_at_its_newest(stack, unique):
    adapters, settings = stack
    documents = adapters.documents
    _video(documents, unique)
    frames = [write_frame(documents, unique, i) for i in range(3)]
    _annotate(documents, frames[0], ["car", "person"], version=1)

    first = bootstrap.exporter(adapters, settings).run()
    assert first.documents["frames"] >= 3
    write_frame(documents, unique, 1, dedup_status="dropped", dedup_drop_reason="near_duplicate")
    _annotate(documents, frames[0], ["car"], version=2)  # one box fewer
    second = bootstrap.exporter(adapters, settings).run()
    bootstrap.exporter(adapters, settings).run()  # nothing new: the overlap re-merges, no change

    rows = _rows(adapters, "frames", unique)
    assert [r["id"] for r in rows] == frames
    assert rows[1]["dedup_status"] == "dropped"
    assert rows[1]["dedup_drop_reason"] == "near_duplicate"
    [annotation] = _rows(adapters, "annotations", unique)
    assert (annotation["box_count"], annotation["labels"]) == (1, "car")
    boxes = _rows(adapters, "annotation_boxes", unique)
    assert [(b["id"].rsplit("#")[1], b["label"], b["deleted"]) for b in boxes] == [
        ("0", "car", False),
        ("1", None, True),  # the slot the update lost
    ]
    assert boxes[0]["x"] == pytest.approx(0.1) and boxes[0]["h"] == pytest.approx(0.2)
    [video] = _rows(adapters, "videos", unique)
    assert '"every_seconds": 1.0' in video["policy"]
    assert second.rows["frames"] >= 1
    state = documents.get(
        Collections.EXPORT_STATE, bootstrap.exporter(adapters, settings).state_id("frames")
    )
    assert state is not None and state["watermark"]


def test_views_count_labels_and_cost(stack, unique):
    adapters, settings = stack
    documents = adapters.documents
    kept = write_frame(documents, unique, 0, labeling_task_id="t0", labeling_status="labeled")
    write_frame(documents, unique, 1, dedup_status="dropped")
    _annotate(documents, kept, ["car", "car", "person"], version=1)
    bootstrap.exporter(adapters, settings).run()

    counts = adapters.warehouse.query(
        f"SELECT label, boxes, frames FROM {{dataset}}.label_counts"
        f" WHERE collector = 'cam-{unique}' ORDER BY label"
    )
    assert [(r["label"], r["boxes"], r["frames"]) for r in counts] == [
        ("car", 2, 1),
        ("person", 1, 1),
    ]
    [cost] = adapters.warehouse.query(
        f"SELECT * FROM {{dataset}}.labeling_cost WHERE collector = 'cam-{unique}'"
    )
    assert (cost["tasks_sent"], cost["frames_dropped"]) == (1, 1)
    assert cost["cost_usd"] == pytest.approx(settings.labeling_price_per_task)
    boxes = adapters.warehouse.query(
        f"SELECT * FROM {{dataset}}.labeled_boxes WHERE collector = 'cam-{unique}'"
    )
    assert len(boxes) == 3 and {b["frame_id"] for b in boxes} == {kept}


def test_a_failed_merge_leaves_the_watermark_and_the_next_run_completes(stack, unique):
    adapters, settings = stack
    documents = adapters.documents
    frames = [write_frame(documents, unique, i) for i in range(4)]
    _annotate(documents, frames[0], ["truck"], version=1)
    failing = _FailingWarehouse(adapters.warehouse, fail_table="annotations")
    broken = Adapters(adapters.blobs, adapters.publisher, documents, failing)
    exporter = bootstrap.exporter(broken, settings)

    with pytest.raises(RuntimeError, match="injected"):
        exporter.run()
    # The watermark stayed.
    assert documents.get(Collections.EXPORT_STATE, exporter.state_id("frames")) is None
    lease = documents.get(Collections.EXPORT_STATE, exporter.state_id("lease")) or {}
    assert lease.get("holder") is None  # given back
    bootstrap.exporter(adapters, settings).run()
    bootstrap.exporter(adapters, settings).run()

    assert [r["id"] for r in _rows(adapters, "frames", unique)] == frames
    assert len(_rows(adapters, "annotations", unique)) == 1


def test_a_held_lease_makes_a_concurrent_run_do_nothing(stack, unique):
    adapters, settings = stack
    write_frame(adapters.documents, unique, 0)
    holder = bootstrap.exporter(adapters, settings)
    assert holder.take_lease()
    try:
        assert bootstrap.exporter(adapters, settings).run().skipped is True
        assert _rows(adapters, "frames", unique) == []
    finally:
        holder.release_lease()
    assert bootstrap.exporter(adapters, settings).run().skipped is False


def test_deletions_are_rows_marked_deleted(stack, unique):
    adapters, settings = stack
    documents = adapters.documents
    frames = [write_frame(documents, unique, i) for i in range(3)]
    _annotate(documents, frames[0], ["car"], version=1)
    bootstrap.exporter(adapters, settings).run()

    _annotate(documents, frames[0], [], version=2, status=AnnotationStatus.DELETED)
    _hard_delete(adapters, settings, "frames", frames[2])
    bootstrap.exporter(adapters, settings).run()
    live = _rows(adapters, "frames", unique, "NOT COALESCE(deleted, FALSE)")
    assert len(live) == 3  # an incremental run cannot see a document that is gone
    result = bootstrap.exporter(adapters, settings).run(full=True)

    assert result.tombstoned == 1
    rows = {r["id"]: r for r in _rows(adapters, "frames", unique)}
    assert rows[frames[2]]["deleted"] is True
    assert rows[frames[0]]["deleted"] is False
    [annotation] = _rows(adapters, "annotations", unique)
    assert annotation["deleted"] is True
    assert all(b["deleted"] for b in _rows(adapters, "annotation_boxes", unique))


def test_a_skipped_annotations_boxes_are_no_labels(stack, unique):
    """An annotator who skips a frame (cancelled) may leave boxes drawn: they are not labels,
    so its box rows are marked deleted and no snapshot or view counts them."""
    adapters, settings = stack
    documents = adapters.documents
    frame = write_frame(documents, unique, 0)
    _annotate(documents, frame, ["car", "person"], version=1, status=AnnotationStatus.CANCELLED)
    bootstrap.exporter(adapters, settings).run()

    [annotation] = _rows(adapters, "annotations", unique)
    assert annotation["status"] == "cancelled" and annotation["deleted"] is False
    boxes = _rows(adapters, "annotation_boxes", unique)
    assert len(boxes) == 2 and all(b["deleted"] for b in boxes)


def test_documents_missing_required_fields_are_rejected_and_recorded(stack, unique):
    adapters, settings = stack
    adapters.documents.merge("frames", f"partial-{unique}", {"labeling_status": "requested"})
    result = bootstrap.exporter(adapters, settings).run()
    assert result.rejected >= 1
    reject = adapters.documents.get("export_rejects", f"frames~partial-{unique}")
    assert reject is not None and "frames.video_doc_id" in reject["reason"]


def test_one_poisoned_document_is_rejected_with_its_reason_and_the_run_goes_on(stack, unique):
    """A document written past the webhook's checks (an older version, a hand edit) with a
    NaN and an infinity: rejected with the reason, every other document exported."""
    adapters, settings = stack
    documents = adapters.documents
    frames = [write_frame(documents, unique, i) for i in range(2)]
    _annotate(documents, frames[0], ["car"], version=1)
    documents.merge(
        "annotations",
        f"scale~poison-{unique}",
        {
            "id": f"scale~poison-{unique}",
            "frame_id": frames[1],
            "vendor": "scale",
            "annotation_id": f"poison-{unique}",
            "status": "submitted",
            "boxes": [
                {
                    "label": "car",
                    "left": float("nan"),
                    "x": float("inf"),
                    "y": 0.1,
                    "w": 0.1,
                    "h": 0.1,
                    "top": 1.0,
                    "width": 1.0,
                    "height": 1.0,
                }
            ],
        },
    )
    result = bootstrap.exporter(adapters, settings).run()

    reject = documents.get("export_rejects", f"annotations~scale~poison-{unique}")
    assert reject["reason"] == ("not a finite number: annotation_boxes.left_px, annotation_boxes.x")
    assert result.rejected >= 1
    [annotation] = _rows(adapters, "annotations", unique)
    assert annotation["id"] == f"scale~task-{frames[0]}"
    assert len(_rows(adapters, "frames", unique)) == 2


class _FailingWarehouse:
    """A warehouse whose MERGE into one table fails, after the tables before it succeeded."""

    def __init__(self, inner, fail_table: str) -> None:
        self._inner = inner
        self._fail_table = fail_table

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def upsert(self, schema, rows):
        if schema.name == self._fail_table:
            raise RuntimeError("injected failure between load and MERGE")
        return self._inner.upsert(schema, rows)


def _hard_delete(adapters: Adapters, settings: Settings, collection: str, doc_id: str) -> None:
    """Delete a document behind the pipeline's back (an operator's cleanup)."""
    if settings.backend is Backend.EMBEDDED:
        with sqlite3.connect(settings.workdir / "documents.sqlite3") as db:
            db.execute(
                "DELETE FROM documents WHERE collection = ? AND id = ?", (collection, doc_id)
            )
    else:
        firestore.Client(project=settings.project).collection(collection).document(doc_id).delete()


def test_a_backfill_of_ten_thousand_documents_exports_each_once(stack, unique):
    adapters, settings = stack
    count = 10_000
    write_frame_documents(settings, f"v_{unique}", count)

    first = bootstrap.exporter(adapters, settings).run(full=True)
    bootstrap.exporter(adapters, settings).run(full=True)  # the same again changes nothing

    assert first.rows["frames"] >= count
    [row] = adapters.warehouse.query(
        f"SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS ids FROM {{dataset}}.frames"
        f" WHERE video_doc_id = 'v_{unique}'"
    )
    assert (row["n"], row["ids"]) == (count, count)


def test_framesift_run_leaves_the_dataset_in_the_duckdb_warehouse(media, embedded_settings):
    from framesift.embedded import EmbeddedPipeline

    pipeline = EmbeddedPipeline(embedded_settings)
    summary = pipeline.run([media["three_shots"]], "cam")

    assert summary.export is not None and summary.export.rows["frames"] == summary.frames
    rows = pipeline.adapters.warehouse.query(
        "SELECT dedup_status, labeling_status, COUNT(*) AS n FROM {dataset}.frames"
        " GROUP BY dedup_status, labeling_status ORDER BY dedup_status"
    )
    assert [(r["dedup_status"], r["labeling_status"], r["n"]) for r in rows] == [
        ("dropped", None, summary.dropped),
        ("kept", "requested", summary.kept),
    ]


@pytest.mark.emulated
def test_a_crash_between_the_load_job_and_the_merge_on_bigquery(devstack, unique, monkeypatch):
    """The load job into staging has run; the MERGE query fails (the process dies there)."""
    settings = Settings(
        backend=Backend.GCP,
        project=devstack.project,
        bigquery_dataset=f"ds_{unique}",
        bigquery_endpoint=devstack.env["FRAMESIFT_BIGQUERY_ENDPOINT"],
    )
    adapters = with_dataset(build_adapters(settings))
    frames = [write_frame(adapters.documents, unique, i) for i in range(3)]
    client = adapters.warehouse._client  # type: ignore[attr-defined]
    query, loads = client.query, []

    def merge_fails(sql, *args, **kwargs):
        if "MERGE" in sql and ".frames`" in sql:
            raise RuntimeError("crashed after the load job, before the MERGE")
        return query(sql, *args, **kwargs)

    load = client.load_table_from_json
    monkeypatch.setattr(client, "query", merge_fails)
    monkeypatch.setattr(
        client, "load_table_from_json", lambda *a, **k: loads.append(a[1]) or load(*a, **k)
    )
    with pytest.raises(RuntimeError, match="before the MERGE"):
        bootstrap.exporter(adapters, settings).run()
    assert any("_staging_frames_" in str(table) for table in loads)  # the load did run
    monkeypatch.setattr(client, "query", query)

    bootstrap.exporter(adapters, settings).run()

    assert [r["id"] for r in _rows(adapters, "frames", unique)] == frames


def test_a_table_made_by_an_older_version_gets_the_columns_added_since(stack, unique):
    adapters, _ = stack
    name = f"boxes_{unique}"
    older = dataclasses.replace(
        ANNOTATION_BOXES_TABLE,
        name=name,
        columns=tuple(c for c in ANNOTATION_BOXES_TABLE.columns if c.name != "shape"),
    )
    adapters.warehouse.ensure_tables([older])
    newer = dataclasses.replace(ANNOTATION_BOXES_TABLE, name=name)
    adapters.warehouse.ensure_tables([newer])
    adapters.warehouse.ensure_tables([newer])  # and again: nothing left to add
    now = datetime.now(UTC)
    row = {c.name: None for c in newer.columns} | {
        "id": "a#0",
        "annotation_id": "a",
        "vendor": "scale",
        "shape": "polygon",
        "created_at": now,
        "updated_at": now,
        "deleted": False,
    }
    adapters.warehouse.upsert(newer, [row])
    [stored] = adapters.warehouse.query(f"SELECT id, shape FROM {{dataset}}.{name}")
    assert stored == {"id": "a#0", "shape": "polygon"}

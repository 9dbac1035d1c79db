"""The exporter over an in-memory document store and warehouse: each document one row however
often it is exported, the watermark at the newest stamp exported and read from on the next run,
a crashed run's lease expiring, and a full run's tombstones.

The warehouse is the in-memory fake, not DuckDB: the exporter only creates the views (the fake
records them), upserts (the fake's MERGE, kept honest by the contract tests) and, in a full run,
queries the live rows (the fake runs that one query in DuckDB in memory). The views' SQL is
tested against DuckDB and BigQuery in tests/integration/test_exporter.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from framesift.config import Settings, section
from framesift.geometry import Box
from framesift.stages.exporter import LEASE, Exporter, ExporterConfig
from framesift.topology import Collections
from framesift.warehouse.schemas import ALL_TABLES, FRAMES_TABLE
from tests.support.fakes import InMemoryDocumentStore, InMemoryWarehouse
from tests.support.labels import annotate


class Stack:
    def __init__(self, overlap_seconds: float = 0.0) -> None:
        self.documents = InMemoryDocumentStore()
        self.warehouse = InMemoryWarehouse()
        settings = Settings(export_overlap_seconds=overlap_seconds)
        self.config = section(ExporterConfig, settings)

    def exporter(self) -> Exporter:
        """A new exporter instance (each holds its own lease identity)."""
        return Exporter(self.documents, self.warehouse, self.config)

    def frame(self, index: int, **fields: Any) -> str:
        """Write frame ``index``'s document (a kept frame of video v1, and ``fields``)."""
        frame_id = f"v1_{index:010d}"
        document = {
            "id": frame_id,
            "source": "video",
            "video_doc_id": "v1",
            "collector": "cam",
            "video_id": "drive",
            "source_generation": 1,
            "timestamp_ms": index * 1000,
            "bucket": "frames",
            "object_name": f"cam/drive/{index * 1000:010d}.jpg",
            "dedup_status": "kept",
            "created_at": datetime(2026, 12, 1, tzinfo=UTC),
        }
        self.documents.merge(Collections.FRAMES, frame_id, {**document, **fields})
        return frame_id

    def watermark(self) -> datetime | None:
        state = self.documents.get(Collections.EXPORT_STATE, self.exporter().state_id("frames"))
        return None if state is None else state["watermark"]

    def stamp(self, frame_id: str) -> datetime:
        document = self.documents.get(Collections.FRAMES, frame_id)
        assert document is not None
        stamp: datetime = document["updated_at"]
        return stamp


def test_documents_exported_twice_are_one_row_each_and_the_watermark_their_newest_stamp():
    stack = Stack(overlap_seconds=300.0)  # the second run reads them all again
    frames = [stack.frame(index) for index in range(3)]

    first = stack.exporter().run()
    second = stack.exporter().run()

    assert first.documents["frames"] == second.documents["frames"] == 3
    rows = stack.warehouse.rows("frames")
    assert [(row["id"], row["dedup_status"], row["deleted"]) for row in rows] == [
        (frame_id, "kept", False) for frame_id in frames
    ]
    assert [row["updated_at"] for row in rows] == [stack.stamp(f) for f in frames]
    assert stack.watermark() == stack.stamp(frames[-1])
    assert set(stack.warehouse.tables) == {table.name for table in ALL_TABLES}


def test_the_next_run_reads_from_the_watermark_and_exports_the_newer_version():
    stack = Stack()
    frames = [stack.frame(index) for index in range(3)]
    stack.exporter().run()

    stack.frame(1, dedup_status="dropped", dedup_drop_reason="near_duplicate")
    result = stack.exporter().run()

    # The changed one, and the newest one exported before: read "at or after" the watermark.
    assert result.documents["frames"] == result.rows["frames"] == 2
    row = {row["id"]: row for row in stack.warehouse.rows("frames")}[frames[1]]
    assert (row["dedup_status"], row["dedup_drop_reason"]) == ("dropped", "near_duplicate")
    assert stack.watermark() == stack.stamp(frames[1])


def test_a_crashed_runs_lease_holds_until_it_expires():
    stack = Stack()
    stack.frame(0)
    lease = stack.exporter().state_id(LEASE)
    held = {"holder": "a crashed run", "expires_at": datetime.now(UTC) + timedelta(minutes=5)}
    stack.documents.merge(Collections.EXPORT_STATE, lease, held)
    assert stack.exporter().run().skipped is True
    assert stack.warehouse.rows("frames") == []

    expired = {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}
    stack.documents.merge(Collections.EXPORT_STATE, lease, expired)
    assert stack.exporter().run().skipped is False

    assert len(stack.warehouse.rows("frames")) == 1
    given_back = stack.documents.get(Collections.EXPORT_STATE, lease)
    assert given_back is not None and given_back["holder"] is None


def test_a_full_run_marks_deleted_the_rows_whose_document_is_gone():
    stack = Stack()
    kept = stack.frame(0)
    stack.exporter().run()
    gone = {**stack.warehouse.rows("frames")[0], "id": "v1_gone"}  # its document was deleted
    stack.warehouse.upsert(FRAMES_TABLE, [gone])

    result = stack.exporter().run(full=True)

    assert result.tombstoned == 1
    rows = {row["id"]: row for row in stack.warehouse.rows("frames")}
    assert (rows[kept]["deleted"], rows["v1_gone"]["deleted"]) == (False, True)


def test_an_annotation_whose_parts_are_gone_is_rejected_and_the_others_are_exported():
    """A split annotation whose parts cannot be read (deleted since) is one reject with why:
    retrying cannot bring them back, and it must not hold up every later export."""
    stack = Stack()
    lost, kept = stack.frame(1, width=320, height=240), stack.frame(2, width=320, height=240)
    annotate(stack.documents, lost, [Box(label="car", x=0.1, y=0.1, w=0.2, h=0.2)])
    annotate(stack.documents, kept, [Box(label="car", x=0.3, y=0.3, w=0.2, h=0.2)])
    stack.documents.merge(Collections.ANNOTATIONS, f"scale~task-{lost}", {"parts": ["gone"]})

    result = stack.exporter().run()

    assert result.rejected == 1
    [reject] = stack.documents.where(Collections.EXPORT_REJECTS, "collection", "annotations")
    assert "lost its parts" in reject["reason"]
    rows = stack.warehouse.rows("annotations")
    assert [row["frame_id"] for row in rows] == [kept]
    assert stack.documents.get(Collections.EXPORT_STATE, stack.exporter().state_id("annotations"))

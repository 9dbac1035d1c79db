"""The same contract for each adapter family: embedded (SQLite, DuckDB), gcp (emulators) and
the unit layer's in-memory fakes (tests/support/fakes.py), which it keeps honest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from framesift.adapters.embedded.duckdb import DuckDbWarehouse
from framesift.adapters.embedded.folder import FolderBlobStore
from framesift.adapters.embedded.sqlite import SqliteDocumentStore
from framesift.adapters.gcp.bigquery import BigQueryWarehouse
from framesift.adapters.gcp.firestore import FirestoreDocumentStore
from framesift.adapters.gcp.gcs import GcsBlobStore
from framesift.bookkeeping import PhashOwner
from framesift.documents import create_or_get
from framesift.errors import ObjectGone
from framesift.warehouse.schemas import ALL_TABLES, FRAMES_TABLE
from framesift_dev.devstack import StackState
from tests.support.fakes import InMemoryBlobStore, InMemoryDocumentStore, InMemoryWarehouse


@pytest.fixture(params=["sqlite", "memory", pytest.param("firestore", marks=pytest.mark.emulated)])
def documents(request, tmp_path):
    if request.param == "memory":
        return InMemoryDocumentStore()
    if request.param == "sqlite":
        return SqliteDocumentStore(tmp_path / "docs.sqlite3")
    state: StackState = request.getfixturevalue("devstack")
    return FirestoreDocumentStore(state.project)


@pytest.fixture(params=["duckdb", "memory", pytest.param("bigquery", marks=pytest.mark.emulated)])
def warehouse(request, tmp_path, unique):
    if request.param == "memory":
        return InMemoryWarehouse(f"ds_{unique}")
    if request.param == "duckdb":
        return DuckDbWarehouse(tmp_path / "warehouse.duckdb", f"ds_{unique}")
    state: StackState = request.getfixturevalue("devstack")
    warehouse = BigQueryWarehouse(
        state.project, f"ds_{unique}", endpoint=state.env["FRAMESIFT_BIGQUERY_ENDPOINT"]
    )
    warehouse.create_dataset()  # the infra's part when deployed
    return warehouse


@pytest.fixture(params=["folder", "memory", pytest.param("gcs", marks=pytest.mark.emulated)])
def blobs(request, tmp_path):
    if request.param == "memory":
        return InMemoryBlobStore()
    if request.param == "folder":
        return FolderBlobStore(tmp_path / "buckets")
    state: StackState = request.getfixturevalue("devstack")
    return GcsBlobStore(state.project)


def test_a_url_for_a_version_never_reads_the_one_that_replaced_it(blobs):
    """Deployed, the signed URL names the generation (Cloud Storage answers 404 once it is
    replaced); the emulator and the folder tell at once."""
    bucket = "framesift-raw"
    first = blobs.put(bucket, "cam/replaced.mp4", b"first", "video/mp4")
    second = blobs.put(bucket, "cam/replaced.mp4", b"second", "video/mp4")

    with pytest.raises(ObjectGone, match="no longer there"):
        blobs.stream_url(bucket, "cam/replaced.mp4", generation=first.generation)
    assert blobs.stream_url(bucket, "cam/replaced.mp4", generation=second.generation)
    assert blobs.stream_url(bucket, "cam/replaced.mp4")  # no generation: the live one


def _unstamped(doc: dict | None) -> dict | None:
    """A document without the updated_at every write stamps (checked in its own test)."""
    return None if doc is None else {k: v for k, v in doc.items() if k != "updated_at"}


def test_create_is_create_if_absent(documents, unique):
    assert documents.create("things", unique, {"id": unique, "v": 1}) is True
    assert documents.create("things", unique, {"id": unique, "v": 2}) is False
    assert _unstamped(documents.get("things", unique)) == {"id": unique, "v": 1}


def test_every_write_is_stamped_and_found_by_changed_since(documents, unique):
    collection = f"stamped-{unique}"
    before = datetime.now(UTC)
    documents.create(collection, "a", {"v": 1})
    documents.merge(collection, "b", {"v": 1})
    middle = datetime.now(UTC)
    documents.transact([(collection, "a")], lambda docs: ({(collection, "a"): {"v": 2}}, None))

    stamps = {d["_id"]: d["updated_at"] for d in documents.changed_since(collection, None)}
    assert set(stamps) == {"a", "b"}
    changed = [d["_id"] for d in documents.changed_since(collection, middle)]
    assert changed == ["a"]
    assert [d["_id"] for d in documents.changed_since(collection, before)] == ["b", "a"]


def test_merge_keeps_other_fields_and_where_finds_by_field(documents, unique):
    documents.merge("things", f"{unique}-a", {"id": f"{unique}-a", "group": unique, "v": 1})
    documents.merge("things", f"{unique}-a", {"v": 2})
    documents.merge("things", f"{unique}-b", {"id": f"{unique}-b", "group": unique, "v": 3})

    assert _unstamped(documents.get("things", f"{unique}-a")) == {
        "id": f"{unique}-a",
        "group": unique,
        "v": 2,
    }
    assert [d["v"] for d in documents.where("things", "group", unique)] == [2, 3]
    assert documents.get("things", f"{unique}-missing") is None


def test_the_store_stamps_updated_at_over_whatever_a_write_says(documents, unique):
    """The stamp is the store's alone (a stage never sets it): the exporter's watermark reads
    every write, even one naming an older time."""
    collection = f"stamps-{unique}"
    past = datetime(2020, 1, 1, tzinfo=UTC)
    before = datetime.now(UTC)
    documents.create(collection, "a", {"updated_at": past})
    documents.merge(collection, "b", {"updated_at": past})
    documents.transact(
        [(collection, "c")], lambda docs: ({(collection, "c"): {"updated_at": past}}, None)
    )
    assert [d["_id"] for d in documents.changed_since(collection, before)] == ["a", "b", "c"]


def test_create_or_get_creates_once_then_answers_what_exists(documents, unique):
    assert create_or_get(documents, "owners", unique, PhashOwner(frame_id="f1")) == (
        True,
        {"frame_id": "f1"},
    )
    created, existing = create_or_get(documents, "owners", unique, PhashOwner(frame_id="f2"))
    assert (created, _unstamped(existing)) == (False, {"frame_id": "f1"})


def _frame(frame_id: str, updated_at: datetime, size: int) -> dict:
    return {
        "id": frame_id,
        "source": "video",
        "video_doc_id": "v1",
        "collector": "cam",
        "video_id": "drive",
        "source_generation": 7,
        "timestamp_ms": 1000,
        "bucket": "frames",
        "object_name": f"cam/drive/{frame_id}.jpg",
        "width": 320,
        "height": 240,
        "size_bytes": size,
        "sha256": "ab" * 32,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "updated_at": updated_at,
    }


def test_upsert_keeps_exactly_one_newest_row_per_key(warehouse):
    warehouse.ensure_tables(ALL_TABLES)
    warehouse.ensure_tables(ALL_TABLES)  # idempotent
    t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
    newer = _frame("f1", t0 + timedelta(minutes=5), size=200)
    older = _frame("f1", t0, size=100)

    warehouse.upsert(FRAMES_TABLE, [older, newer, _frame("f2", t0, size=50)])
    warehouse.upsert(FRAMES_TABLE, [newer, older])  # delivered again, out of order

    rows = warehouse.query("SELECT id, size_bytes FROM {dataset}.frames ORDER BY id")
    assert rows == [{"id": "f1", "size_bytes": 200}, {"id": "f2", "size_bytes": 50}]

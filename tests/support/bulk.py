"""Frame documents for the exporter's tests: one through the store's port, or many quickly
(the backfill test and the export benchmark): batched writes straight to the store, stamped
with ``updated_at`` as the adapters stamp theirs."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore

from framesift.adapters.embedded.sqlite import SqliteDocumentStore
from framesift.config import Backend, Settings
from framesift.ports import DocumentStore


def write_frame_documents(settings: Settings, video_doc_id: str, count: int) -> None:
    now = datetime.now(UTC)
    docs = {
        f"{video_doc_id}_{index:010d}": {
            "id": f"{video_doc_id}_{index:010d}",
            "source": "video",
            "video_doc_id": video_doc_id,
            "collector": f"cam-{video_doc_id}",
            "video_id": "drive",
            "source_generation": 1,
            "timestamp_ms": index * 1000,
            "bucket": "frames",
            "object_name": f"{video_doc_id}/{index * 1000:010d}.jpg",
            "width": 1280,
            "height": 720,
            "phash": f"{index:016x}",
            "sharpness": 1.0,
            "brightness": 0.5,
            "dedup_status": "kept",
            "created_at": now,
            "updated_at": now,
        }
        for index in range(count)
    }
    if settings.backend is Backend.EMBEDDED:
        stamp = now.isoformat(timespec="microseconds")
        path = settings.workdir / "documents.sqlite3"
        SqliteDocumentStore(path)  # creates the store's table
        with sqlite3.connect(path) as db:
            db.executemany(
                "INSERT OR REPLACE INTO documents (collection, id, data) VALUES ('frames', ?, ?)",
                [
                    (doc_id, json.dumps({**doc, "created_at": stamp, "updated_at": stamp}))
                    for doc_id, doc in docs.items()
                ],
            )
        return
    client = firestore.Client(project=settings.project)
    items = list(docs.items())
    for start in range(0, count, 500):
        batch = client.batch()
        for doc_id, doc in items[start : start + 500]:
            batch.set(client.collection("frames").document(doc_id), doc)
        batch.commit()


def write_frame(documents: DocumentStore, unique: str, index: int, **fields: Any) -> str:
    """One frame document of the video ``v_{unique}``, ``index`` seconds in, through the
    store's port (``fields`` added or overriding)."""
    frame_id = f"v_{unique}_{index:010d}"
    documents.merge(
        "frames",
        frame_id,
        {
            "id": frame_id,
            "source": "video",
            "video_doc_id": f"v_{unique}",
            "collector": f"cam-{unique}",
            "video_id": "drive",
            "source_generation": 1,
            "timestamp_ms": index * 1000,
            "bucket": "frames",
            "object_name": f"cam-{unique}/drive/{index * 1000:010d}.jpg",
            "width": 100,
            "height": 50,
            "phash": f"{index:016x}",
            "dedup_status": "kept",
            "created_at": datetime.now(UTC),
            **fields,
        },
    )
    return frame_id

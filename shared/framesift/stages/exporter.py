"""Exporter: documents -> warehouse tables, incremental, idempotent, with deletions.

A run (a Cloud Scheduler message on ``export-requests``, or ``framesift export-warehouse``):

1. takes a lease (``export_state/{project}.{dataset}~lease``, in a transaction, expiring after
   ``export_lease_seconds``), so two runs never interleave; a run that finds it held does
   nothing;
2. per collection, reads the documents whose ``updated_at`` (stamped on every write by the
   document store adapters) is at or after the stored watermark minus
   ``export_overlap_seconds`` (writers' clocks and in-flight transactions may lag), or all of
   them with ``full``;
3. turns them into rows of the tables in :mod:`framesift.schemas` (an annotation also into one
   ``annotation_boxes`` row per box slot it ever had, the lost ones as tombstones) and upserts
   each table once: a load into a staging table, then one MERGE by id that keeps the newest
   ``updated_at`` (a constant number of warehouse jobs per run, not one per document);
4. only then advances the watermark (``export_state/{project}.{dataset}~{collection}``) to the
   newest ``updated_at`` exported.

Why exactly one current row per document: rows are keyed by document id and MERGEd newest-wins,
so exporting a version twice (overlap, a second run, a crash between load and MERGE before the
watermark moved) changes nothing, and an older version never overwrites a newer one. Deletions
are rows too: a deleted annotation is a ``deleted`` row; ``full`` also marks ``deleted`` every
row whose document no longer exists. A document missing a required field is not exported but
recorded in ``export_rejects`` with the reason (and retried when it next changes), as is one
whose values no row can hold (a number that is not finite, a wrong type): one poisoned document
never stops a run.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from framesift.config import Settings
from framesift.documents import AnnotationStatus
from framesift.events import PubSubMessage
from framesift.logs import get_logger
from framesift.messages import ExportRequest
from framesift.ports import DocKey, TableSchema
from framesift.schemas import (
    ALL_TABLES,
    ANNOTATION_BOXES_TABLE,
    ANNOTATIONS_TABLE,
    DEAD_LETTERS_TABLE,
    FRAMES_TABLE,
    IGNORED_UPLOADS_TABLE,
    VIDEOS_TABLE,
)
from framesift.topology import Collections
from framesift.wiring import Adapters

log = get_logger(__name__)

# The lease's document in export_state, beside the watermarks (named by collection).
LEASE = "lease"

Row = dict[str, Any]


@dataclass(frozen=True)
class Source:
    """A collection and the tables its documents become."""

    collection: str
    rows: Callable[[dict[str, Any]], Iterable[tuple[TableSchema, Row]]]


@dataclass
class ExportResult:
    skipped: bool = False
    documents: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    tombstoned: int = 0


def _timestamp(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "TIMESTAMP":
        return _timestamp(value)
    if kind == "STRING":
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    if kind == "INT64":
        return int(value)
    if kind == "FLOAT64":
        return float(value)
    if kind == "BOOL":
        return bool(value)
    return value


def row_of(schema: TableSchema, doc: Mapping[str, Any], **extra: Any) -> Row:
    """The table row of a document: its columns, typed, with id, created_at and deleted set."""
    merged = {**doc, **extra}
    merged.setdefault("id", doc.get("_id"))
    merged["created_at"] = (
        merged.get("created_at") or merged.get("received_at") or merged.get("updated_at")
    )
    merged["deleted"] = bool(merged.get("deleted")) or merged.get("status") == "deleted"
    return {c.name: _value(c.type, merged.get(c.name)) for c in schema.columns}


def _plain(schema: TableSchema) -> Callable[[dict[str, Any]], Iterable[tuple[TableSchema, Row]]]:
    return lambda doc: [(schema, row_of(schema, doc))]


def _annotation_rows(doc: dict[str, Any]) -> Iterator[tuple[TableSchema, Row]]:
    boxes = doc.get("boxes") or []
    labels = sorted({str(box.get("label")) for box in boxes if box.get("label")})
    annotation = row_of(
        ANNOTATIONS_TABLE,
        doc,
        box_count=len(boxes),
        labels=",".join(labels),
        unsupported=", ".join(doc.get("unsupported") or []) or None,
    )
    yield ANNOTATIONS_TABLE, annotation
    # A skipped (cancelled) annotation's boxes are no labels: its box rows are tombstones.
    gone = annotation["deleted"] or doc.get("status") == AnnotationStatus.CANCELLED
    for slot in range(max(len(boxes), int(doc.get("box_slots") or 0))):
        box = boxes[slot] if slot < len(boxes) else {}
        yield (
            ANNOTATION_BOXES_TABLE,
            row_of(
                ANNOTATION_BOXES_TABLE,
                {
                    "id": f"{annotation['id']}#{slot}",
                    "annotation_id": annotation["id"],
                    "frame_id": doc.get("frame_id"),
                    "vendor": doc.get("vendor"),
                    "label": box.get("label"),
                    "left_px": box.get("left"),
                    "top_px": box.get("top"),
                    "width_px": box.get("width"),
                    "height_px": box.get("height"),
                    "x": box.get("x"),
                    "y": box.get("y"),
                    "w": box.get("w"),
                    "h": box.get("h"),
                    "rotation": box.get("rotation"),
                    "shape": box.get("shape") or ("box" if box else None),
                    "points": box.get("points"),
                    "mask_rle": box.get("rle"),
                    "region_id": box.get("region_id"),
                    "created_at": annotation["created_at"],
                    "updated_at": doc.get("updated_at"),
                    "deleted": gone or not box,
                },
            ),
        )


def _rows(source: Source, doc: dict[str, Any]) -> tuple[list[tuple[TableSchema, Row]], str]:
    """The document's rows, or why it cannot have them: a required column missing, a number
    that is not finite (no warehouse takes NaN in a load), a value of the wrong type."""
    try:
        produced = list(source.rows(doc))
    except (TypeError, ValueError, OverflowError) as exc:
        return [], f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    missing = [
        f"{schema.name}.{column.name}"
        for schema, row in produced
        for column in schema.columns
        if column.required and row[column.name] is None
    ]
    if missing:
        return [], f"required columns missing: {', '.join(missing)}"
    infinite = [
        f"{schema.name}.{name}"
        for schema, row in produced
        for name, value in row.items()
        if isinstance(value, float) and not math.isfinite(value)
    ]
    if infinite:
        return [], f"not a finite number: {', '.join(sorted(set(infinite)))}"
    return produced, ""


SOURCES = (
    Source(Collections.VIDEOS, _plain(VIDEOS_TABLE)),
    Source(Collections.FRAMES, _plain(FRAMES_TABLE)),
    Source(Collections.ANNOTATIONS, _annotation_rows),
    Source(Collections.DEAD_LETTERS, _plain(DEAD_LETTERS_TABLE)),
    Source(Collections.IGNORED_UPLOADS, _plain(IGNORED_UPLOADS_TABLE)),
)


def views(price_per_task: float) -> dict[str, str]:
    """Analysts' views, in SQL that BigQuery and DuckDB both read (``{dataset}`` substituted;
    the price in exponent form, a float literal in both, where 0.012 would be a DuckDB DECIMAL)."""
    live = "NOT COALESCE({alias}.deleted, FALSE)"
    return {
        # Each frame's label: its newest live annotation (submitted, or empty: a negative); the
        # other annotators' stay in annotations and annotation_boxes for agreement figures.
        "frame_labels": f"""
            SELECT frame_id, id AS annotation_id, vendor, status, annotator, vendor_updated_at,
                   image_width, image_height, unsupported
            FROM (
                SELECT a.frame_id, a.id, a.vendor, a.status, a.annotator, a.vendor_updated_at,
                       a.image_width, a.image_height, a.unsupported,
                       ROW_NUMBER() OVER (
                           PARTITION BY a.frame_id ORDER BY a.vendor_updated_at DESC, a.id DESC
                       ) AS newest
                FROM {{dataset}}.annotations AS a
                WHERE {live.format(alias="a")} AND a.status IN ('submitted', 'empty')
                      AND a.frame_id IS NOT NULL
            ) AS ranked
            WHERE newest = 1""",
        "labeled_boxes": f"""
            SELECT f.id AS frame_id, f.collector, f.video_id, f.timestamp_ms, f.bucket,
                   f.object_name, f.width, f.height, b.vendor, b.label, b.left_px, b.top_px,
                   b.width_px, b.height_px, b.x, b.y, b.w, b.h, b.rotation, b.annotation_id
            FROM {{dataset}}.frames AS f
            JOIN {{dataset}}.frame_labels AS l ON l.frame_id = f.id
            JOIN {{dataset}}.annotation_boxes AS b ON b.annotation_id = l.annotation_id
            WHERE {live.format(alias="f")} AND {live.format(alias="b")}""",
        "label_counts": f"""
            SELECT b.label, f.collector, COUNT(*) AS boxes, COUNT(DISTINCT f.id) AS frames
            FROM {{dataset}}.frames AS f
            JOIN {{dataset}}.frame_labels AS l ON l.frame_id = f.id
            JOIN {{dataset}}.annotation_boxes AS b ON b.annotation_id = l.annotation_id
            WHERE {live.format(alias="f")} AND {live.format(alias="b")}
            GROUP BY b.label, f.collector""",
        "labeling_cost": f"""
            SELECT collector,
                   SUM(CASE WHEN labeling_task_id IS NOT NULL THEN 1 ELSE 0 END) AS tasks_sent,
                   SUM(CASE WHEN dedup_status = 'dropped' THEN 1 ELSE 0 END) AS frames_dropped,
                   SUM(CASE WHEN labeling_task_id IS NOT NULL THEN 1 ELSE 0 END)
                       * {price_per_task:e} AS cost_usd,
                   SUM(CASE WHEN dedup_status = 'dropped' THEN 1 ELSE 0 END)
                       * {price_per_task:e} AS saved_usd
            FROM {{dataset}}.frames AS f
            WHERE {live.format(alias="f")}
            GROUP BY collector""",
    }


class Exporter:
    def __init__(self, adapters: Adapters, settings: Settings) -> None:
        self._adapters = adapters
        self._settings = settings
        self._holder = uuid.uuid4().hex

    def handle_message(self, message: PubSubMessage) -> ExportResult:
        return self.run(full=ExportRequest.from_message(message).full)

    def run(self, full: bool = False) -> ExportResult:
        warehouse = self._adapters.warehouse
        warehouse.ensure_tables(ALL_TABLES)
        warehouse.ensure_views(views(self._settings.labeling_price_per_task))
        if not self.take_lease():
            log.info("export skipped: another run holds the lease")
            return ExportResult(skipped=True)
        try:
            return self._export(full)
        finally:
            self.release_lease()

    def state_id(self, name: str) -> str:
        """Watermarks and the lease belong to the target (one per warehouse dataset)."""
        return f"{self._settings.project}.{self._settings.bigquery_dataset}~{name}"

    def release_lease(self) -> None:
        key: DocKey = (Collections.EXPORT_STATE, self.state_id(LEASE))

        def change(docs: dict[DocKey, dict | None]) -> tuple[dict[DocKey, dict], None]:
            if (docs[key] or {}).get("holder") != self._holder:
                return {}, None  # expired and taken by another run meanwhile: theirs now
            return {key: {"holder": None, "expires_at": None}}, None

        self._adapters.documents.transact([key], change)

    def take_lease(self) -> bool:
        key: DocKey = (Collections.EXPORT_STATE, self.state_id(LEASE))
        now = datetime.now(UTC)
        ttl = timedelta(seconds=self._settings.export_lease_seconds)

        def change(docs: dict[DocKey, dict | None]) -> tuple[dict[DocKey, dict], bool]:
            lease = docs[key] or {}
            expires = _timestamp(lease.get("expires_at"))
            if lease.get("holder") not in (None, self._holder) and expires and expires > now:
                return {}, False
            return {key: {"holder": self._holder, "expires_at": now + ttl}}, True

        return self._adapters.documents.transact([key], change)

    def _export(self, full: bool) -> ExportResult:
        documents = self._adapters.documents
        result = ExportResult()
        overlap = timedelta(seconds=self._settings.export_overlap_seconds)
        pending: dict[str, list[Row]] = {schema.name: [] for schema in ALL_TABLES}
        seen: dict[str, set[str]] = {schema.name: set() for schema in ALL_TABLES}
        watermarks: dict[str, datetime] = {}
        for source in SOURCES:
            state = documents.get(Collections.EXPORT_STATE, self.state_id(source.collection)) or {}
            mark = _timestamp(state.get("watermark"))
            since = None if full or mark is None else mark - overlap
            count = 0
            for doc in documents.changed_since(source.collection, since):
                count += 1
                stamp = _timestamp(doc.get("updated_at"))
                if stamp and (
                    source.collection not in watermarks or stamp > watermarks[source.collection]
                ):
                    watermarks[source.collection] = stamp
                produced, problem = _rows(source, doc)
                if problem:
                    # One document that cannot be a row never stops the others' export.
                    result.rejected += 1
                    log.warning("document not exported: %s", problem)
                    documents.merge(
                        Collections.EXPORT_REJECTS,
                        f"{source.collection}~{doc['_id']}",
                        {"collection": source.collection, "doc_id": doc["_id"], "reason": problem},
                    )
                    continue
                for schema, row in produced:
                    pending[schema.name].append(row)
                    seen[schema.name].add(row["id"])
            result.documents[source.collection] = count
        for schema in ALL_TABLES:
            rows = pending[schema.name]
            if full:
                tombstones = self._tombstones(schema, seen[schema.name])
                result.tombstoned += len(tombstones)
                rows = rows + tombstones
            self._adapters.warehouse.upsert(schema, rows)
            result.rows[schema.name] = len(rows)
        # Only now that every MERGE succeeded: a crash before this exports the same again.
        for collection, mark in watermarks.items():
            documents.merge(
                Collections.EXPORT_STATE,
                self.state_id(collection),
                {"watermark": mark, "exported_at": datetime.now(UTC)},
            )
        log.info(
            "warehouse export done",
            extra={"fields": {"full": full, "rows": result.rows, "rejected": result.rejected}},
        )
        return result

    def _tombstones(self, schema: TableSchema, present: set[str]) -> list[Row]:
        """Rows whose document is gone, marked deleted (a full run only)."""
        live = self._adapters.warehouse.query(
            f"SELECT * FROM {{dataset}}.{schema.name} WHERE NOT COALESCE(deleted, FALSE)"
        )
        now = datetime.now(UTC)
        return [
            {**row, "deleted": True, "updated_at": now} for row in live if row["id"] not in present
        ]

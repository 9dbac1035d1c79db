"""Exporter: documents -> warehouse tables, incremental, idempotent, with deletions.

A run (a Cloud Scheduler message on ``export-requests``, or ``framesift export-warehouse``):

1. takes a lease (``export_state/{project}.{dataset}~lease``, in a transaction, expiring after
   ``export_lease_seconds``), so two runs never interleave; a run that finds it held does
   nothing;
2. per collection, reads the documents whose ``updated_at`` (stamped on every write by the
   document store adapters) is at or after the stored watermark minus
   ``export_overlap_seconds`` (writers' clocks and in-flight transactions may lag), or all of
   them with ``full``;
3. turns them into rows of the tables in :mod:`framesift.warehouse.schemas` (an annotation
   also into one ``annotation_boxes`` row per box slot it ever had, the lost ones as
   tombstones) and upserts each table once: a load into a staging table, then one MERGE by id
   that keeps the newest ``updated_at`` (a constant number of warehouse jobs per run, not one
   per document);
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

from framesift.bookkeeping import ExportLease, ExportReject, ExportWatermark
from framesift.documents import LIVE_STATUSES, AnnotationRecord, AnnotationStatus
from framesift.errors import NotFound
from framesift.events import PubSubMessage
from framesift.logs import get_logger
from framesift.messages import ExportRequest
from framesift.parts import joined
from framesift.ports import DocKey, DocumentStore, TableSchema, Warehouse
from framesift.topology import Collections
from framesift.warehouse.schemas import (
    ALL_TABLES,
    ANNOTATION_BOXES_TABLE,
    ANNOTATIONS_TABLE,
    DEAD_LETTERS_TABLE,
    FRAMES_TABLE,
    IGNORED_UPLOADS_TABLE,
    MODEL_MATCHES_TABLE,
    VIDEOS_TABLE,
)
from framesift.warehouse.views import views

log = get_logger(__name__)

# The lease's document in export_state, beside the watermarks (named by collection).
LEASE = "lease"

Row = dict[str, Any]


@dataclass(frozen=True)
class Source:
    """A collection and the tables its documents become."""

    collection: str
    rows: Callable[[dict[str, Any]], Iterable[tuple[TableSchema, Row]]]
    # The whole document from what the collection holds (an annotation stored in parts).
    whole: Callable[[DocumentStore, dict[str, Any]], dict[str, Any]] = lambda _, doc: doc


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


def _whole_annotation(documents: DocumentStore, doc: dict[str, Any]) -> dict[str, Any]:
    return joined(documents, Collections.ANNOTATIONS, doc, AnnotationRecord.LISTS)


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
    common = {
        "annotation_id": annotation["id"],
        "frame_id": doc.get("frame_id"),
        "vendor": doc.get("vendor"),
        "created_at": annotation["created_at"],
        "updated_at": doc.get("updated_at"),
    }
    yield from _slot_rows(
        ANNOTATION_BOXES_TABLE,
        annotation["id"],
        [
            {
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
                "shape": box.get("shape") or "box",
                "points": box.get("points"),
                "mask_rle": box.get("rle"),
                "region_id": box.get("region_id"),
                "score": box.get("score"),
            }
            for box in boxes
        ],
        int(doc.get("box_slots") or 0),
        {**common, "deleted": gone},
    )
    # A label's agreement with the pre-label counts only while the label is live.
    yield from _slot_rows(
        MODEL_MATCHES_TABLE,
        annotation["id"],
        list(doc.get("model_matches") or []),
        int(doc.get("match_slots") or 0),
        {
            **common,
            "model_version": doc.get("model_version"),
            "deleted": gone or doc.get("status") not in LIVE_STATUSES,
        },
    )


def _slot_rows(
    schema: TableSchema,
    parent_id: str,
    items: list[dict[str, Any]],
    slots: int,
    common: dict[str, Any],
) -> Iterator[tuple[TableSchema, Row]]:
    """One row per slot an annotation's list ever had (``{parent id}#{slot}``): the items, then
    tombstones for the slots it lost (so a label that shrank leaves no stale row)."""
    for slot in range(max(len(items), slots)):
        item = items[slot] if slot < len(items) else {}
        yield (
            schema,
            row_of(
                schema,
                {
                    **common,
                    **item,
                    "id": f"{parent_id}#{slot}",
                    "deleted": common["deleted"] or not item,
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
    Source(Collections.ANNOTATIONS, _annotation_rows, whole=_whole_annotation),
    Source(Collections.DEAD_LETTERS, _plain(DEAD_LETTERS_TABLE)),
    Source(Collections.IGNORED_UPLOADS, _plain(IGNORED_UPLOADS_TABLE)),
)


@dataclass(frozen=True)
class ExporterConfig:
    """The settings the exporter reads (each named as in :class:`~framesift.config.Settings`)."""

    project: str
    bigquery_dataset: str
    labeling_price_per_task: float
    export_lease_seconds: float
    export_overlap_seconds: float


class Exporter:
    def __init__(
        self, documents: DocumentStore, warehouse: Warehouse, config: ExporterConfig
    ) -> None:
        self._documents = documents
        self._warehouse = warehouse
        self._config = config
        self._holder = uuid.uuid4().hex

    def handle_message(self, message: PubSubMessage) -> ExportResult:
        return self.run(full=ExportRequest.from_message(message).full)

    def run(self, full: bool = False) -> ExportResult:
        warehouse = self._warehouse
        warehouse.ensure_tables(ALL_TABLES)
        warehouse.ensure_views(views(self._config.labeling_price_per_task))
        if not self.take_lease():
            log.info("export skipped: another run holds the lease")
            return ExportResult(skipped=True)
        try:
            return self._export(full)
        finally:
            self.release_lease()

    def state_id(self, name: str) -> str:
        """Watermarks and the lease belong to the target (one per warehouse dataset)."""
        return f"{self._config.project}.{self._config.bigquery_dataset}~{name}"

    def release_lease(self) -> None:
        key: DocKey = (Collections.EXPORT_STATE, self.state_id(LEASE))

        def change(docs: dict[DocKey, dict | None]) -> tuple[dict[DocKey, dict], None]:
            if (docs[key] or {}).get("holder") != self._holder:
                return {}, None  # expired and taken by another run meanwhile: theirs now
            return {key: ExportLease.fields(holder=None, expires_at=None)}, None

        self._documents.transact([key], change)

    def take_lease(self) -> bool:
        key: DocKey = (Collections.EXPORT_STATE, self.state_id(LEASE))
        now = datetime.now(UTC)
        ttl = timedelta(seconds=self._config.export_lease_seconds)

        def change(docs: dict[DocKey, dict | None]) -> tuple[dict[DocKey, dict], bool]:
            lease = docs[key] or {}
            expires = _timestamp(lease.get("expires_at"))
            if lease.get("holder") not in (None, self._holder) and expires and expires > now:
                return {}, False
            return {key: ExportLease.fields(holder=self._holder, expires_at=now + ttl)}, True

        return self._documents.transact([key], change)

    def _export(self, full: bool) -> ExportResult:
        documents = self._documents
        result = ExportResult()
        overlap = timedelta(seconds=self._config.export_overlap_seconds)
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
                try:
                    produced, problem = _rows(source, source.whole(documents, doc))
                except NotFound as exc:  # its parts are gone: no retry brings them back
                    produced, problem = [], str(exc)
                if problem:
                    # One document that cannot be a row never stops the others' export.
                    result.rejected += 1
                    log.warning("document not exported: %s", problem)
                    documents.merge(
                        Collections.EXPORT_REJECTS,
                        f"{source.collection}~{doc['_id']}",
                        ExportReject(
                            collection=source.collection, doc_id=doc["_id"], reason=problem
                        ).stored(),
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
            self._warehouse.upsert(schema, rows)
            result.rows[schema.name] = len(rows)
        # Only now that every MERGE succeeded: a crash before this exports the same again.
        for collection, mark in watermarks.items():
            documents.merge(
                Collections.EXPORT_STATE,
                self.state_id(collection),
                ExportWatermark(watermark=mark, exported_at=datetime.now(UTC)).stored(),
            )
        log.info(
            "warehouse export done",
            extra={"fields": {"full": full, "rows": result.rows, "rejected": result.rejected}},
        )
        return result

    def _tombstones(self, schema: TableSchema, present: set[str]) -> list[Row]:
        """Rows whose document is gone, marked deleted (a full run only)."""
        live = self._warehouse.query(
            f"SELECT * FROM {{dataset}}.{schema.name} WHERE NOT COALESCE(deleted, FALSE)"
        )
        now = datetime.now(UTC)
        return [
            {**row, "deleted": True, "updated_at": now} for row in live if row["id"] not in present
        ]

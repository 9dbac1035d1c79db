"""What comes out of the pipeline: the contact-sheet report, the warehouse export, and the
dataset snapshot from the warehouse."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from framesift.cli.options import console, errors, settings_from
from framesift.config import Backend
from framesift.snapshot import Layout


def report(
    out: Annotated[Path, typer.Option(help="Folder for the contact sheets and index.html.")] = Path(
        "framesift-report"
    ),
    workdir: Annotated[
        Path | None,
        typer.Option(help="An embedded run's folder (given: that run's results, embedded)."),
    ] = None,
    collector: Annotated[
        str | None, typer.Option(help="Only this collector's videos and photos.")
    ] = None,
) -> None:
    """Contact sheets per video (kept frames with timestamps, dropped ones greyed with the frame
    they repeat) and an HTML page linking them; with a model, its agreement with the human
    labels (precision, recall, AP@0.5 per class, mAP, worst frames) from the warehouse.
    Without --workdir, FRAMESIFT_* settings pick the
    backend: the emulated stack with `framesift dev up`'s exports, or Google Cloud."""
    from framesift.bootstrap import build_adapters
    from framesift.report import report as write_report

    embedded = {"backend": Backend.EMBEDDED, "workdir": workdir} if workdir else {}
    settings = settings_from(**embedded)
    adapters = build_adapters(settings)
    sheets, agreement = write_report(adapters, settings.labeling_price_per_task, out, collector)
    # The capture and provenance columns only when a source has them (they are wide).
    optional = [
        (name, field)
        for name, field in (("captured", "captured"), ("sampled at", "provenance"))
        if any(getattr(sheet, field) for sheet in sheets)
    ]
    table = Table("source", "id", "frames", "kept", *(name for name, _ in optional), "sheet")
    for sheet in sheets:
        table.add_row(
            sheet.source,
            sheet.video_doc_id,
            str(sheet.frames),
            str(sheet.kept),
            *(getattr(sheet, field) for _, field in optional),
            str(sheet.path),
        )
    console.print(table)
    reads, writes = sum(s.index_reads for s in sheets), sum(s.index_writes for s in sheets)
    console.print(
        f"dedup index: {reads} documents read and {writes} written for these sources"
        " (per video in index.html)"
    )
    if agreement:
        for title, rows in (
            ("model against humans (IoU 0.5, from the warehouse)", agreement.overall),
            ("per class", agreement.per_class),
            ("frames where they disagree most", agreement.disagreements),
        ):
            _print_rows(title, rows)
    console.print(f"open {out / 'index.html'}")


def _print_rows(title: str, rows: list[dict]) -> None:
    if not rows:
        return
    table = Table(*rows[0], title=title)
    for row in rows:
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()))
    console.print(table)


def export_warehouse(
    full: Annotated[
        bool, typer.Option("--full", help="Re-export every document, and mark vanished ones.")
    ] = False,
) -> None:
    """Export documents changed since the last run to the warehouse (FRAMESIFT_* settings)."""
    from framesift import bootstrap

    settings = settings_from()
    result = bootstrap.exporter(bootstrap.build_adapters(settings), settings).run(full=full)
    if result.skipped:
        console.print("another export holds the lease; nothing done")
        raise typer.Exit(1)
    table = Table("table", "rows merged")
    for name, count in result.rows.items():
        table.add_row(name, str(count))
    console.print(table)
    console.print(f"{result.rejected} documents rejected, {result.tombstoned} rows marked deleted")


def export_dataset(
    layout: Annotated[Layout, typer.Option("--format", help="The dataset's layout.")],
    out: Annotated[Path, typer.Option(help="Folder for the snapshot (created).")],
    seed: Annotated[int, typer.Option(help="Seed of the train/val/test split by video.")] = 0,
    split: Annotated[
        str, typer.Option(help="Train, val and test fractions, comma-separated.")
    ] = "0.8,0.1,0.1",
) -> None:
    """Write the labeled frames and their regions from the warehouse as a COCO, YOLO or
    YOLO-OBB dataset, split by video, with a manifest (query, time, counts, frames left out and
    why, content hash)."""
    from framesift.bootstrap import build_adapters
    from framesift.snapshot import write_snapshot

    settings = settings_from()
    adapters = build_adapters(settings)
    snapshot = write_snapshot(
        adapters.warehouse,
        adapters.blobs,
        out,
        layout,
        settings.labeling_classes,
        seed=seed,
        fractions=[float(part) for part in split.split(",")],
    )
    table = Table("split", "images", "boxes", "videos")
    for name, counts in snapshot.counts.items():
        table.add_row(name, *(str(counts[k]) for k in ("images", "boxes", "videos")))
    console.print(table)
    console.print(f"{out} (content sha256 {snapshot.content_hash[:16]}...)")
    for frame_id, reason in snapshot.left_out.items():
        errors.print(f"left out {frame_id}: {reason}")

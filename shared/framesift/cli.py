"""The ``framesift`` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from framesift.config import Backend, Settings
from framesift.logs import configure_logging

app = typer.Typer(
    help="Turn raw video into a labeled, queryable vision dataset.", no_args_is_help=True
)
dev = typer.Typer(
    help="The local emulated GCP stack (Pub/Sub, Firestore, GCS, BigQuery, functions)."
)
app.add_typer(dev, name="dev")
console = Console()


@app.command()
def run(
    paths: Annotated[list[Path], typer.Argument(help="Videos or folders of videos.", exists=True)],
    workdir: Annotated[
        Path, typer.Option(help="Folder for buckets, documents and warehouse.")
    ] = Path(".framesift/embedded"),
    collector: Annotated[
        str, typer.Option(help="Collector id the videos are filed under.")
    ] = "local",
    every: Annotated[float, typer.Option(help="Keep one frame every N seconds.", min=0.001)] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run the pipeline in embedded mode: no cloud account, everything under WORKDIR."""
    from framesift.local import EmbeddedPipeline

    settings = Settings(backend=Backend.EMBEDDED, workdir=workdir, sample_every_seconds=every)
    configure_logging("WARNING")
    pipeline = EmbeddedPipeline(settings)
    summary = pipeline.run(paths, collector)
    rows = [
        {
            "video": r.video_doc_id or "",
            "outcome": r.outcome.value,
            "frames": r.frames,
            "reason": r.reason,
        }
        for r in summary.results
    ]
    if as_json:
        totals = {
            "frames": summary.frames,
            "kept": summary.kept,
            "dropped": summary.dropped,
            "labeling_tasks": summary.tasks,
        }
        print(json.dumps({"videos": rows, **totals, **summary.counts()}))
    else:
        table = Table("video", "outcome", "frames", "reason")
        for row in rows:
            table.add_row(*(str(value) for value in row.values()))
        console.print(table)
        frames_dir = workdir / "buckets" / settings.frames_bucket
        console.print(
            f"{summary.frames} frames sampled into {frames_dir}: {summary.kept} kept, "
            f"{summary.dropped} dropped as duplicates; {summary.tasks} labeling tasks in "
            f"{frames_dir / 'manifests'}; warehouse tables in {workdir / 'warehouse.duckdb'}"
        )
    if summary.counts().get("failed") or summary.dead_letters:
        raise typer.Exit(1)


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="The file of annotations.", exists=True)],
    vendor: Annotated[str, typer.Option(help="scale (saved callbacks) or labelstudio (export).")],
) -> None:
    """Store annotations from a Label Studio JSON export or saved Scale callbacks, exactly as
    their webhooks would (FRAMESIFT_* settings pick the document store)."""
    from framesift.ingest import ingest_file
    from framesift.wiring import build_adapters

    settings = Settings()
    configure_logging("WARNING")
    result = ingest_file(path, vendor, build_adapters(settings).documents)
    console.print(f"{result.annotations} annotations read, {result.stored} stored or updated")


@app.command()
def reconcile() -> None:
    """Pull from Label Studio the annotations of frames still 'requested' (a lost webhook)."""
    from framesift.ingest import reconcile_labelstudio
    from framesift.wiring import build_adapters

    settings = Settings()
    configure_logging("WARNING")
    result = reconcile_labelstudio(settings, build_adapters(settings).documents)
    console.print(f"{result.annotations} annotations found, {result.stored} were missing")


@app.command("export-warehouse")
def export_warehouse(
    full: Annotated[
        bool, typer.Option("--full", help="Re-export every document, and mark vanished ones.")
    ] = False,
) -> None:
    """Export documents changed since the last run to the warehouse (FRAMESIFT_* settings)."""
    from framesift.stages.exporter import Exporter
    from framesift.wiring import build_adapters

    settings = Settings()
    configure_logging("WARNING")
    result = Exporter(build_adapters(settings), settings).run(full=full)
    if result.skipped:
        console.print("another export holds the lease; nothing done")
        raise typer.Exit(1)
    table = Table("table", "rows merged")
    for name, count in result.rows.items():
        table.add_row(name, str(count))
    console.print(table)
    console.print(f"{result.rejected} documents rejected, {result.tombstoned} rows marked deleted")


@app.command("export")
def export_dataset(
    layout: Annotated[str, typer.Option("--format", help="coco or yolo.")],
    out: Annotated[Path, typer.Option(help="Folder for the snapshot (created).")],
    seed: Annotated[int, typer.Option(help="Seed of the train/val/test split by video.")] = 0,
    split: Annotated[
        str, typer.Option(help="Train, val and test fractions, comma-separated.")
    ] = "0.8,0.1,0.1",
) -> None:
    """Write the labeled frames and their boxes from the warehouse as a COCO or YOLO dataset,
    split by video, with a manifest (query, time, counts, content hash)."""
    from framesift.snapshot import Layout, write_snapshot
    from framesift.wiring import build_adapters

    settings = Settings()
    configure_logging("WARNING")
    adapters = build_adapters(settings)
    snapshot = write_snapshot(
        adapters.warehouse,
        adapters.blobs,
        out,
        Layout(layout),
        settings.labeling_classes,
        seed=seed,
        fractions=[float(part) for part in split.split(",")],
    )
    table = Table("split", "images", "boxes", "videos")
    for name, counts in snapshot.counts.items():
        table.add_row(name, *(str(counts[k]) for k in ("images", "boxes", "videos")))
    console.print(table)
    console.print(f"{out} (content sha256 {snapshot.content_hash[:16]}...)")


@app.command("make-sample")
def make_sample(
    path: Annotated[Path, typer.Argument(help="Where to write the video.")] = Path("sample.mp4"),
    seconds: Annotated[float, typer.Option(min=0.1)] = 10.0,
) -> None:
    """Generate a short H.264 test video with ffmpeg (nothing is downloaded)."""
    from framesift.media import generate_test_video

    path.parent.mkdir(parents=True, exist_ok=True)
    generate_test_video(str(path), seconds=seconds)
    console.print(f"wrote {path}")


@dev.command("up")
def dev_up() -> None:
    """Start the emulators and functions on free loopback ports; print the environment."""
    from framesift.devstack import DevStack, DevStackError

    try:
        state = DevStack().up()
    except DevStackError as exc:
        console.print(f"[red]dev stack failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    for service in state.services:
        console.print(
            f"{service.name:>20}  127.0.0.1:{service.port}  (pid {service.pid}, log {service.log})",
            highlight=False,
        )
    console.print("\n# to use it from this shell:")
    for key, value in state.env.items():
        print(f"export {key}={value}")


@dev.command("down")
def dev_down() -> None:
    """Stop every process of the stack."""
    from framesift.devstack import DevStack

    stopped = DevStack().down()
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@dev.command("status")
def dev_status() -> None:
    """Say which services of the stack are up."""
    from framesift.devstack import DevStack

    status = DevStack().status()
    if not status:
        console.print("no stack is running")
        raise typer.Exit(1)
    for name, up in status.items():
        console.print(f"{name:>20}  {'up' if up else 'DOWN'}")
    if not all(status.values()):
        raise typer.Exit(1)

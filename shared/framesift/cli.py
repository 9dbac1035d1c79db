"""The ``framesift`` command line."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from framesift.config import Backend, Settings, Vendor
from framesift.logs import configure_logging
from framesift.sampling import SamplingMode
from framesift.snapshot import Layout
from framesift.topology import Collections

if TYPE_CHECKING:
    from framesift.ingest import IngestResult
    from framesift.serve import LocalServer

app = typer.Typer(
    help="Turn raw video into a labeled, queryable vision dataset.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
dev = typer.Typer(
    help="The local emulated GCP stack (Pub/Sub, Firestore, GCS, BigQuery, functions)."
)
app.add_typer(dev, name="dev")
console = Console()
errors = Console(stderr=True)
_debug = {"on": False}

BENCHMARKS = {
    "sample": ["benchmarks/sample.py"],
    "dedup": ["benchmarks/dedup_quality.py", "benchmarks/dedup_lookup.py"],
    "export": ["benchmarks/export.py"],
    "cold-start": ["benchmarks/cold_start.py"],
    "inference": ["benchmarks/inference.py"],
}


@app.callback()
def options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and debug logs on errors.")
    ] = False,
) -> None:
    """framesift: videos in, a labeled dataset out (embedded by default: no cloud needed)."""
    _debug["on"] = debug


def main() -> None:
    """The console script: one clear line per error unless --debug."""
    try:
        app()
    except Exception as exc:
        if _debug["on"]:
            raise
        errors.print(f"[red]error:[/red] {_explain(exc)}", highlight=False)
        raise SystemExit(1) from None


def _explain(exc: Exception) -> str:
    from framesift.errors import PermanentError

    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename or exc}: no such file. Check the path."
    if isinstance(exc, PermanentError | ValueError):
        return f"{exc}"
    return f"{type(exc).__name__}: {exc} (run again with --debug for the traceback)"


def _settings(**overrides: object) -> Settings:
    """The settings from FRAMESIFT_* variables, with the options given on the command line (an
    option left out is None, and leaves the variable's value or the settings' default)."""
    configure_logging("DEBUG" if _debug["on"] else "WARNING", "stderr")
    given = {name: value for name, value in overrides.items() if value is not None}
    return Settings(**given)  # type: ignore[arg-type]


def _default(field: str) -> str:
    """An option's help suffix naming its setting and default, declared once in Settings."""
    info = Settings.model_fields[field]
    return f" [FRAMESIFT_{field.upper()}, default {info.get_default(call_default_factory=True)}]"


@app.command()
def run(
    paths: Annotated[
        list[Path], typer.Argument(help="Videos, photos, or folders of them.", exists=True)
    ],
    workdir: Annotated[
        Path | None,
        typer.Option(help="Folder for buckets, documents and warehouse [FRAMESIFT_WORKDIR]."),
    ] = None,
    collector: Annotated[
        str, typer.Option(help="Collector id the videos are filed under.")
    ] = "local",
    mode: Annotated[
        SamplingMode | None,
        typer.Option(help="Which frames the sampler keeps." + _default("sample_mode")),
    ] = None,
    every: Annotated[
        float | None,
        typer.Option(
            help="every_seconds: one frame per N s." + _default("sample_every_seconds"),
            min=0.001,
        ),
    ] = None,
    every_frames: Annotated[
        int | None,
        typer.Option(
            help="every_frames: one frame per N." + _default("sample_every_frames"), min=1
        ),
    ] = None,
    scene: Annotated[
        float | None,
        typer.Option(
            help="scene: the change score (0..1) that is a cut." + _default("scene_threshold"),
            min=0.01,
        ),
    ] = None,
    threshold: Annotated[
        int | None,
        typer.Option(
            help="Dedup: pHash bits within which frames are duplicates."
            + _default("dedup_threshold"),
            min=0,
        ),
    ] = None,
    vendor: Annotated[
        Vendor | None,
        typer.Option(help="Where labeling tasks go." + _default("labeling_vendor")),
    ] = None,
    price: Annotated[
        float | None,
        typer.Option(
            help="USD per labeling task, for the cost estimate."
            + _default("labeling_price_per_task"),
            min=0,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="An ONNX detector (a path or gs://) that pre-labels each kept frame and ranks "
            "frames by its uncertainty [FRAMESIFT_MODEL_URI].",
        ),
    ] = None,
    budget: Annotated[
        int | None,
        typer.Option(
            help="Label at most N frames this run, the most uncertain first plus an audit "
            "share drawn at random; the rest are skipped with their score"
            + _default("labeling_budget"),
            min=0,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    serve: Annotated[
        bool | None,
        typer.Option(
            "--serve/--no-serve",
            help="Serve frames and the webhook for the vendor during and after the run, until "
            "Ctrl-C (default: with scale or labelstudio, see `framesift serve`).",
        ),
    ] = None,
) -> None:
    """Run the whole pipeline in embedded mode: no cloud account, everything under WORKDIR."""
    from framesift.bootstrap import build_adapters
    from framesift.embedded import EmbeddedPipeline
    from framesift.naming import iter_inputs
    from framesift.serve import LocalServer

    settings = _settings(
        backend=Backend.EMBEDDED,
        workdir=workdir,
        sample_mode=mode,
        sample_every_seconds=every,
        sample_every_frames=every_frames,
        scene_threshold=scene,
        dedup_threshold=threshold,
        labeling_vendor=vendor,
        labeling_price_per_task=price,
        model_uri=model,
        labeling_budget=budget,
    )
    server = None
    if serve or (serve is None and settings.labeling_vendor is not Vendor.MANIFEST):
        server = LocalServer(
            settings, build_adapters(settings), settings.serve_host, settings.serve_port
        ).start()
        settings = server.settings_for(settings)
    pipeline = EmbeddedPipeline(settings)
    inputs = list(iter_inputs(paths))
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=errors,
        disable=as_json,
        transient=True,
    ) as progress:
        bars = {path: progress.add_task(path.name, total=1) for path in inputs}
        summary = pipeline.run(inputs, collector, done=lambda p: progress.advance(bars[p]))
    report = {
        "videos": [
            {
                "source": r.source,
                "video": r.video_doc_id or "",
                "outcome": r.outcome.value,
                "frames": r.frames,
                "reason": r.reason,
            }
            for r in summary.videos
        ],
        "photos": [
            {"source": p.source, "decision": "kept" if p.kept else ", ".join(p.dropped_by_reason)}
            for p in summary.photos
        ],
        "frames_sampled": summary.frames,
        "kept": summary.kept,
        "dropped": summary.dropped_by_reason(),
        "labeling_tasks": summary.tasks,
        "skipped_by_policy": summary.skipped,
        "estimated_cost_usd": round(summary.tasks * settings.labeling_price_per_task, 4),
        "saved_usd": round(
            (summary.dropped + summary.skipped) * settings.labeling_price_per_task, 4
        ),
        "dead_letters": summary.dead_letters,
        "workdir": str(settings.workdir),
    }
    if as_json:
        print(json.dumps(report))
    else:
        _print_run(report, settings)
    if server is not None:
        _serve_until_interrupted(server, settings)
    if summary.counts().get("failed") or summary.dead_letters:
        raise typer.Exit(1)


@app.command("serve")
def serve_command() -> None:
    """Serve the embedded store's frames and the webhook over HTTP until Ctrl-C, for a vendor
    (Label Studio, Scale) labeling what `framesift run` sent (FRAMESIFT_SERVE_HOST and
    FRAMESIFT_SERVE_PORT; FRAMESIFT_IMAGE_BASE_URL and FRAMESIFT_WEBHOOK_URL when a tunnel or
    proxy is in front of it)."""
    from framesift.bootstrap import build_adapters
    from framesift.serve import LocalServer

    settings = _settings(backend=Backend.EMBEDDED)
    server = LocalServer(
        settings, build_adapters(settings), settings.serve_host, settings.serve_port
    )
    _serve_until_interrupted(server.start(), server.settings_for(settings))


def _serve_until_interrupted(server: LocalServer, settings: Settings) -> None:
    errors.print(
        f"serving frames at {settings.image_base_url} and the webhook at "
        f"{settings.webhook_url}/{{scale,labelstudio}}; Ctrl-C to stop"
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _print_run(report: dict, settings: Settings) -> None:
    videos = Table("source", "video", "outcome", "frames", "reason", title="videos")
    for row in report["videos"]:
        videos.add_row(*(str(value) for value in row.values()))
    console.print(videos)
    if report["photos"]:
        photos = Table("source", "decision", title="photos")
        for row in report["photos"]:
            photos.add_row(*(str(value) for value in row.values()))
        console.print(photos)
    totals = Table("", "", title="summary", show_header=False)
    totals.add_row("frames sampled", str(report["frames_sampled"]))
    if report["photos"]:
        totals.add_row("photos", str(len(report["photos"])))
    totals.add_row("kept", str(report["kept"]))
    for reason, count in report["dropped"].items():
        totals.add_row(f"dropped: {reason}", str(count))
    totals.add_row(f"labeling tasks ({settings.labeling_vendor})", str(report["labeling_tasks"]))
    if report["skipped_by_policy"]:
        totals.add_row("skipped by the selection policy", str(report["skipped_by_policy"]))
    totals.add_row("estimated labeling cost", f"${report['estimated_cost_usd']:.2f}")
    totals.add_row("saved by dedup and selection", f"${report['saved_usd']:.2f}")
    console.print(totals)
    workdir = Path(report["workdir"])
    console.print(
        f"frames and manifests in {workdir / 'buckets' / settings.frames_bucket}; "
        f"warehouse in {workdir / 'warehouse.duckdb'}"
    )


@app.command()
def upload(
    paths: Annotated[
        list[Path], typer.Argument(help="Videos, photos, or folders of them.", exists=True)
    ],
    collector: Annotated[str, typer.Option(help="The capture device or collector id.")],
) -> None:
    """Upload to the raw bucket as {collector}/{video_id}.ext, resumably, with progress
    (FRAMESIFT_BACKEND=gcp; the bucket's notification starts the pipeline)."""
    from framesift.naming import iter_inputs
    from framesift.upload import upload_file

    settings = _settings()
    inputs = list(iter_inputs(paths))
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
    ) as progress:
        for path in inputs:
            task = progress.add_task(path.name, total=path.stat().st_size)

            def sent(count: int, task: TaskID = task) -> None:
                progress.update(task, completed=count)

            name = upload_file(settings, path, collector, sent)
            progress.console.print(f"gs://{settings.raw_bucket}/{name}")


@app.command()
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
    from framesift.report import model_agreement, write_report
    from framesift.warehouse.schemas import ALL_TABLES
    from framesift.warehouse.views import views

    embedded = {"backend": Backend.EMBEDDED, "workdir": workdir} if workdir else {}
    settings = _settings(**embedded)
    adapters = build_adapters(settings)
    documents = adapters.documents
    if collector:
        videos = [doc["id"] for doc in documents.where(Collections.VIDEOS, "collector", collector)]
        frames = documents.where(Collections.FRAMES, "collector", collector)
        images = [doc["id"] for doc in frames if doc.get("source") == "image"]
    else:
        videos = [doc["id"] for doc in documents.changed_since(Collections.VIDEOS, None)]
        images = [doc["id"] for doc in documents.where(Collections.FRAMES, "source", "image")]
    warehouse = adapters.warehouse
    warehouse.ensure_tables(ALL_TABLES)
    warehouse.ensure_views(views(settings.labeling_price_per_task))
    agreement = model_agreement(warehouse)
    sheets = write_report(adapters.documents, adapters.blobs, videos + images, out, agreement)
    table = Table("source", "id", "frames", "kept", "sheet")
    for sheet in sheets:
        table.add_row(
            sheet.source, sheet.video_doc_id, str(sheet.frames), str(sheet.kept), str(sheet.path)
        )
    console.print(table)
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


@app.command()
def bench(
    which: Annotated[
        str,
        typer.Argument(help=f"{', '.join(BENCHMARKS)}; several joined by commas (sample,dedup)."),
    ],
    args: Annotated[
        list[str] | None, typer.Argument(help="Passed on to each benchmark (after --).")
    ] = None,
) -> None:
    """Run benchmarks from benchmarks/ (needs a clone of the repository and the bench extra)."""
    import subprocess

    names = which.split(",")
    if unknown := [name for name in names if name not in BENCHMARKS]:
        raise ValueError(f"no benchmark {unknown[0]!r}: choose {', '.join(BENCHMARKS)}")
    root = Path(__file__).resolve().parents[2]
    scripts = [root / script for name in names for script in BENCHMARKS[name]]
    if missing := [script for script in scripts if not script.exists()]:
        raise FileNotFoundError(missing[0])
    for script in scripts:
        subprocess.run([sys.executable, str(script), *(args or [])], check=True, cwd=root)


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="The file of annotations.", exists=True)],
    vendor: Annotated[str, typer.Option(help="scale (saved callbacks) or labelstudio (export).")],
) -> None:
    """Store annotations from a Label Studio JSON export or saved Scale callbacks, exactly as
    their webhooks would (FRAMESIFT_* settings pick the document store)."""
    from framesift.bootstrap import build_adapters
    from framesift.ingest import ingest_file

    settings = _settings()
    result = ingest_file(path, vendor, build_adapters(settings).documents, settings)
    _print_ingest(result, "read")


@app.command()
def reconcile() -> None:
    """Bring the stored annotations to the vendor's state for every frame sent: what lost or
    refused callbacks missed, updates, skips and deletions (Label Studio or Scale)."""
    from framesift.bootstrap import build_adapters
    from framesift.ingest import reconcile as reconcile_with_vendor

    settings = _settings()
    result = reconcile_with_vendor(settings, build_adapters(settings).documents)
    _print_ingest(result, "at the vendor")


def _print_ingest(result: IngestResult, where: str) -> None:
    console.print(
        f"{result.annotations} annotations {where}, {result.stored} stored or updated, "
        f"{result.deleted} marked deleted, {len(result.refused)} refused"
    )
    for refusal in result.refused:
        errors.print(f"refused: {refusal}")
    if result.refused:
        raise typer.Exit(1)


@app.command("export-warehouse")
def export_warehouse(
    full: Annotated[
        bool, typer.Option("--full", help="Re-export every document, and mark vanished ones.")
    ] = False,
) -> None:
    """Export documents changed since the last run to the warehouse (FRAMESIFT_* settings)."""
    from framesift import bootstrap

    settings = _settings()
    result = bootstrap.exporter(bootstrap.build_adapters(settings), settings).run(full=full)
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

    settings = _settings()
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


@app.command("replay-dead-letters")
def replay_dead_letters(
    subscriber: Annotated[
        str | None, typer.Option(help="Only this function's (sampler, dedup, labeler, ...).")
    ] = None,
) -> None:
    """Publish the dead letters not replayed yet to their topics again (after fixing the cause
    they record): the functions' own (the dead_letters collection) and, on Google Cloud, the
    messages Pub/Sub itself dead-lettered (held by the dead-letter topics' subscriptions).
    FRAMESIFT_* settings pick the backend."""
    from framesift.bootstrap import build_adapters
    from framesift.delivery import replay, replay_held

    settings = _settings()
    if settings.backend is Backend.EMBEDDED:  # the stages run here, on the in-process topics
        from framesift.embedded import EmbeddedPipeline

        pipeline = EmbeddedPipeline(settings)
        count = replay(pipeline.adapters.documents, pipeline.publisher, subscriber)
        pipeline.publisher.drain()
        console.print(f"{count} dead letters published again")
        return
    from framesift.adapters.gcp.pubsub import PubSubHeldMessages

    adapters = build_adapters(settings)
    count = replay(adapters.documents, adapters.publisher, subscriber)
    held = replay_held(PubSubHeldMessages(settings.project), adapters.publisher, subscriber)
    console.print(
        f"{count} dead letters published again, and {held} that Pub/Sub had dead-lettered"
    )


@app.command("make-sample")
def make_sample(
    path: Annotated[Path, typer.Argument(help="Where to write the video.")] = Path("sample.mp4"),
    seconds: Annotated[float, typer.Option(min=0.1)] = 10.0,
) -> None:
    """Generate a short H.264 test video with ffmpeg (nothing is downloaded)."""
    from framesift_dev.testvideo import generate_test_video

    path.parent.mkdir(parents=True, exist_ok=True)
    generate_test_video(str(path), seconds=seconds)
    console.print(f"wrote {path}")


@dev.command("up")
def dev_up() -> None:
    """Start the emulators and functions on free loopback ports; print the environment."""
    from framesift_dev.devstack import DevStack, DevStackError

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
    from framesift_dev.devstack import DevStack

    stopped = DevStack().down()
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@dev.command("status")
def dev_status() -> None:
    """Say which services of the stack are up."""
    from framesift_dev.devstack import DevStack

    status = DevStack().status()
    if not status:
        console.print("no stack is running")
        raise typer.Exit(1)
    for name, up in status.items():
        console.print(f"{name:>20}  {'up' if up else 'DOWN'}")
    if not all(status.values()):
        raise typer.Exit(1)

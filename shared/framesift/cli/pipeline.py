"""``framesift run`` and ``framesift serve``: the embedded pipeline, and the frames and the
webhook served to a vendor labeling what it sent."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from framesift.cli.options import console, default, errors, settings_from
from framesift.config import Backend, Settings, Vendor
from framesift.sampling import SamplingMode

if TYPE_CHECKING:
    from framesift.runreport import RunReport
    from framesift.serve import LocalServer


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
        typer.Option(help="Which frames the sampler keeps." + default("sample_mode")),
    ] = None,
    every: Annotated[
        float | None,
        typer.Option(
            help="every_seconds: one frame per N s." + default("sample_every_seconds"),
            min=0.001,
        ),
    ] = None,
    every_frames: Annotated[
        int | None,
        typer.Option(help="every_frames: one frame per N." + default("sample_every_frames"), min=1),
    ] = None,
    scene: Annotated[
        float | None,
        typer.Option(
            help="scene: the change score (0..1) that is a cut." + default("scene_threshold"),
            min=0.01,
        ),
    ] = None,
    threshold: Annotated[
        int | None,
        typer.Option(
            help="Dedup: pHash bits within which frames are duplicates."
            + default("dedup_threshold"),
            min=0,
        ),
    ] = None,
    vendor: Annotated[
        Vendor | None,
        typer.Option(help="Where labeling tasks go." + default("labeling_vendor")),
    ] = None,
    price: Annotated[
        float | None,
        typer.Option(
            help="USD per labeling task, for the cost estimate."
            + default("labeling_price_per_task"),
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
            + default("labeling_budget"),
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
    from framesift.runreport import run_report
    from framesift.serve import LocalServer

    settings = settings_from(
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
    # The server reads the secrets kept in the workdir at each call (so they can rotate),
    # the labeler the one it registers.
    given, settings = settings, _with_webhook_secret(settings)
    server = None
    if serve or (serve is None and settings.labeling_vendor is not Vendor.MANIFEST):
        server = LocalServer(
            given, build_adapters(settings), settings.serve_host, settings.serve_port
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
    report = run_report(summary, pipeline.adapters.warehouse, settings.workdir)
    if as_json:
        print(json.dumps(report.model_dump()))
    else:
        _print_run(report, settings)
    if server is not None:
        _serve_until_interrupted(server, settings)
    if summary.counts().get("failed") or summary.dead_letters or summary.refused:
        raise typer.Exit(1)


def serve() -> None:
    """Serve the embedded store's frames and the webhook over HTTP until Ctrl-C, for a vendor
    (Label Studio, Scale) labeling what `framesift run` sent (FRAMESIFT_SERVE_HOST and
    FRAMESIFT_SERVE_PORT; FRAMESIFT_IMAGE_BASE_URL and FRAMESIFT_WEBHOOK_URL when a tunnel or
    proxy is in front of it)."""
    from framesift.bootstrap import build_adapters
    from framesift.serve import LocalServer

    settings = settings_from(backend=Backend.EMBEDDED)
    _with_webhook_secret(settings)  # generated if need be, then read at each call
    server = LocalServer(
        settings, build_adapters(settings), settings.serve_host, settings.serve_port
    )
    _serve_until_interrupted(server.start(), server.settings_for(settings))


def _with_webhook_secret(settings: Settings) -> Settings:
    """With Label Studio, ``settings`` with a webhook secret: a webhook registered without
    one would have every call refused (one is generated and kept in the workdir if unset)."""
    from framesift.webhook_secrets import ensure_local_secret

    if settings.labeling_vendor is not Vendor.LABELSTUDIO:
        return settings
    settings, kept_in = ensure_local_secret(settings)
    if kept_in is not None:
        errors.print(
            f"Label Studio's webhook secret is kept in {kept_in} (readable by you only; "
            "set FRAMESIFT_LABELSTUDIO_WEBHOOK_SECRET to use your own)"
        )
    return settings


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


def _print_run(report: RunReport, settings: Settings) -> None:
    videos = Table(
        "source",
        "video",
        "outcome",
        "frames",
        "reason",
        "index reads",
        "index writes",
        title="videos",
    )
    for video in report.videos:
        videos.add_row(*(str(value) for value in video.model_dump().values()))
    console.print(videos)
    if report.photos:
        photos = Table("source", "decision", title="photos")
        for photo in report.photos:
            photos.add_row(*(str(value) for value in photo.model_dump().values()))
        console.print(photos)
    for row in report.refused:  # one whole line each, on stderr as a command's errors are
        errors.print(
            f"[red]refused, not uploaded:[/red] {row.input}: {row.reason}",
            highlight=False,
            soft_wrap=True,
        )
    totals = Table("", "", title="summary", show_header=False)
    totals.add_row("frames sampled", str(report.frames_sampled))
    if report.photos:
        totals.add_row("photos", str(len(report.photos)))
    totals.add_row("kept", str(report.kept))
    for reason, count in report.dropped.items():
        totals.add_row(f"dropped: {reason}", str(count))
    totals.add_row(f"labeling tasks ({settings.labeling_vendor})", str(report.labeling_tasks))
    if report.skipped_by_policy:
        totals.add_row("skipped by the selection policy", str(report.skipped_by_policy))
    totals.add_row("estimated labeling cost", f"${report.estimated_cost_usd:.2f}")
    totals.add_row("saved by dedup and selection", f"${report.saved_usd:.2f}")
    for name, count in (
        ("dedup index reads", report.dedup_index_reads),
        ("dedup index writes", report.dedup_index_writes),
    ):
        hourly = report.per_video_hour(count)
        totals.add_row(name, f"{count}" + (f" ({hourly:,.0f} per video-hour)" if hourly else ""))
    console.print(totals)
    workdir = Path(report.workdir)
    console.print(
        f"frames and manifests in {workdir / 'buckets' / settings.frames_bucket}; "
        f"warehouse in {workdir / 'warehouse.duckdb'}"
    )

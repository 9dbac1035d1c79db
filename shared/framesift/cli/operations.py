"""Running the pipeline's operations: uploads from a capture device, dead letters replayed,
the benchmarks, and a test video."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)

from framesift.bench import BENCHMARKS
from framesift.cli.options import console, settings_from


def upload(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Videos, photos, drone .SRT files, or folders of them.", exists=True),
    ],
    collector: Annotated[str, typer.Option(help="The capture device or collector id.")],
) -> None:
    """Upload to the raw bucket as {collector}/{video_id}.ext, resumably, with progress
    (FRAMESIFT_BACKEND=gcp; the bucket's notification starts the pipeline). A drone's .SRT
    beside a video goes first, or alone when named."""
    from framesift.naming import iter_inputs
    from framesift.track import with_sidecars
    from framesift.upload import upload_file

    settings = settings_from()
    # Each video's sidecar before it, so the sampler finds it when it plans the video.
    inputs = with_sidecars(iter_inputs(paths))
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


def bench(
    which: Annotated[
        str,
        typer.Argument(help=f"{', '.join(BENCHMARKS)}; several joined by commas (sample,dedup)."),
    ],
    args: Annotated[
        list[str] | None, typer.Argument(help="Passed on to each benchmark (--json, --sizes...).")
    ] = None,
) -> None:
    """Run benchmarks: index and false-matches from the installed package, the others from
    benchmarks/ (a clone of the repository and the bench extra)."""
    from framesift.bench import run_benchmarks

    run_benchmarks(which.split(","), args or [])


def replay_dead_letters(
    subscriber: Annotated[
        str | None, typer.Option(help="Only this function's (sampler, dedup, labeler, ...).")
    ] = None,
) -> None:
    """Publish the dead letters not replayed yet to their topics again (after fixing the cause
    they record): the functions' own (the dead_letters collection) and, on Google Cloud, the
    messages Pub/Sub itself dead-lettered (held by the dead-letter topics' subscriptions).
    FRAMESIFT_* settings pick the backend."""
    from framesift.deadletters import replay_dead_letters as replay

    replayed = replay(settings_from(), subscriber, say=console.print)
    if replayed.held is None:
        console.print(f"{replayed.dead_letters} dead letters published again")
    else:
        console.print(
            f"{replayed.dead_letters} dead letters published again, and {replayed.held} that"
            " Pub/Sub had dead-lettered"
        )


def migrate_dedup_index(
    workdir: Annotated[
        Path | None,
        typer.Option(help="An embedded run's folder (given: its documents, embedded)."),
    ] = None,
) -> None:
    """Move the dataset scopes' near-duplicate index from an earlier release's buckets into
    chains (docs/dedup-index.md), then stop reading the buckets. Decisions do not change; safe
    to run while the functions run, to stop, and to run again (it resumes; a second run does
    nothing). FRAMESIFT_* settings pick the backend."""
    from framesift import datasetindex
    from framesift.bootstrap import build_adapters
    from framesift.config import Backend
    from framesift.dedupmigration import migrate

    embedded = {"backend": Backend.EMBEDDED, "workdir": workdir} if workdir else {}
    settings = settings_from(**embedded)
    documents = build_adapters(settings).documents
    done = migrate(documents, datasetindex.shape(settings), console.print)
    console.print(
        f"{len(done.scopes)} dataset scopes, {done.buckets} buckets: {done.migrated} migrated"
        f" now ({done.entries} entries added), the others before; buckets retired"
    )
    if done.legacy_read_until:
        console.print(
            f"tiered: {len(done.tail_scopes)} scopes' chains, {done.legacy_leaves} leaves:"
            f" {done.legacy_migrated} copied into the tail now ({done.tail_entries} entries"
            f" added), the others before; read exactly until"
            f" {done.legacy_read_until:%Y-%m-%d %H:%M} UTC"
        )


def make_sample(
    path: Annotated[Path, typer.Argument(help="Where to write the video.")] = Path("sample.mp4"),
    seconds: Annotated[float, typer.Option(min=0.1)] = 10.0,
) -> None:
    """Generate a short H.264 test video with ffmpeg (nothing is downloaded)."""
    from framesift_dev.testvideo import generate_test_video

    path.parent.mkdir(parents=True, exist_ok=True)
    generate_test_video(str(path), seconds=seconds)
    console.print(f"wrote {path}")

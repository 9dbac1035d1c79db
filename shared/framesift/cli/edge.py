"""``framesift edge``: the edge agent (framesift.edge), its journal's status."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from framesift.cli.options import console, settings_from

if TYPE_CHECKING:
    from framesift.edge.agent import EdgeAgent, EdgeConfig
    from framesift.edge.journal import VideoEntry

edge = typer.Typer(
    help="Sample and dedup videos where they are recorded; upload only the kept frames "
    "(docs/edge.md)."
)

StateDir = Annotated[
    Path,
    typer.Option(envvar="FRAMESIFT_EDGE_STATE_DIR", help="The agent's journal and local windows."),
]
Collector = Annotated[
    str,
    typer.Option(
        envvar="FRAMESIFT_EDGE_COLLECTOR", help="Collector id the videos are filed under."
    ),
]
EdgeId = Annotated[
    str | None,
    typer.Option(envvar="FRAMESIFT_EDGE_ID", help="This edge's id (default: the host name)."),
]
StableSeconds = Annotated[
    float,
    typer.Option(
        envvar="FRAMESIFT_EDGE_STABLE_SECONDS",
        help="A file is taken once unchanged (size and time) for this long.",
        min=0,
    ),
]
MaxUploadRate = Annotated[
    float | None,
    typer.Option(
        envvar="FRAMESIFT_EDGE_MAX_UPLOAD_RATE",
        help="Bandwidth cap, bytes per second (default: none).",
        min=1,
    ),
]
RetrySeconds = Annotated[
    float,
    typer.Option(
        envvar="FRAMESIFT_EDGE_RETRY_SECONDS",
        help="How long a cloud write is retried before its video waits for the next pass.",
        min=0,
    ),
]
WindowHours = Annotated[
    float,
    typer.Option(
        envvar="FRAMESIFT_EDGE_LOCAL_WINDOW_HOURS",
        help="The local dedup index remembers the videos of this window.",
        min=0.001,
    ),
]
PollSeconds = Annotated[
    float, typer.Option(envvar="FRAMESIFT_EDGE_POLL_SECONDS", help="Between passes.", min=0.01)
]

_STATE_DIR = Path(".framesift/edge")


def _agent(config: EdgeConfig) -> EdgeAgent:
    """The agent for the deployment FRAMESIFT_* names: Google's (or the emulators'), or an
    embedded workdir, whose pipeline is drained after each video."""
    from framesift.bootstrap import build_adapters
    from framesift.config import Backend
    from framesift.edge.agent import EdgeAgent

    settings = settings_from()
    if settings.backend is Backend.EMBEDDED:
        from framesift.embedded import EmbeddedPipeline

        pipeline = EmbeddedPipeline(settings)
        return EdgeAgent(config, settings, pipeline.adapters, pipeline.publisher.drain)
    return EdgeAgent(config, settings, build_adapters(settings))


@edge.command("run")
def edge_run(
    paths: Annotated[list[Path] | None, typer.Argument(help="Videos, or folders of them.")] = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Keep taking the videos that appear in the folders, until Ctrl-C.",
        ),
    ] = False,
    rabbitmq_url: Annotated[
        str | None,
        typer.Option(
            envvar="FRAMESIFT_EDGE_RABBITMQ_URL",
            help='Take the files announced on RabbitMQ ({"path": ...} messages), until Ctrl-C: '
            "amqp://user:password@host:5672/vhost (best from the variable: it holds a secret).",
            show_default=False,
        ),
    ] = None,
    rabbitmq_queue: Annotated[
        str,
        typer.Option(
            envvar="FRAMESIFT_EDGE_RABBITMQ_QUEUE",
            help="The queue announcing files; poison messages go to {queue}.dead-letter.",
        ),
    ] = "framesift-videos",
    state_dir: StateDir = _STATE_DIR,
    collector: Collector = "edge",
    edge_id: EdgeId = None,
    stable_seconds: StableSeconds = 5.0,
    max_upload_rate: MaxUploadRate = None,
    retry_seconds: RetrySeconds = 300.0,
    local_window_hours: WindowHours = 24.0,
    poll_seconds: PollSeconds = 2.0,
) -> None:
    """Take these videos to the deployment (each once it stops growing); returns once each is
    done or failed (a video put off by an outage is taken up again meanwhile), or with
    --watch or --rabbitmq-url never. Exit 1 if one failed."""
    from framesift.edge.agent import EdgeConfig

    if rabbitmq_url and (watch or paths):
        # The queue is read until Ctrl-C: the folders would never be looked at.
        raise typer.BadParameter(
            "--rabbitmq-url takes the announced files only: give no paths and no --watch "
            "(run a second agent, with its own --state-dir, for the folders)"
        )
    config = EdgeConfig(
        edge_id=edge_id or socket.gethostname(),
        collector=collector,
        state_dir=state_dir,
        stable_seconds=stable_seconds,
        max_upload_rate=max_upload_rate,
        retry_seconds=retry_seconds,
        local_window_hours=local_window_hours,
        poll_seconds=poll_seconds,
    )
    agent = _agent(config)
    if rabbitmq_url or watch:
        from framesift.edge.announcements import Announcements

        try:
            if rabbitmq_url:
                agent.consume(Announcements(rabbitmq_url, rabbitmq_queue))
            else:
                agent.watch(paths or [])
        except KeyboardInterrupt:
            return
    if not paths:
        raise typer.BadParameter("give the videos, or --rabbitmq-url to take announced ones")
    entries = agent.run(paths)
    _print_entries(entries)
    from framesift.edge.journal import VideoState

    if any(entry.state is VideoState.FAILED for entry in entries):
        raise typer.Exit(1)


@edge.command("status")
def edge_status(
    state_dir: StateDir = _STATE_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per video.")] = False,
) -> None:
    """Each video the agent has seen: its step, frames kept, bytes uploaded and any error."""
    from dataclasses import asdict

    from framesift.edge.journal import Journal

    journal_path = state_dir / "journal.sqlite3"
    if not journal_path.exists():
        console.print(f"no journal in {state_dir}")
        raise typer.Exit(1)
    journal = Journal(journal_path)
    entries = journal.videos()
    if as_json:
        for entry in entries:
            print(json.dumps(asdict(entry)))
        return
    _print_entries(entries)
    if superseded := journal.superseded_versions():
        table = Table("at (UTC)", "path", "video", "why", title="versions failed for a newer one")
        for at, path, video_doc_id, reason in superseded:
            table.add_row(_utc(at), path, video_doc_id, reason)
        console.print(table)
    if rejections := journal.rejections():
        table = Table("at (UTC)", "announcement", "why", title="announcements rejected")
        for at, body, reason in rejections:
            table.add_row(_utc(at), body, reason)
        console.print(table)


def _utc(at: float) -> str:
    from datetime import UTC, datetime

    return f"{datetime.fromtimestamp(at, UTC):%Y-%m-%d %H:%M:%S}"


def _print_entries(entries: list[VideoEntry]) -> None:
    table = Table("path", "state", "sampled", "kept", "uploaded bytes", "error", title="edge")
    for e in entries:
        table.add_row(
            e.path,
            e.state.value,
            str(e.frames_sampled if e.frames_sampled is not None else ""),
            str(e.frames_kept if e.frames_kept is not None else ""),
            str(e.bytes_uploaded),
            e.error or "",
        )
    console.print(table)

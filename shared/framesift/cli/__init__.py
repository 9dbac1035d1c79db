"""The ``framesift`` command line: each command parses its options and calls the module that
does the work (imported when the command runs, so `framesift --help` stays fast)."""

from __future__ import annotations

from typing import Annotated

import typer

from framesift.cli import dataset, labels, operations, pipeline
from framesift.cli.dev import dev
from framesift.cli.edge import edge
from framesift.cli.options import debug, errors

app = typer.Typer(
    help="Turn raw video into a labeled, queryable vision dataset.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(dev, name="dev")
app.add_typer(edge, name="edge")
# In the order `framesift --help` lists them.
app.command()(pipeline.run)
app.command("serve")(pipeline.serve)
app.command()(operations.upload)
app.command()(dataset.report)
# A benchmark's own options pass through (`framesift bench index --json`; `--` still works).
app.command(context_settings={"ignore_unknown_options": True})(operations.bench)
app.command()(labels.ingest)
app.command()(labels.reconcile)
app.command("replay-callbacks")(labels.replay_callbacks)
app.command("rotate-webhook-secret")(labels.rotate_webhook_secret)
app.command("export-warehouse")(dataset.export_warehouse)
app.command("export")(dataset.export_dataset)
app.command("replay-dead-letters")(operations.replay_dead_letters)
app.command("migrate-dedup-index")(operations.migrate_dedup_index)
app.command("make-sample")(operations.make_sample)


@app.callback()
def options(
    debug_on: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and debug logs on errors.")
    ] = False,
) -> None:
    """framesift: videos in, a labeled dataset out (embedded by default: no cloud needed)."""
    debug["on"] = debug_on


def main() -> None:
    """The console script: one clear line per error unless --debug."""
    try:
        app()
    except Exception as exc:
        if debug["on"]:
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

"""Annotations into the document store by hand: from files, or the vendor's whole state."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from framesift.cli.options import console, errors, settings_from

if TYPE_CHECKING:
    from framesift.ingest import IngestResult


def ingest(
    path: Annotated[Path, typer.Argument(help="The file of annotations.", exists=True)],
    vendor: Annotated[str, typer.Option(help="scale (saved callbacks) or labelstudio (export).")],
) -> None:
    """Store annotations from a Label Studio JSON export or saved Scale callbacks, exactly as
    their webhooks would (FRAMESIFT_* settings pick the document store)."""
    from framesift.bootstrap import build_adapters
    from framesift.ingest import ingest_file

    settings = settings_from()
    result = ingest_file(path, vendor, build_adapters(settings).documents, settings)
    _print_ingest(result, "read")


def reconcile(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the changes; write nothing.")
    ] = False,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            help="Go ahead when more than FRAMESIFT_RECONCILE_MAX_DELETION_SHARE of the "
            "project's live labels would be marked deleted.",
        ),
    ] = False,
) -> None:
    """Bring the stored annotations to the vendor's state for every frame sent: what lost or
    refused callbacks missed, updates, skips and deletions (Label Studio or Scale), comparing
    only the annotations of the configured project."""
    from framesift.bootstrap import build_adapters
    from framesift.ingest import TooManyDeletions
    from framesift.ingest import reconcile as reconcile_with_vendor

    settings = settings_from()
    try:
        result = reconcile_with_vendor(
            settings, build_adapters(settings).documents, dry_run=dry_run, confirmed=yes
        )
    except TooManyDeletions as exc:
        errors.print(f"reconcile stopped: {exc}")
        raise typer.Exit(1) from exc
    if dry_run:
        for change in result.changes:
            console.print(change)
        console.print(f"{len(result.changes)} changes; dry run, nothing written")
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

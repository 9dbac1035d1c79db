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


def reconcile() -> None:
    """Bring the stored annotations to the vendor's state for every frame sent: what lost or
    refused callbacks missed, updates, skips and deletions (Label Studio or Scale)."""
    from framesift.bootstrap import build_adapters
    from framesift.ingest import reconcile as reconcile_with_vendor

    settings = settings_from()
    result = reconcile_with_vendor(settings, build_adapters(settings).documents)
    _print_ingest(result, "at the vendor")


def replay_callbacks() -> None:
    """Store the callbacks the webhook kept as rejected (rejected_callbacks: refused by the
    store, 413 or 422), after fixing what their reason says; each stored one is marked replayed,
    each still refused keeps its record with the new reason (exit status 1)."""
    from framesift.annotations import LabelRules
    from framesift.bootstrap import build_adapters
    from framesift.rejected_callbacks import replay

    settings = settings_from()
    result = replay(build_adapters(settings).documents, LabelRules.of(settings))
    console.print(
        f"{len(result.stored)} rejected callbacks stored, {len(result.refused)} still refused"
    )
    for record_id, reason in result.refused.items():
        errors.print(f"refused: {record_id}: {reason}")
    if result.refused:
        raise typer.Exit(1)


def _print_ingest(result: IngestResult, where: str) -> None:
    console.print(
        f"{result.annotations} annotations {where}, {result.stored} stored or updated, "
        f"{result.deleted} marked deleted, {len(result.refused)} refused"
    )
    for refusal in result.refused:
        errors.print(f"refused: {refusal}")
    if result.refused:
        raise typer.Exit(1)

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
        errors.print(f"refused: {record_id}: {reason}", soft_wrap=True)  # one line each
    if result.refused:
        raise typer.Exit(1)


def rotate_webhook_secret(
    retire: Annotated[
        bool,
        typer.Option(
            "--retire", help="Stop accepting the previous secret (after the rotation's window)."
        ),
    ] = False,
) -> None:
    """Rotate Label Studio's webhook secret without refusing a call: the webhook accepts the new
    one first (checked by calling it), then Label Studio's webhook header is set to it; the
    previous one stays accepted until `--retire`. Locally (`framesift serve` running) the new
    secret is generated and kept in the workdir; deployed, deploy the webhook first with
    FRAMESIFT_LABELSTUDIO_WEBHOOK_SECRET set to the new secret and ..._PREVIOUS to the old one
    (docs/operations.md, Rotating the webhook secret)."""
    from framesift.bootstrap import build_adapters
    from framesift.webhook_secrets import retire as retire_previous
    from framesift.webhook_secrets import rotate

    settings = settings_from()
    if retire:
        kept_in = retire_previous(settings)
        console.print(f"the previous webhook secret is no longer accepted ({kept_in})")
        return
    rotation = rotate(settings, build_adapters(settings).documents)
    where = f"kept in {rotation.kept_in}" if rotation.kept_in else "from the deployment"
    console.print(
        f"{rotation.webhook} accepts the new secret ({where}) and Label Studio sends it; retire "
        "the previous one once no call can carry it: `framesift rotate-webhook-secret --retire` "
        "(deployed: pulumi config rm framesift:labelstudioWebhookSecretPrevious; pulumi up)"
    )


def _print_ingest(result: IngestResult, where: str) -> None:
    console.print(
        f"{result.annotations} annotations {where}, {result.stored} stored or updated, "
        f"{result.deleted} marked deleted, {len(result.refused)} refused"
    )
    for refusal in result.refused:
        errors.print(f"refused: {refusal}", soft_wrap=True)
    if result.refused:
        raise typer.Exit(1)

"""``framesift dev``: the local emulated GCP stack."""

from __future__ import annotations

import typer

from framesift.cli.options import console

dev = typer.Typer(
    help="The local emulated GCP stack (Pub/Sub, Firestore, GCS, BigQuery, functions)."
)


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

"""What every command shares: the two consoles, the --debug flag, and the settings from
FRAMESIFT_* variables with the command's own options. Light on purpose: `framesift --help`
imports it (a command imports what does its work when it runs)."""

from __future__ import annotations

from rich.console import Console

from framesift.config import Settings
from framesift.logs import configure_logging

console = Console()
errors = Console(stderr=True)
debug = {"on": False}  # set by the --debug option, read when the command runs or fails


def settings_from(**overrides: object) -> Settings:
    """The settings from FRAMESIFT_* variables, with the options given on the command line (an
    option left out is None, and leaves the variable's value or the settings' default)."""
    configure_logging("DEBUG" if debug["on"] else "WARNING", "stderr")
    given = {name: value for name, value in overrides.items() if value is not None}
    return Settings(**given)  # type: ignore[arg-type]


def default(field: str) -> str:
    """An option's help suffix naming its setting and default, declared once in Settings."""
    info = Settings.model_fields[field]
    return f" [FRAMESIFT_{field.upper()}, default {info.get_default(call_default_factory=True)}]"

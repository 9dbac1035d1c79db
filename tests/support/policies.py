"""A selection policy plugged in by its import path, as a user's would be."""

from __future__ import annotations

from collections.abc import Sequence

from framesift.config import Settings
from framesift.selection import Candidate, Choice, SelectionPolicy


def whole_seconds_only(settings: Settings) -> SelectionPolicy:
    """Label frames at whole even seconds, latest first (an active-learning stand-in)."""

    def select(candidates: Sequence[Candidate]) -> list[Choice]:
        return [
            Choice(
                c.frame,
                c.frame.timestamp_ms,
                None if c.frame.timestamp_ms % 2000 == 0 else "odd second",
            )
            for c in sorted(candidates, key=lambda c: -c.frame.timestamp_ms)
        ]

    return select

"""A selection policy plugged in by its import path, as a user's would be."""

from __future__ import annotations

from collections.abc import Sequence

from framesift.config import Settings
from framesift.messages import SampledFrame
from framesift.selection import Choice, SelectionPolicy


def whole_seconds_only(settings: Settings) -> SelectionPolicy:
    """Label frames at whole even seconds, latest first (an active-learning stand-in)."""

    def select(frames: Sequence[SampledFrame]) -> list[Choice]:
        ranked = sorted(frames, key=lambda frame: -frame.timestamp_ms)
        return [
            Choice(frame, None if frame.timestamp_ms % 2000 == 0 else "odd second")
            for frame in ranked
        ]

    return select

"""Which kept frames go to labeling, and in which order: the selection-policy hook.

A policy is a callable ``(frames) -> choices``: it gets the kept frames of a batch and returns
one :class:`Choice` per frame, in the order they should be labeled, each either sent
(``skip_reason`` None) or skipped with a reason (recorded on the frame as ``labeling_status``
``skipped`` and ``labeling_skip_reason``). Plug your own, e.g. a model's uncertainty for active
learning, with ``FRAMESIFT_SELECTION_POLICY=package.module:factory``, where ``factory(settings)``
returns the policy; the module must be importable by the function (ship it in its source).

The built-in policy (:func:`sharpness_policy`) skips frames below
``FRAMESIFT_SELECTION_MIN_SHARPNESS`` (0: none; motion blur and flat frames score low) and sends
the sharpest first.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from framesift.config import Settings
from framesift.errors import InvalidPolicy
from framesift.messages import SampledFrame


@dataclass(frozen=True)
class Choice:
    frame: SampledFrame
    skip_reason: str | None = None


SelectionPolicy = Callable[[Sequence[SampledFrame]], Sequence[Choice]]


def sharpness_policy(minimum: float) -> SelectionPolicy:
    def select(frames: Sequence[SampledFrame]) -> list[Choice]:
        ranked = sorted(frames, key=lambda frame: -frame.sharpness)
        return [
            Choice(
                frame,
                None
                if frame.sharpness >= minimum
                else f"sharpness {frame.sharpness:g} below the floor {minimum:g}",
            )
            for frame in ranked
        ]

    return select


def load_policy(settings: Settings) -> SelectionPolicy:
    """The configured policy: a ``module:factory`` path, or the built-in sharpness policy."""
    if not settings.selection_policy:
        return sharpness_policy(settings.selection_min_sharpness)
    module_name, _, factory_name = settings.selection_policy.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InvalidPolicy(
            f"FRAMESIFT_SELECTION_POLICY={settings.selection_policy!r} cannot be loaded: {exc}"
        ) from exc
    policy: SelectionPolicy = factory(settings)
    return policy

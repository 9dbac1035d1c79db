"""Which kept frames go to labeling, and in which order: the selection-policy hook and the
budget's rounds.

A policy is a callable ``(candidates) -> choices``: it gets a batch's kept frames, each with the
model's pre-label when a model is configured (:class:`Candidate`), and returns one
:class:`Choice` per frame: a ``priority`` (higher is labeled first) and, to leave it out, a
``skip_reason`` (recorded on the frame as ``labeling_status`` ``skipped``). Plug your own with
``FRAMESIFT_SELECTION_POLICY=package.module:factory``, where ``factory(settings)`` returns the
policy; the module must be importable by the function (ship it in its source).

The built-in policy (:func:`builtin_policy`) skips frames below
``FRAMESIFT_SELECTION_MIN_SHARPNESS`` (motion blur and flat frames score low) and ranks the rest
by the model's uncertainty (``FRAMESIFT_SELECTION_UNCERTAINTY``), or by sharpness without one.

With a budget (``FRAMESIFT_LABELING_BUDGET``), the chosen frames wait, ``queued`` with their
priority, for a round (:func:`plan_round`): the highest priorities take the budget less an
audit share (``FRAMESIFT_LABELING_AUDIT_FRACTION``), which goes to frames drawn from the rest,
so the model is measured where it is confident too; every other frame is skipped with its score
and rank. The draw is a hash of the round and the frame id: a redelivered round draws the same.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from framesift.config import Settings
from framesift.errors import InvalidPolicy
from framesift.messages import SampledFrame
from framesift.prelabels import Prediction


@dataclass(frozen=True)
class Candidate:
    frame: SampledFrame
    prediction: Prediction | None = None


@dataclass(frozen=True)
class Choice:
    frame: SampledFrame
    priority: float
    skip_reason: str | None = None


SelectionPolicy = Callable[[Sequence[Candidate]], Sequence[Choice]]


def builtin_policy(minimum_sharpness: float) -> SelectionPolicy:
    def select(candidates: Sequence[Candidate]) -> list[Choice]:
        choices = [
            Choice(
                c.frame,
                c.prediction.uncertainty if c.prediction else c.frame.sharpness,
                None
                if c.frame.sharpness >= minimum_sharpness
                else f"sharpness {c.frame.sharpness:g} below the floor {minimum_sharpness:g}",
            )
            for c in candidates
        ]
        return sorted(choices, key=lambda choice: -choice.priority)

    return select


def load_policy(settings: Settings) -> SelectionPolicy:
    """The configured policy: a ``module:factory`` path, or the built-in one."""
    if not settings.selection_policy:
        return builtin_policy(settings.selection_min_sharpness)
    module_name, _, factory_name = settings.selection_policy.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InvalidPolicy(
            f"FRAMESIFT_SELECTION_POLICY={settings.selection_policy!r} cannot be loaded: {exc}"
        ) from exc
    policy: SelectionPolicy = factory(settings)
    return policy


class SelectedAs(StrEnum):
    PRIORITY = "priority"  # among the highest priorities
    AUDIT = "audit"  # drawn from the rest


@dataclass(frozen=True)
class RoundDecision:
    frame_id: str
    selected_as: SelectedAs | None  # None: skipped
    reason: str | None = None


def audit_draw(round_id: str, frame_id: str) -> str:
    """The frame's place in a round's audit draw."""
    return hashlib.sha256(f"{round_id}/{frame_id}".encode()).hexdigest()


def plan_round(
    queued: Sequence[tuple[str, float]], budget: int, audit_fraction: float, round_id: str
) -> list[RoundDecision]:
    """The round's decision for each queued ``(frame id, priority)``, the selected first (in
    the order to send them): ``budget`` frames at most, an audit share of them (rounded) drawn
    from those the priorities leave out."""
    ranked = sorted(queued, key=lambda item: (-item[1], item[0]))
    if len(ranked) <= budget:
        return [RoundDecision(frame_id, SelectedAs.PRIORITY) for frame_id, _ in ranked]
    audits = int(budget * audit_fraction + 0.5)
    top = ranked[: budget - audits]
    rest = ranked[budget - audits :]
    drawn = {
        frame_id
        for frame_id, _ in sorted(rest, key=lambda item: audit_draw(round_id, item[0]))[:audits]
    }
    decisions = [RoundDecision(frame_id, SelectedAs.PRIORITY) for frame_id, _ in top]
    decisions += [
        RoundDecision(frame_id, SelectedAs.AUDIT) for frame_id, _ in rest if frame_id in drawn
    ]
    decisions += [
        RoundDecision(
            frame_id,
            None,
            f"over round {round_id}'s budget of {budget}: priority {priority:.4g}, "
            f"ranked {len(top) + index + 1} of {len(ranked)}",
        )
        for index, (frame_id, priority) in enumerate(rest)
        if frame_id not in drawn
    ]
    return decisions

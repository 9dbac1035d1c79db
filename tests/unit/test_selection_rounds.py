"""A labeling round's plan: the budget to the highest priorities less an audit share drawn from
the rest, the rest skipped with their rank; and the built-in policy's order."""

from __future__ import annotations

from framesift.messages import SampledFrame
from framesift.prelabels import Prediction
from framesift.selection import (
    Candidate,
    SelectedAs,
    audit_draw,
    builtin_policy,
    plan_round,
)


def frames(count: int) -> list[tuple[str, float]]:
    """Frames f00..f{count-1} with priorities 0.00 up, so f{count-1} is the most uncertain."""
    return [(f"f{i:02d}", i / 100) for i in range(count)]


def test_the_budget_goes_to_the_highest_priorities_and_an_audit_drawn_from_the_rest():
    plan = plan_round(frames(20), budget=5, audit_fraction=0.2, round_id="2026-12-01")
    selected = [(d.frame_id, d.selected_as) for d in plan if d.selected_as]
    # 5 x 0.2 = 1 audit: 4 by priority, highest first, then one drawn from the other 16.
    assert selected[:4] == [(f"f{i}", SelectedAs.PRIORITY) for i in (19, 18, 17, 16)]
    rest = [f"f{i:02d}" for i in range(16)]
    drawn = min(rest, key=lambda frame_id: audit_draw("2026-12-01", frame_id))
    assert selected[4:] == [(drawn, SelectedAs.AUDIT)]
    skipped = [d for d in plan if d.selected_as is None]
    assert len(skipped) == 15
    assert all("over round 2026-12-01's budget of 5" in (d.reason or "") for d in skipped)
    assert skipped[0].reason is not None and "ranked 5 of 20" in skipped[0].reason


def test_the_draw_is_the_same_for_a_redelivered_round_and_differs_between_rounds():
    once = plan_round(frames(50), 10, 0.5, "2026-12-01")
    again = plan_round(list(reversed(frames(50))), 10, 0.5, "2026-12-01")
    other = plan_round(frames(50), 10, 0.5, "2026-12-02")

    def audits(plan):
        return {d.frame_id for d in plan if d.selected_as is SelectedAs.AUDIT}

    assert audits(once) == audits(again) and len(audits(once)) == 5
    assert audits(once) != audits(other)


def test_a_round_with_fewer_frames_than_its_budget_sends_them_all_by_priority():
    plan = plan_round(frames(3), budget=10, audit_fraction=0.1, round_id="r")
    assert [(d.frame_id, d.selected_as) for d in plan] == [
        ("f02", SelectedAs.PRIORITY),
        ("f01", SelectedAs.PRIORITY),
        ("f00", SelectedAs.PRIORITY),
    ]


def test_no_audit_share_and_a_zero_budget():
    plan = plan_round(frames(4), budget=2, audit_fraction=0.0, round_id="r")
    assert [d.frame_id for d in plan if d.selected_as] == ["f03", "f02"]
    assert all(d.selected_as is None for d in plan_round(frames(4), 0, 0.5, "r"))


def _frame(frame_id: str, sharpness: float) -> SampledFrame:
    return SampledFrame(
        frame_id=frame_id,
        timestamp_ms=0,
        bucket="b",
        object_name=f"{frame_id}.jpg",
        sha256="0" * 64,
        phash="0" * 16,
        sharpness=sharpness,
        brightness=100.0,
    )


def _prediction(uncertainty: float) -> Prediction:
    return Prediction("p", "v1", [], uncertainty, 64, 64)


def test_the_builtin_policy_ranks_by_uncertainty_with_a_model_and_skips_blur():
    candidates = [
        Candidate(_frame("sure", 50.0), _prediction(0.1)),
        Candidate(_frame("unsure", 40.0), _prediction(0.9)),
        Candidate(_frame("blurred", 0.5), _prediction(1.0)),
    ]
    choices = builtin_policy(minimum_sharpness=1.0)(candidates)
    assert [(c.frame.frame_id, c.priority, c.skip_reason is None) for c in choices] == [
        ("blurred", 1.0, False),
        ("unsure", 0.9, True),
        ("sure", 0.1, True),
    ]
    plain = builtin_policy(0.0)([Candidate(_frame("a", 3.0)), Candidate(_frame("b", 7.0))])
    assert [c.frame.frame_id for c in plain] == ["b", "a"]  # no model: the sharpest first


def test_a_scheduled_round_is_its_utc_day_and_a_named_one_keeps_its_name():
    from framesift.events import PubSubMessage
    from framesift.messages import LabelingRound

    scheduled = PubSubMessage.model_validate(
        {"data": "e30=", "messageId": "1", "publishTime": "2026-12-01T23:30:00-02:00"}
    )
    assert LabelingRound.from_message(scheduled).round == "2026-12-02"  # 01:30 UTC
    named = PubSubMessage.of(b'{"round": "run-7"}', {}, "2")
    assert LabelingRound.from_message(named).round == "run-7"

"""The tiered index's generations (framesift.datasetindex.Window): any two deciders whose clocks
are less than the grace apart share a generation they both read and write."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from framesift import datasetindex, dedupmigration
from framesift.bookkeeping import LegacyChains
from framesift.config import Settings
from framesift.datasetindex import GRACE, LEGACY_KEY, Window
from tests.support.fakes import InMemoryDocumentStore

DAY = datetime(2026, 12, 6, tzinfo=UTC)


def test_a_decision_is_in_its_days_generation_and_in_its_last_minutes_the_next_ones_too():
    window = Window(days=1)
    (today,) = window.generations(DAY + timedelta(hours=12))
    assert window.generations(DAY) == (today,)
    assert window.generations(DAY + timedelta(days=1) - GRACE - timedelta(seconds=1)) == (today,)
    assert window.generations(DAY + timedelta(days=1) - GRACE) == (today, today + 1)
    assert window.generations(DAY + timedelta(days=1)) == (today + 1,)
    assert Window(days=7).generations(DAY)[0] == window.generations(DAY)[0] // 7


@pytest.mark.parametrize("days", [1, 3, 30])
def test_any_two_clocks_less_than_the_grace_apart_share_a_generation(days):
    window = Window(days=days)
    rng = random.Random(days)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    edge = epoch + window.period * ((DAY - epoch) // window.period + 1)
    for _ in range(2000):
        first = edge + timedelta(seconds=rng.uniform(-2, 2) * GRACE.total_seconds())
        second = first + timedelta(seconds=rng.uniform(0, 0.999) * GRACE.total_seconds())
        assert set(window.generations(first)) & set(window.generations(second)), (first, second)


def test_a_generation_lasts_at_least_a_day():
    with pytest.raises(ValueError, match="at least one day"):
        Window(days=0)


def test_a_new_tiered_store_stops_reading_generation_less_chains_at_once():
    """Nothing kept before the switch: the migration leaves no window of extra reads."""
    documents = InMemoryDocumentStore()
    shape = datasetindex.shape(Settings().model_copy(update={"dedup_window_days": 1}))
    before = datetime.now(UTC)
    dedupmigration.ensure_migrated(documents, shape)
    state = {LEGACY_KEY: documents.get(*LEGACY_KEY)}
    assert before <= LegacyChains.model_validate(state[LEGACY_KEY]).read_until
    assert not datasetindex.legacy_read(state, datetime.now(UTC))

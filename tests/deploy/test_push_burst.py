"""The sampler's sizing against a burst of uploads (benchmarks/push_burst.py's simulation of
Pub/Sub pushing to a capacity-limited function): nothing healthy is dead-lettered."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from framesift.topology import SAMPLER, pubsub_max_delivery_attempts
from framesift_infra.config import StackConfig
from framesift_infra.sizing import DEPLOYMENTS

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "push_burst.py"


@pytest.fixture(scope="module")
def push_burst() -> ModuleType:
    spec = importlib.util.spec_from_file_location("push_burst", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["push_burst"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("uploads", [1000, 10000])
def test_a_burst_of_uploads_dead_letters_nothing_with_the_sized_settings(push_burst, uploads):
    sampler = DEPLOYMENTS[SAMPLER.name]
    limit = pubsub_max_delivery_attempts(StackConfig.max_delivery_attempts)
    for seed in range(3):
        burst = push_burst.simulate(
            uploads, sampler.max_instances * sampler.concurrency, limit, True, seed
        )
        assert burst.throttled > 0  # the burst does hit the sampler's limit
        assert burst.dead_lettered == 0
        assert burst.most_attempts < limit - 2  # a margin for what the model leaves out


def test_the_simulation_dead_letters_when_pubsub_does_not_throttle(push_burst):
    """The model can fail: pushed all at once, most of a burst runs out of attempts."""
    burst = push_burst.simulate(1000, 20, 7, False, 0)
    assert burst.dead_lettered > 500

"""Polling, for tests that wait on a pipeline running elsewhere."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 240.0) -> T:
    """Poll until ``probe`` returns something truthy; the timeout only bounds a hung pipeline
    (generous: on a loaded 2-core machine the Pub/Sub emulator's push retries back off)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.25)

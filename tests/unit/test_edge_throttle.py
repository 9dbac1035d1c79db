"""The edge's bandwidth cap: over any run of uploads, the bytes sent stay within the rate plus
one second's burst, whatever their sizes (a fake clock: no wall time)."""

from __future__ import annotations

import pytest

from framesift.edge.throttle import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize("sizes", [[1000] * 50, [250_000, 10, 180_000, 5, 90_000], [7] * 999])
def test_uploads_wait_so_the_rate_holds(sizes):
    clock = FakeClock()
    bucket = TokenBucket(100_000, clock=clock, sleep=clock.sleep)
    for size in sizes:
        bucket.take(size)
    # Every byte but the first second's burst was paid for in time.
    assert clock.now == pytest.approx(max(0.0, (sum(sizes) - 100_000) / 100_000))


def test_time_passing_between_uploads_refills_no_more_than_a_second():
    clock = FakeClock()
    bucket = TokenBucket(1000, clock=clock, sleep=clock.sleep)
    bucket.take(1000)
    clock.now += 60  # idle for a minute: one second's burst is all it saved
    start = clock.now
    bucket.take(3000)
    assert clock.now - start == pytest.approx(2.0)


def test_no_cap_never_waits_and_a_bad_rate_is_refused():
    clock = FakeClock()
    TokenBucket(None, clock=clock, sleep=clock.sleep).take(10**12)
    assert clock.now == 0
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0)

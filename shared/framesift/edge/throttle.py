"""The bandwidth cap (``--max-upload-rate``): a token bucket of bytes.

Tokens accrue at ``rate`` bytes per second up to one second's worth; an upload takes its size
first, waiting while the bucket is in debt, so over any span the bytes sent stay within the
rate plus one second's burst, whatever the sizes of the uploads (one larger than the burst
waits for its own time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``rate``: bytes per second (None: no cap)."""
        if rate is not None and rate <= 0:
            raise ValueError(f"the upload rate must be positive, not {rate}")
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._tokens = rate or 0.0
        self._at = clock()
        self._lock = threading.Lock()

    def take(self, size: int) -> None:
        """Wait until ``size`` bytes may be sent."""
        if self.rate is None:
            return
        with self._lock:
            now = self._clock()
            self._tokens = min(self.rate, self._tokens + (now - self._at) * self.rate)
            self._at = now
            self._tokens -= size
            debt = -self._tokens
        if debt > 0:
            self._sleep(debt / self.rate)

"""A client-side token bucket for requests to the API server (``--qps``/``--burst``).

client-go's and py-kube-downscaler's rule (``tokenbucket.py``): the bucket holds at most ``burst`` tokens and
refills at ``qps`` per second; each request takes one, and waits for it when the bucket is empty. Both 0
switches it off; otherwise both must be positive and ``burst >= qps`` (upstream refuses anything else).
The clock and the sleep are injected, so the arithmetic is tested without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from zerowatt.errors import SettingError


class TokenBucket:
    """``take(n)`` grants up to ``n`` requests now, waiting only as long as the first one needs."""

    def __init__(
        self,
        qps: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if qps <= 0 or burst <= 0:
            raise SettingError("qps", f"qps {qps:g} and burst {burst} must both be positive (or both 0: no limit)")
        if burst < qps:
            raise SettingError("burst", f"burst {burst} is below qps {qps:g}; it must be at least qps")
        self.qps, self.burst = float(qps), burst
        self._clock, self._sleep = clock, sleep
        self._tokens = float(burst)
        self._last = clock()
        self.waited = 0.0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now

    def take(self, wanted: int) -> int:
        """Wait until at least one token is there, then take as many as are there (at most ``wanted``)."""
        self._refill()
        if self._tokens < 1.0:
            delay = (1.0 - self._tokens) / self.qps
            self.waited += delay
            self._sleep(delay)
            self._refill()
            self._tokens = max(self._tokens, 1.0)  # a sleep that returned early still grants one
        granted = max(1, min(wanted, int(self._tokens)))
        self._tokens -= granted
        return granted


def token_bucket(qps: int, burst: int) -> TokenBucket | None:
    """The bucket for ``--qps``/``--burst``, or ``None`` when both are 0 (no limit, the default)."""
    if qps == 0 and burst == 0:
        return None
    return TokenBucket(qps, burst)

"""Fair use of a worker's guest thread pool between apps: a cap on the threads one app may hold.

Why: guests that outlive the inline budget run on a shared thread pool (``HostSettings.guest_threads``, 16 by
default). Without a cap, one tenant's runaway guests take every thread, so another app's slow but
healthy requests queue behind them until the runaways hit their deadlines (issue 10). With a cap, an
app's offloaded guests beyond it wait for one of *its own* slots (bounded by their own deadline), and
the other apps keep the rest of the pool.

Pure bookkeeping on the event loop's thread: no clocks, no threads (the caller passes the timeout).
"""

from __future__ import annotations

import asyncio

from zerowatt.units import Seconds


def default_per_app(threads: int) -> int:
    """Half the pool, at least one: two busy tenants can share it; a lone one cannot take all of it."""
    return max(1, threads // 2)


class AppSlots:
    """At most ``per_app`` offloaded guests of one app at once (one semaphore per app, made on first use)."""

    def __init__(self, per_app: int) -> None:
        if per_app < 1:
            raise ValueError(f"per_app must be at least 1, not {per_app}")
        self.per_app = per_app
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._held: dict[str, int] = {}

    def held(self, app: str) -> int:
        """Slots the app holds now."""
        return self._held.get(app, 0)

    async def acquire(self, app: str, timeout: Seconds) -> bool:
        """Wait up to ``timeout`` seconds for one of the app's slots; False if none came in time."""
        gate = self._gates.get(app)
        if gate is None:
            gate = self._gates[app] = asyncio.Semaphore(self.per_app)
        if not gate.locked():
            await gate.acquire()  # returns at once
        else:
            try:
                await asyncio.wait_for(gate.acquire(), max(timeout, 0.0))
            except TimeoutError:
                return False
        self._held[app] = self._held.get(app, 0) + 1
        return True

    def release(self, app: str) -> None:
        self._held[app] -= 1
        self._gates[app].release()

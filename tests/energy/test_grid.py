"""Samplers on the wall-clock grid (zerowatt.energy.grid): the exporter and the host close the same intervals."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zerowatt.energy.grid import next_tick, run_on_grid


def test_next_tick_is_the_next_multiple_of_the_interval() -> None:
    assert next_tick(10.0, 1.0) == 11.0  # on a tick: the next one, never the same instant twice
    assert next_tick(10.3, 0.5) == 10.5
    assert next_tick(1_700_000_000.25, 5.0) == 1_700_000_005.0
    assert next_tick(-0.2, 1.0) == 0.0


@given(st.floats(0.0, 4e9, allow_nan=False), st.sampled_from([0.05, 0.1, 0.5, 1.0, 5.0, 60.0]))
def test_next_tick_is_strictly_ahead_and_within_one_interval(now: float, interval: float) -> None:
    tick = next_tick(now, interval)
    assert now < tick <= now + interval * (1 + 1e-9) + 1e-6
    assert abs(tick - round(tick / interval) * interval) < 1e-6  # on the grid, to a microsecond


@pytest.mark.parametrize("interval", [0.0, -1.0, float("inf"), float("nan")])
def test_a_bad_interval_is_refused(interval: float) -> None:
    with pytest.raises(ValueError, match="interval"):
        next_tick(1.0, interval)


class FakeClock:
    """A wall clock that moves only when the sampler waits or works."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now


class FakeStop(threading.Event):
    """``wait(d)`` advances the fake clock by ``d`` (or less: an early wake-up) instead of sleeping."""

    def __init__(self, clock: FakeClock, early: float = 0.0) -> None:
        super().__init__()
        self.clock = clock
        self.early = early

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None and timeout > 0
        self.clock.waits.append(timeout)
        self.clock.now += max(timeout - self.early, timeout / 2)
        return self.is_set()


def test_steps_land_on_the_grid_whatever_they_cost() -> None:
    clock = FakeClock(100.37)
    stop = FakeStop(clock)
    at: list[float] = []

    def step(tick: float) -> None:
        assert tick == pytest.approx(clock.now)
        at.append(clock.now)
        clock.now += 0.13  # the step's own duration must not shift the next one
        if len(at) == 5:
            stop.set()

    run_on_grid(step, 1.0, stop, clock)
    assert at == pytest.approx([101.0, 102.0, 103.0, 104.0, 105.0])


def test_an_early_wake_up_waits_for_the_tick_and_an_overrun_skips_to_the_next() -> None:
    clock = FakeClock(0.2)
    stop = FakeStop(clock, early=0.01)
    at: list[float] = []

    def step(tick: float) -> None:
        at.append(clock.now)
        clock.now += 2.4 if len(at) == 2 else 0.0  # the second step overran two ticks
        if len(at) == 4:
            stop.set()

    run_on_grid(step, 1.0, stop, clock)
    assert all(t >= tick for t, tick in zip(at, [1.0, 2.0, 5.0, 6.0], strict=True))
    assert [round(t) for t in at] == [1, 2, 5, 6]  # never twice for one tick, never squeezed


def test_a_stop_during_the_wait_returns_without_a_step() -> None:
    clock = FakeClock(0.5)
    stop = FakeStop(clock)
    stop.set()
    run_on_grid(lambda _: pytest.fail("stepped after stop"), 1.0, stop, clock)

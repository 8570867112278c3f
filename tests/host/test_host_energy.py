"""The host's per-request energy observer: pricing, running totals and the periodic summary."""

from __future__ import annotations

import logging

import pytest

from zerowatt.energy import ActiveRate
from zerowatt.host.energy import EnergyAccounting


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_request_costs_cpu_seconds_times_the_rate() -> None:
    acct = EnergyAccounting(rate=lambda: ActiveRate(2.5, "model"), interval=1e9)
    acct("app", "comp", 200, 0.01, 0.004)
    acct("app", "comp", 200, 0.01, 0.002)
    acct("app", "other", 500, 0.01, 0.001)
    totals = acct.totals[("app", "comp")]
    assert totals.requests == 2
    assert totals.cpu_seconds == pytest.approx(0.006)
    assert totals.joules == pytest.approx(0.006 * 2.5)
    assert totals.joules_per_request == pytest.approx(0.0075)
    assert acct.totals[("app", "other")].joules == pytest.approx(0.0025)


def test_negative_cpu_time_never_yields_negative_energy() -> None:
    acct = EnergyAccounting(rate=lambda: ActiveRate(3.0, "model"), interval=1e9)
    acct("a", "c", 200, 0.0, -0.5)
    assert acct.totals[("a", "c")].joules == 0.0
    assert acct.totals[("a", "c")].cpu_seconds == 0.0


def test_summary_is_logged_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    acct = EnergyAccounting(rate=lambda: ActiveRate(1.0, "model"), interval=60, clock=clock)
    caplog.set_level(logging.INFO, logger="zerowatt.host.energy")
    acct("app", "comp", 200, 0.0, 0.001)
    assert not caplog.records
    clock.now += 61
    acct("app", "comp", 200, 0.0, 0.001)
    assert [r.getMessage() for r in caplog.records] == [
        "energy app/comp: 2 requests, 2.0 ms guest CPU, 0.002 J (1e+03 µJ/request)"
    ]
    clock.now += 30
    acct("app", "comp", 200, 0.0, 0.001)
    assert len(caplog.records) == 1

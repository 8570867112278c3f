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
    assert not acct.totals  # priced when the interval closes, at that interval's rate
    acct.close_interval()
    totals = acct.totals[("app", "comp")]
    assert totals.requests == 2
    assert totals.cpu_seconds == pytest.approx(0.006)
    assert totals.joules == pytest.approx(0.006 * 2.5)
    assert totals.joules_per_request == pytest.approx(0.0075)
    assert acct.totals[("app", "other")].joules == pytest.approx(0.0025)


def test_negative_cpu_time_never_yields_negative_energy() -> None:
    acct = EnergyAccounting(rate=lambda: ActiveRate(3.0, "model"), interval=1e9)
    acct("a", "c", 200, 0.0, -0.5)
    acct.close_interval()
    assert acct.totals[("a", "c")].joules == 0.0
    assert acct.totals[("a", "c")].cpu_seconds == 0.0


def test_summary_is_logged_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    acct = EnergyAccounting(rate=lambda: ActiveRate(1.0, "model"), interval=60, clock=clock)
    caplog.set_level(logging.INFO, logger="zerowatt.host.energy")
    acct("app", "comp", 200, 0.0, 0.001)
    acct.close_interval()
    assert not caplog.records
    clock.now += 61
    acct("app", "comp", 200, 0.0, 0.001)
    acct.close_interval()
    assert [r.getMessage() for r in caplog.records] == [
        "energy app/comp: 2 requests, 2.0 ms CPU, 0.002 J (1e+03 µJ/request)"
    ]
    clock.now += 30
    acct("app", "comp", 200, 0.0, 0.001)
    acct.close_interval()
    assert len(caplog.records) == 1


def _samples(registry: object, prefix: str, app: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client import CollectorRegistry

    assert isinstance(registry, CollectorRegistry)
    found = {}
    for family in registry.collect():
        for sample in family.samples:
            if (
                sample.name.startswith(prefix)
                and sample.labels.get("app") == app
                and not sample.name.endswith("_created")
            ):
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_a_batch_records_what_one_call_per_request_records() -> None:
    from zerowatt.host.metrics import HostMetrics

    batch = [("one", "c", 200, 0.0002, 0.00004), ("one", "c", 200, 0.3, 0.2), ("one", "d", 500, 2e-5, 0.0)]
    batch += [("one", "c", 404, 7.0, 1e-7)] * 3
    single, batched = HostMetrics(), HostMetrics()
    for item in batch:
        single(*item)
    batched.observe_many(batch)
    metrics = _samples(single.registry, "zerowatt_", "one")
    assert metrics and metrics == _samples(batched.registry, "zerowatt_", "one")

    rate = ActiveRate(2.5, "model")
    one = EnergyAccounting(rate=lambda: rate, interval=1e9)
    for item in batch:
        one(*item)
    one.close_interval()
    before = _samples(one.metrics.registry, "zerowatt_", "one")
    many = EnergyAccounting(rate=lambda: rate, interval=1e9)
    many.observe_many([("two", *item[1:]) for item in batch])
    many.close_interval()
    after = _samples(many.metrics.registry, "zerowatt_", "two")
    assert before and metrics
    assert after == {
        (name, tuple((k, "two" if k == "app" else v) for k, v in labels)): value
        for (name, labels), value in before.items()
    }
    assert {k[1]: v.joules for k, v in many.totals.items()} == pytest.approx(
        {k[1]: v.joules for k, v in one.totals.items()}
    )


def test_energy_metrics_belong_to_the_registry_they_are_given() -> None:
    """No process-global energy metrics: two hosts in one process keep separate figures, and the
    host's own registry (the one /metrics reads in a worker) holds them."""
    from prometheus_client import REGISTRY

    from zerowatt.host.metrics import EnergyMetrics, HostMetrics

    host = HostMetrics()
    acct = EnergyAccounting(rate=lambda: ActiveRate(2.0, "model"), metrics=EnergyMetrics(host.registry), interval=1e9)
    other = EnergyAccounting(rate=lambda: ActiveRate(2.0, "model"), interval=1e9)
    acct("iso", "c", 200, 0.0, 0.5)
    acct.close_interval()
    other.close_interval()
    assert _samples(host.registry, "zerowatt_app_joules", "iso") == {
        ("zerowatt_app_joules_total", (("app", "iso"), ("component", "c"))): pytest.approx(1.0)
    }
    assert not _samples(other.metrics.registry, "zerowatt_", "iso")
    assert not _samples(REGISTRY, "zerowatt_", "iso")


def test_the_process_trees_unclaimed_cpu_goes_to_named_host_parts() -> None:
    """Σ apps + host = tree CPU × rate in every interval: start-up first, then idle, measured metrics work."""
    tree = [0.5]
    acct = EnergyAccounting(rate=lambda: ActiveRate(2.0, "model"), interval=1e9, tree_cpu=lambda: tree[0])
    acct("a", "c", 200, 0.0, 0.1)
    first = acct.close_interval()
    assert first.host == {"startup": (pytest.approx(0.4), pytest.approx(0.8))}
    assert first.joules() == pytest.approx(0.5 * 2.0)
    tree[0] = 1.5
    acct("a", "c", 200, 0.0, 0.3)
    acct.host_work("metrics", 0.2)
    second = acct.close_interval(ActiveRate(3.0, "model"))
    assert second.host == {"metrics": (pytest.approx(0.2), pytest.approx(0.6)), "idle": (pytest.approx(0.5), 1.5)}
    assert second.joules() == pytest.approx(1.0 * 3.0)
    assert acct.totals[("a", "c")].joules == pytest.approx(0.1 * 2.0 + 0.3 * 3.0)


def test_the_loop_checkpoint_gives_each_request_the_cpu_since_the_last_one() -> None:
    """Real thread CPU: work done between two checkpoints is charged to the second; with nothing in flight
    the sampler's idle settlement (from another thread) moves the checkpoint, with a request in flight not."""
    import threading
    import time

    from zerowatt.host.energy import LoopCpu

    def burn(seconds: float) -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    def settle_from_another_thread() -> None:
        t = threading.Thread(target=loop.settle_idle)
        t.start()
        t.join()

    loop = LoopCpu()
    loop.bind()
    burn(0.02)
    assert loop.take() >= 0.02
    burn(0.02)
    loop.in_flight = 1
    settle_from_another_thread()  # a request is in flight: its CPU stays with it
    loop.in_flight = 0
    assert loop.take() >= 0.02
    burn(0.02)
    settle_from_another_thread()
    assert loop.take() < 0.01

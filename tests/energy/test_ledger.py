"""The host's energy ledger conserves: Σ apps + host parts = the tree's CPU delta × rate, interval by interval."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zerowatt.energy.ledger import EnergyLedger

charges = st.lists(st.tuples(st.sampled_from(["a", "b"]), st.floats(0, 0.5)), max_size=8)


@given(st.lists(st.tuples(charges, st.floats(0, 2), st.floats(0.1, 5), st.floats(0, 0.1)), min_size=1, max_size=12))
def test_sums_equal_tree_cpu_times_rate_up_to_the_debt(
    intervals: list[tuple[list[tuple[str, float]], float, float, float]],
) -> None:
    ledger = EnergyLedger()
    tree = 0.0
    cpu_in = 0.0
    cpu_out = 0.0
    for reqs, grow, rate, metrics in intervals:
        for app, cpu in reqs:
            ledger.charge(app, "c", cpu)
        ledger.host("metrics", metrics)
        tree += grow
        priced = ledger.close(tree, rate)
        charged = sum(a.cpu_seconds for a in priced.apps.values()) + sum(c for c, _ in priced.host.values())
        cpu_in += priced.tree_cpu
        cpu_out += charged
        assert priced.joules() == pytest.approx(charged * rate)
        for charge in priced.apps.values():
            assert sum(charge.requests) == pytest.approx(charge.joules)
        # never less than the tree's CPU; more only by what is carried to be repaid
        assert cpu_out == pytest.approx(cpu_in + ledger.debt, abs=1e-9)


def test_first_interval_is_startup_then_idle_and_debt_is_repaid() -> None:
    ledger = EnergyLedger()
    ledger.charge("a", "c", 0.25)
    assert ledger.close(1.0, 2.0).host == {"startup": (0.75, 1.5)}
    ledger.charge("a", "c", 0.5)
    over = ledger.close(1.25, 2.0)  # charged 0.5 for a 0.25 delta (clock granularity)
    assert over.host == {} and ledger.debt == pytest.approx(0.25)
    later = ledger.close(2.0, 2.0)
    assert later.host == {"idle": (pytest.approx(0.5), pytest.approx(1.0))}
    assert ledger.debt == 0.0


def test_without_a_tree_reading_only_charges_are_priced() -> None:
    ledger = EnergyLedger()
    ledger.charge("a", "c", 0.5)
    priced = ledger.close(None, 4.0)
    assert priced.host == {} and priced.apps[("a", "c")].joules == 2.0


def test_tree_cpu_counts_live_and_reaped_children() -> None:
    """Real processes: a busy child's CPU is in the tree while it runs (from /proc) and after it is reaped
    (getrusage of the waited-for children), counted once."""
    import os
    import resource
    import subprocess
    import sys

    from tests.waiting import cpu_seconds, wait_until
    from zerowatt.energy.procfs import tree_cpu_seconds

    def own() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    before, own_before = tree_cpu_seconds(), own()
    child = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.process_time()"])
    try:
        wait_until(lambda: cpu_seconds(child.pid) >= 0.3, "the child to burn 0.3 CPU-seconds")
        assert tree_cpu_seconds() - before >= 0.3 - 1e-9  # live: from /proc (ticks / 100: float rounding)
    finally:
        child.kill()
        _, _, usage = os.wait4(child.pid, 0)
        child.returncode = -9
    child_cpu = usage.ru_utime + usage.ru_stime
    after, own_after = tree_cpu_seconds(), own()
    # reaped: exactly this process's own CPU since, plus the child's, once; tree_cpu_seconds counts in the
    # clock ticks of /proc/<pid>/stat (as an exporter does), utime and stime each rounded down: up to two
    # ticks for this process at each end and two for the reaped child
    assert after - before == pytest.approx((own_after - own_before) + child_cpu, abs=6 / os.sysconf("SC_CLK_TCK"))

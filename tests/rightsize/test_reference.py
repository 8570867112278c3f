"""The vectorised estimator gives exactly what a sample-by-sample port of upstream's control flow gives."""

from __future__ import annotations

import numpy as np

from tests.rightsize import vpa_reference as ref
from zerowatt.rightsize.accumulator import UsageAccumulator

NOW = 1_764_288_000.0
DAY = 86400.0
STEP = 300.0
MEM_START = NOW - 8 * DAY


def make_series(seed: int, start: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(start, NOW + 1, STEP)
    cpu = np.round(np.exp(rng.normal(np.log(0.05 + seed * 0.07), 0.6, t.size)), 6)
    mem = np.floor(np.abs(2e8 + seed * 1e8 + np.cumsum(rng.normal(0, 3e6, t.size)))) + 1e6
    return t, cpu, mem


def test_vectorised_equals_sequential_reference() -> None:
    # (workload, pod, container, seed, first sample): long-lived pods, and pods started at odd times.
    layout = [
        ("web", "web-1", "app", 1, NOW - 14 * DAY),
        ("web", "web-1", "sidecar", 2, NOW - 14 * DAY),
        ("web", "web-2", "app", 3, MEM_START + 2.3 * DAY + 1020),
        ("web", "web-2", "sidecar", 4, MEM_START + 2.3 * DAY + 1020),
        ("db", "db-0", "main", 5, NOW - 11 * DAY),
        ("batch", "batch-0", "job", 6, NOW - 0.5 * DAY - 600),
        ("batch", "batch-1", "job", 7, NOW - 9.2 * DAY - 300),
    ]
    acc = UsageAccumulator(NOW, 14 * DAY)
    aggs: dict[tuple[str, str], ref.Aggregate] = {}
    for workload, pod, container, seed, start in layout:
        t, cpu, mem = make_series(seed, start)
        oom = np.zeros(t.size, dtype=bool)
        request = 0.0
        if workload == "db":
            # An OOM kill at the interval's peak; usage restarts lower afterwards.
            i = int(np.searchsorted(t, MEM_START + 5.5 * DAY))
            mem[i] = mem.max() + 5e8
            mem[i + 1 :] = np.minimum(mem[i + 1 :], 1.5e8)
            oom[i] = True
            request = 9e8
        sid = acc.series_id("ns", pod, container, workload)
        acc.add_samples(np.full(t.size, sid), t, cpu=cpu, memory=mem, oom=oom)
        acc.set_current([sid], memory_request=[request] if request else [np.nan])

        agg = aggs.setdefault((workload, container), ref.Aggregate())
        state = ref.Container(agg, memory_request=request)
        for j in range(t.size):
            agg.add_cpu(float(cpu[j]), float(t[j]))
            if t[j] >= MEM_START:
                state.add_memory(float(mem[j]), float(t[j]))
                if oom[j]:
                    state.record_oom(float(t[j]))

    got = {(r.id.owner, r.id.container): r for r in acc.recommend()}
    assert set(got) == set(aggs)
    per_pod = {"web": 2, "db": 1, "batch": 1}
    for key, agg in aggs.items():
        expected = ref.recommend(agg, per_pod[key[0]])
        rec = got[key]
        for name in ("target", "lower_bound", "upper_bound"):
            res = getattr(rec, name)
            assert (round(res.cpu * 1000), res.memory) == expected[name], (key, name)
    assert got[("db", "main")].oom_kills == 1

"""A sample-by-sample reference of the VPA recommender, written to follow upstream's Go control flow.

One object per histogram, one call per sample, the decaying reference timestamp shifted exactly when
upstream shifts it, memory peaks subtracted and re-added within an interval, OOM kills recorded through the
same path (``RecordOOM`` → ``addMemorySample(isOOM=true)``). Slow on purpose: it is the yardstick the
vectorised :class:`zerowatt.rightsize.accumulator.UsageAccumulator` is checked against (tests) and timed
against (benchmark). Upstream files (vertical-pod-autoscaler/pkg/recommender):
``util/{histogram,decaying_histogram,histogram_options}.go``, ``model/{container,aggregate_container_state}.go``,
``logic/{estimator,recommender}.go``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

DAY = 86400.0
EPS = 0.001 * 0.1
MIB = 1024.0 * 1024.0


@dataclass
class Options:
    max_value: float
    first: float
    ratio: float = 1.05

    @property
    def num_buckets(self) -> int:
        return math.ceil(math.log(self.max_value * (self.ratio - 1) / self.first + 1) / math.log(self.ratio)) + 1

    def find(self, v: float) -> int:
        if v < self.first:
            return 0
        b = int(math.log(v * (self.ratio - 1) / self.first + 1) / math.log(self.ratio))
        return min(b, self.num_buckets - 1)

    def start(self, b: int) -> float:
        return 0.0 if b == 0 else self.first * (self.ratio**b - 1) / (self.ratio - 1)


CPU = Options(1000.0, 0.01)
MEM = Options(1e12, 1e7)


class DecayingHistogram:
    def __init__(self, opts: Options, half_life: float = DAY) -> None:
        self.o = opts
        self.w = [0.0] * opts.num_buckets
        self.total = 0.0
        self.min_b = opts.num_buckets - 1
        self.max_b = 0
        self.half_life = half_life
        self.ref: float | None = None  # upstream: the zero time.Time

    def _update_min_max(self) -> None:
        last = self.o.num_buckets - 1
        while self.w[self.min_b] < EPS and self.min_b < last:
            self.min_b += 1
        while self.w[self.max_b] < EPS and self.max_b > 0:
            self.max_b -= 1

    def _scale(self, f: float) -> None:
        for b in range(self.min_b, self.max_b + 1):
            self.w[b] *= f
        self.total *= f
        self._update_min_max()

    def _decay(self, t: float) -> float:
        if self.ref is None or t > self.ref + 100 * self.half_life:
            new_ref = math.floor(t / self.half_life + 0.5) * self.half_life
            if self.ref is not None:
                self._scale(2.0 ** round((self.ref - new_ref) / self.half_life))
            self.ref = new_ref
        return 2.0 ** ((t - self.ref) / self.half_life)

    def add(self, v: float, weight: float, t: float) -> None:
        weight *= self._decay(t)
        b = self.o.find(v)
        self.w[b] += weight
        self.total += weight
        if b < self.min_b and self.w[b] >= EPS:
            self.min_b = b
        if b > self.max_b and self.w[b] >= EPS:
            self.max_b = b

    def subtract(self, v: float, weight: float, t: float) -> None:
        weight *= self._decay(t)
        b = self.o.find(v)
        if weight > self.w[b] - EPS:
            weight = self.w[b]
        self.total -= weight
        self.w[b] -= weight
        self._update_min_max()

    def percentile(self, p: float) -> float:
        if self.w[self.min_b] < EPS:
            return 0.0
        threshold = p * self.total
        partial = 0.0
        b = self.min_b
        while b < self.max_b:
            partial += self.w[b]
            if partial >= threshold:
                break
            b += 1
        return self.o.start(b + 1) if b < self.o.num_buckets - 1 else self.o.start(b)


@dataclass
class Aggregate:
    cpu: DecayingHistogram = field(default_factory=lambda: DecayingHistogram(CPU))
    mem: DecayingHistogram = field(default_factory=lambda: DecayingHistogram(MEM))
    first: float | None = None
    last: float | None = None
    count: int = 0

    def add_cpu(self, cores: float, t: float) -> None:
        usage = math.floor(cores * 1000.0) / 1000.0  # CPUAmountFromCores, CoresFromCPUAmount
        self.cpu.add(usage, 0.1, t)
        self.last = t if self.last is None or t > self.last else self.last
        self.first = t if self.first is None or t < self.first else self.first
        self.count += 1


class Container:
    """Per pod-container memory state (``model/container.go``)."""

    def __init__(self, agg: Aggregate, memory_request: float = 0.0) -> None:
        self.agg = agg
        self.request = memory_request
        self.window_end: float | None = None
        self.peak = 0.0
        self.oom_peak = 0.0
        self.last_mem: float | None = None

    def add_memory(self, usage: float, t: float, is_oom: bool = False) -> bool:
        usage = float(math.floor(usage))
        if usage < 0 or (not is_oom and self.last_mem is not None and t < self.last_mem):
            return False
        self.last_mem = t
        if self.window_end is None:
            self.window_end = t
        add_new = False
        if t < self.window_end:
            old = max(self.peak, self.oom_peak)
            if old != 0 and usage > old:
                self.agg.mem.subtract(old, 1.0, self.window_end)
                add_new = True
        else:
            shift = math.floor((t - self.window_end) / DAY) * DAY + DAY
            self.window_end += shift
            self.peak = 0.0
            self.oom_peak = 0.0
            add_new = True
        if add_new:
            self.agg.mem.add(usage, 1.0, self.window_end)
            if is_oom:
                self.oom_peak = usage
            else:
                self.peak = usage
        return True

    def record_oom(self, t: float) -> None:
        used = max(math.floor(self.request), self.peak)
        needed = max(used + math.floor(100 * MIB), math.floor(used * 1.2))
        self.add_memory(needed, t, is_oom=True)


def scale(amount: float, factor: float) -> float:
    v = amount * factor
    if math.isnan(v):
        return 0.0
    return float(math.floor(min(max(v, 0.0), 1e14)))


def recommend(agg: Aggregate, containers_in_pod: int) -> dict[str, tuple[float, float]]:
    """target / lower_bound / upper_bound as (millicores, bytes)."""
    has = agg.first is not None and agg.last is not None
    conf = min((agg.last - agg.first) / DAY, agg.count / 1440.0) if has else 0.0  # type: ignore[operator]
    frac = 1.0 / containers_in_pod
    min_cpu, min_mem = scale(25.0, frac), scale(float(250 * 1024 * 1024), frac)
    out: dict[str, tuple[float, float]] = {}
    for name, p, mult, exp in (("target", 0.9, None, None), ("lower_bound", 0.5, 0.001, -2.0),
                               ("upper_bound", 0.95, 1.0, 1.0)):  # fmt: skip
        cpu = scale(scale(agg.cpu.percentile(p), 1000.0), 1.15)
        mem = scale(scale(agg.mem.percentile(p), 1.0), 1.15)
        if mult is not None and exp is not None:
            with_conf = math.inf if conf == 0 else (1 + mult / conf)
            f = math.inf**exp if math.isinf(with_conf) else with_conf**exp
            cpu, mem = scale(cpu, f), scale(mem, f)
        out[name] = (max(cpu, min_cpu), max(mem, min_mem))
    return out

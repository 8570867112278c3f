"""Prometheus metrics of the downscaler: what is down and what that saves.

Gauges describe the state after the last pass (objects down per kind and namespace, replicas, requested
CPU cores and memory released, estimated watts); counters integrate the watts over the time between passes
into kWh and grams CO2e, with the injected :class:`~zerowatt.kube.savings.PowerCoefficients`.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge

from zerowatt.kube.controller import PassReport
from zerowatt.kube.savings import PowerCoefficients


class DownscalerMetrics:
    def __init__(self, registry: CollectorRegistry, coefficients: PowerCoefficients | None = None) -> None:
        self.coefficients = coefficients or PowerCoefficients()
        p = "zerowatt_downscaler_"
        self.down = Gauge(
            p + "objects_down", "Objects downscaled, by kind and namespace", ["kind", "namespace"], registry=registry
        )
        self.replicas = Gauge(p + "released_replicas", "Pod replicas taken away by downscaling", registry=registry)
        self.cores = Gauge(p + "released_cpu_cores", "CPU cores of requests released by downscaling", registry=registry)
        self.memory = Gauge(p + "released_memory_bytes", "Memory requests released by downscaling", registry=registry)
        self.watts = Gauge(
            p + "saved_watts", "Estimated power saved now (released requests × coefficients)", registry=registry
        )
        self.kwh = Counter(p + "saved_energy_kwh", "Estimated energy saved", registry=registry)
        self.co2e = Counter(p + "saved_co2e_grams", "Estimated emissions avoided, grams CO2e", registry=registry)
        self.changes = Counter(
            p + "changes", "Objects scaled, by kind and direction", ["kind", "action"], registry=registry
        )
        self.errors = Counter(
            p + "errors", "Objects that could not be handled (invalid annotation, API error)", registry=registry
        )
        self.objects = Gauge(p + "objects_seen", "Objects looked at in the last pass", registry=registry)
        self.last_pass = Gauge(p + "last_pass_timestamp_seconds", "When the last pass finished", registry=registry)
        self._last: tuple[datetime, float] | None = None

    def observe(self, report: PassReport, now: datetime) -> None:
        if self._last is not None:  # integrate the power held since the previous pass
            seconds = max(0.0, (now - self._last[0]).total_seconds())
            kwh = self.coefficients.kwh(self._last[1], seconds)
            self.kwh.inc(kwh)
            self.co2e.inc(self.coefficients.co2e(kwh))
        watts = self.coefficients.watts(report.released.cores, report.released.memory)
        self.down.clear()
        for (kind, ns), count in report.down.items():
            self.down.labels(kind, ns).set(count)
        self.replicas.set(report.released.replicas)
        self.cores.set(report.released.cores)
        self.memory.set(report.released.memory)
        self.watts.set(watts)
        self.objects.set(report.objects)
        for change in report.changes:
            if change.applied:
                self.changes.labels(change.kind, change.action).inc()
        self.errors.inc(len(report.errors))
        self.last_pass.set(now.timestamp())
        self._last = (now, watts)

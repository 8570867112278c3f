"""Prometheus metrics of the downscaler: what is down and what that saves.

Gauges describe the state after the last pass (objects down per kind and namespace, replicas, requested
CPU cores and memory released, estimated watts); counters integrate the watts over the time between passes
into facility kWh and grams CO2e, with the injected :class:`~zerowatt.energy.capacity.CapacityPricing` (CCF's
averages when none is given).
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge

from zerowatt.energy.capacity import CapacityPricing, ccf_pricing
from zerowatt.kube.controller import PassReport


class DownscalerMetrics:
    def __init__(self, registry: CollectorRegistry, pricing: CapacityPricing | None = None) -> None:
        self.pricing = pricing or ccf_pricing()
        p = "zerowatt_downscaler_"
        self.down = Gauge(
            p + "objects_down", "Objects downscaled, by kind and namespace", ["kind", "namespace"], registry=registry
        )
        self.replicas = Gauge(p + "released_replicas", "Pod replicas taken away by downscaling", registry=registry)
        self.cores = Gauge(p + "released_cpu_cores", "CPU cores of requests released by downscaling", registry=registry)
        self.memory = Gauge(p + "released_memory_bytes", "Memory requests released by downscaling", registry=registry)
        self.watts = Gauge(
            p + "saved_watts",
            "Estimated facility power saved now (released requests × watts per core/GB × PUE)",
            registry=registry,
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
        self.watts_per_core = Gauge(
            p + "watts_per_released_core", "Watts one released CPU core is estimated to save", registry=registry
        )
        self.pue = Gauge(p + "pue", "Facility PUE applied to the estimate", registry=registry)
        self.carbon = Gauge(
            p + "grid_g_co2e_per_kwh", "Grid carbon intensity applied to the estimate", registry=registry
        )
        self.model = Gauge(
            p + "power_model_info", "Where the power coefficients come from (value 1)", ["basis"], registry=registry
        )
        c = self.pricing
        self.watts_per_core.set(c.watts_per_core)
        self.pue.set(c.facility.pue)
        self.carbon.set(c.facility.carbon_g_per_kwh)
        self.model.labels(c.basis).set(1)
        self._last: tuple[datetime, float] | None = None

    def observe(self, report: PassReport, now: datetime) -> None:
        if self._last is not None:  # integrate the power held since the previous pass
            cost = self.pricing.over(self._last[1], max(0.0, (now - self._last[0]).total_seconds()))
            self.kwh.inc(max(0.0, cost.kwh))
            self.co2e.inc(max(0.0, cost.co2e_grams))
        it_watts = self.pricing.it_watts(report.released.cores, report.released.memory)
        self.down.clear()
        for (kind, ns), count in report.down.items():
            self.down.labels(kind, ns).set(count)
        self.replicas.set(report.released.replicas)
        self.cores.set(report.released.cores)
        self.memory.set(report.released.memory)
        self.watts.set(it_watts * self.pricing.facility.pue)
        self.objects.set(report.objects)
        for change in report.changes:
            if change.applied:
                self.changes.labels(change.kind, change.action).inc()
        self.errors.inc(len(report.errors))
        self.last_pass.set(now.timestamp())
        self._last = (now, it_watts)

"""Prometheus metrics of the operator, read from its counters and cache when scraped (nothing while idle)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from zerowatt.operator.controller import Operator


class OperatorMetrics(Collector):
    """``zerowatt_operator_*``: reconciles, writes, errors, requeues, and apps by kind and acceptance."""

    def __init__(self, operator: Operator, registry: CollectorRegistry) -> None:
        self.operator = operator
        registry.register(self)

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self.operator.stats
        p = "zerowatt_operator_"
        yield CounterMetricFamily(p + "reconciles", "Apps reconciled (pure decisions made)", value=stats.reconciles)
        writes = CounterMetricFamily(p + "writes", "Writes sent to the API server, by kind", labels=["kind"])
        for kind, value in (
            ("apply", stats.applies),
            ("delete", stats.deletes),
            ("status", stats.status_writes),
            ("event", stats.events),
        ):
            writes.add_metric([kind], value)
        yield writes
        yield CounterMetricFamily(p + "errors", "Apps whose writes or decision failed", value=stats.errors)
        yield CounterMetricFamily(p + "requeues", "Apps requeued with backoff", value=stats.requeues)
        apps = GaugeMetricFamily(
            p + "apps", "Apps in the cache, by kind and Accepted condition", labels=["kind", "accepted"]
        )
        counts: dict[tuple[str, str], int] = {}
        for ref, obj in list(self.operator.apps.items()):
            accepted = "Unknown"
            for c in (obj.get("status") or {}).get("conditions") or ():
                if isinstance(c, dict) and c.get("type") == "Accepted":
                    accepted = str(c.get("status"))
            counts[(ref.kind, accepted)] = counts.get((ref.kind, accepted), 0) + 1
        for (kind, accepted), value in sorted(counts.items()):
            apps.add_metric([kind, accepted], value)
        yield apps
        yield GaugeMetricFamily(p + "queue_depth", "Apps waiting to be reconciled", value=len(self.operator.dirty))

"""The activator's Prometheus metrics, on a registry its owner passes in (adapter).

Scale-from-zero latency is split as the issue asks: ``api`` (request arrival → the scale subresource
answered: API round trips), ``pod_start`` (→ a ready endpoint seen: pod scheduling and the runtime's own
start, plus the activator's polling), ``proxy`` (→ the first byte from the pod) and ``total``.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60)
PHASES = ("api", "pod_start", "proxy", "total")


class ActivatorMetrics:
    """``zerowatt_activator_*`` metrics (labels: ``app`` is ``NAMESPACE/NAME``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.registry = reg
        self.held = Gauge(
            "zerowatt_activator_held_requests", "Requests held waiting for a ready endpoint.", ["app"], registry=reg
        )
        self.proxying = Gauge(
            "zerowatt_activator_proxied_in_flight", "Requests the activator is proxying now.", ["app"], registry=reg
        )
        self.requests = Counter(
            "zerowatt_activator_requests_total",
            "Requests answered by the activator, by app and code.",
            ["app", "code"],
            registry=reg,
        )
        self.cold_starts = Counter(
            "zerowatt_activator_cold_starts_total",
            "Requests that found no ready endpoint and were held (scale from zero).",
            ["app"],
            registry=reg,
        )
        self.scale_from_zero = Histogram(
            "zerowatt_activator_scale_from_zero_seconds",
            "Held request → first byte, by phase: api (scale subresource answered), pod_start (ready endpoint "
            "seen), proxy (first byte from the pod), total.",
            ["app", "phase"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.refused = Counter(
            "zerowatt_activator_refused_total",
            "Requests refused: over a holding limit (limit), deadline passed (deadline), no app (route).",
            ["reason"],
            registry=reg,
        )
        self.backend_refused = Counter(
            "zerowatt_activator_backend_refused_total",
            "Connections a listed pod refused (the request was held again and retried).",
            ["app"],
            registry=reg,
        )
        self.desired = Gauge(
            "zerowatt_activator_desired_replicas", "Replicas the policy asks for.", ["app"], registry=reg
        )
        self.ready = Gauge("zerowatt_activator_ready_endpoints", "Ready pod endpoints seen.", ["app"], registry=reg)
        self.scale_writes = Counter(
            "zerowatt_activator_scale_writes_total",
            "spec.replicas written through the scale subresource.",
            ["app"],
            registry=reg,
        )
        self.config_errors = Gauge(
            "zerowatt_activator_config_errors",
            "Bad zerowatt.dev/* annotations of an app (see the log).",
            ["app"],
            registry=reg,
        )
        self.api_errors = Counter(
            "zerowatt_activator_api_errors_total", "Failed Kubernetes API calls.", ["call"], registry=reg
        )
        self.apps = Gauge("zerowatt_activator_apps", "Apps behind the activator.", registry=reg)

    def phase(self, app: str, phase: str, seconds: float) -> None:
        self.scale_from_zero.labels(app, phase).observe(seconds)

    def child(self, metric: Any, *labels: str) -> Any:
        return metric.labels(*labels)

"""Prometheus metrics of the data plane, and the observer hook for per-request accounting.

With several worker processes prometheus-client's multiprocess mode is used: each worker writes its
samples to files under ``PROMETHEUS_MULTIPROC_DIR`` and the admin listener (in the supervisor)
aggregates them. The directory must be set in the environment before prometheus-client is imported
in a worker, which the supervisor guarantees by setting it before spawning workers.

Label children are cached per (app, component[, status]) because ``.labels()`` costs more than the
increment itself on the hot path. In a worker the host hands observations over in batches (once per
event-loop iteration, :meth:`HostMetrics.observe_many`): in multiprocess mode every increment is a
locked write to an ``mmap``-ed file, and four of them per request measured ~6 µs; a batch writes
each changed value once.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REQUEST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
REQUEST_JOULES_BUCKETS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)
COLD_START_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5)


class RequestObserver(Protocol):
    """Called after every request; the energy accounting plugs in here (joules = rate × cpu_seconds)."""

    def __call__(self, app: str, component: str, status: int, duration: float, cpu_seconds: float) -> None: ...


class HostMetrics:
    """The ``zerowatt_*`` metrics of one process (one worker)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.registry = reg
        labels = ("app", "component")
        self.requests = Counter(
            "zerowatt_requests_total",
            "HTTP requests served, by app, component and status code.",
            [*labels, "code"],
            registry=reg,
        )
        self.duration = Histogram(
            "zerowatt_request_duration_seconds",
            "Time from routing to the response being ready.",
            labels,
            buckets=REQUEST_BUCKETS,
            registry=reg,
        )
        self.cpu = Counter(
            "zerowatt_request_cpu_seconds_total",
            "CPU time spent serving requests: the guest's, and with energy accounting the worker's own work "
            "for each request (receiving, parsing, routing, answering).",
            labels,
            registry=reg,
        )
        self.cold_starts = Counter(
            "zerowatt_cold_starts_total", "Requests that had to load their component first.", labels, registry=reg
        )
        self.cold_start_duration = Histogram(
            "zerowatt_cold_start_duration_seconds",
            "Time to load a component (precompiled cache → ready).",
            labels,
            buckets=COLD_START_BUCKETS,
            registry=reg,
        )
        self.loaded = Gauge(
            "zerowatt_loaded_components",
            "Components loaded in memory (summed over worker processes).",
            labels,
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.instances = Gauge(
            "zerowatt_instances",
            "Instances ready to serve (WAGI: the component loaded; wasi:http: wasmtime serve children), "
            "summed over workers.",
            labels,
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.instance_starts = Counter(
            "zerowatt_instance_starts_total", "Instances started by the autoscaler.", labels, registry=reg
        )
        self.instance_seconds = Counter(
            "zerowatt_instance_seconds_total",
            "Seconds instances were ready (updated at each scaling event).",
            labels,
            registry=reg,
        )
        self.idle_instance_seconds = Counter(
            "zerowatt_idle_instance_seconds_total",
            "Seconds instances were ready without a request in flight (updated at each scaling event).",
            labels,
            registry=reg,
        )
        self.aborted = Counter(
            "zerowatt_requests_aborted",
            "Requests whose client went away while the guest ran; the guest was stopped (also counted as "
            "code 499 in zerowatt_requests_total).",
            labels,
            registry=reg,
        )
        self._children: dict[tuple[str, ...], Any] = {}
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (str(id(metric)), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def __call__(self, app: str, component: str, status: int, duration: float, cpu_seconds: float) -> None:
        self.request_done(app, component, status, duration, cpu_seconds)

    def _request_children_for(self, key: tuple[str, str, int]) -> tuple[Any, Any, Any]:
        """The (requests, duration, cpu) label children of one (app, component, status), cached."""
        children = self._request_children.get(key)
        if children is None:
            app, component, status = key
            children = self._request_children[key] = (
                self.requests.labels(app, component, str(status)),
                self.duration.labels(app, component),
                self.cpu.labels(app, component),
            )
        return children

    def request_done(self, app: str, component: str, status: int, duration: float, cpu_seconds: float) -> None:
        children = self._request_children_for((app, component, status))
        children[0].inc()
        children[1].observe(duration)
        if cpu_seconds:
            children[2].inc(cpu_seconds)

    def observe_many(self, batch: Sequence[Observation]) -> None:
        """:meth:`request_done` for every observation, each metric value written once per batch."""
        groups: dict[tuple[str, str, int], list[Observation]] = {}
        for item in batch:
            key = (item[0], item[1], item[2])
            group = groups.get(key)
            if group is None:
                groups[key] = [item]
            else:
                group.append(item)
        for key, items in groups.items():
            children = self._request_children_for(key)
            children[0].inc(len(items))
            observe_histogram(children[1], [item[3] for item in items])
            cpu = sum(item[4] for item in items)
            if cpu:
                children[2].inc(cpu)

    def request_waited(self, app: str, component: str) -> None:
        """A request found no instance ready (the activator held it, or let it through to a failed start):
        a cold start."""
        self._child(self.cold_starts, app, component).inc()

    def instance_started(self, app: str, component: str, seconds: float | None) -> None:
        """The autoscaler started an instance, a component load (``seconds``: how long it took, when known)."""
        self._child(self.instance_starts, app, component).inc()
        if seconds is not None:
            self._child(self.cold_start_duration, app, component).observe(seconds)

    def set_instances(self, app: str, component: str, n: int) -> None:
        self._child(self.instances, app, component).set(n)
        self._child(self.loaded, app, component).set(1 if n else 0)

    def instance_time(self, app: str, component: str, instance_seconds: float, idle_seconds: float) -> None:
        if instance_seconds:
            self._child(self.instance_seconds, app, component).inc(instance_seconds)
        if idle_seconds:
            self._child(self.idle_instance_seconds, app, component).inc(idle_seconds)

    def request_aborted(self, app: str, component: str) -> None:
        """The client of a request went away while its guest ran (the guest was stopped)."""
        self._child(self.aborted, app, component).inc()

    def set_loaded(self, app: str, component: str, loaded: bool) -> None:
        self._child(self.loaded, app, component).set(1 if loaded else 0)


class EnergyMetrics:
    """The per-request energy metrics of one process, on the registry of its :class:`HostMetrics`.

    ``zerowatt_app_joules_total{app,component}``, ``zerowatt_app_cpu_seconds_total`` and the
    ``zerowatt_request_joules`` histogram (docs/energy.md). They were process-global objects created
    when ``zerowatt.energy`` was imported; owned by the host, they cost nothing where nobody records
    energy, and two hosts in one process (tests) keep separate figures.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.registry = reg
        labels = ("app", "component")
        self.app_joules = Counter(
            "zerowatt_app_joules",
            "Energy attributed to WebAssembly app components (IT joules).",
            labels,
            registry=reg,
        )
        self.app_cpu_seconds = Counter(
            "zerowatt_app_cpu_seconds",
            "CPU time of app components' requests: the guest and the host's own work for each request.",
            labels,
            registry=reg,
        )
        self.host_joules = Counter(
            "zerowatt_host_joules",
            "Energy of the host's own work no request owns, by part: startup, metrics, idle (IT joules).",
            ("part",),
            registry=reg,
        )
        self.intervals = Counter(
            "zerowatt_energy_intervals",
            "Energy intervals closed (each process prices its CPU once per interval), summed over processes.",
            registry=reg,
        )
        self.host_cpu_seconds = Counter(
            "zerowatt_host_cpu_seconds", "CPU time of the host's own work, by part.", ("part",), registry=reg
        )
        self.request_joules = Histogram(
            "zerowatt_request_joules",
            "Energy of one request (IT joules).",
            labels,
            buckets=REQUEST_JOULES_BUCKETS,
            registry=reg,
        )

    def record(self, app: str, component: str, cpu_seconds: float, joules: Sequence[float]) -> None:
        """One batch of requests of (app, component): their summed CPU time and each one's joules."""
        self.app_joules.labels(app, component).inc(sum(joules))
        self.app_cpu_seconds.labels(app, component).inc(cpu_seconds)
        observe_histogram(self.request_joules.labels(app, component), joules)

    def record_host(self, part: str, cpu_seconds: float, joules: float) -> None:
        """One interval's host share of ``part``."""
        self.host_joules.labels(part).inc(joules)
        self.host_cpu_seconds.labels(part).inc(cpu_seconds)


ObserverList = list[RequestObserver]
#: One request as observers see it: (app, component, status, duration, cpu_seconds).
Observation = tuple[str, str, int, float, float]


def observe_histogram(child: Any, values: Sequence[float]) -> None:
    """``child.observe(v)`` for every value, writing each changed bucket and the sum once.

    Uses a prometheus-client histogram child's ``_upper_bounds``/``_buckets``/``_sum`` (what its
    own ``observe`` updates: non-cumulative bucket counts and the sum); falls back to ``observe``
    when a version lacks them.
    """
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if bounds is None or buckets is None or total is None:
        for value in values:
            child.observe(value)
        return
    counts = [0] * len(bounds)
    for value in values:
        counts[bisect_left(bounds, value)] += 1  # the first bound >= value, as observe() picks it
    total.inc(sum(values))
    for index, count in enumerate(counts):
        if count:
            buckets[index].inc(count)

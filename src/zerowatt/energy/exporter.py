"""Prometheus exporter: zerowatt's own metrics plus Kepler's (v0.10+) names and labels.

Kepler names and label sets (Kepler metrics reference): node metrics carry ``zone`` and ``path``; process
metrics ``pid, comm, exe, type, state, container_id, vm_id, zone``; container metrics ``container_id,
container_name, runtime, state, zone, pod_id``; all carry ``node_name``. So existing Kepler dashboards work
against ``zerowatt energy serve``. Per-zone workload energy uses the workload's share of the node's active
energy, the same share in every zone.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from zerowatt.energy.facility import Facility
from zerowatt.energy.gpu_metrics import GpuCollector, GpuTotals
from zerowatt.energy.grid import run_on_grid
from zerowatt.energy.kepler import cpu_info_rows, info_families, platform_family, workload_families
from zerowatt.energy.meter import MAX_TERMINATED, Meter, Totals
from zerowatt.energy.pods import Names
from zerowatt.energy.procfs import ProcessInfo
from zerowatt.energy.sources.base import LogOnce, SensorError
from zerowatt.energy.sources.nvml import NvmlSource
from zerowatt.units import JOULES_PER_KWH


class EnergyCollector(Collector):
    """Publishes a :class:`Totals` snapshot; sampling happens elsewhere (see :class:`Exporter`)."""

    def __init__(
        self,
        totals: Totals,
        lock: threading.Lock,
        facility: Facility,
        node_name: str,
        names: Names | None = None,
        cpuinfo: str = "",
    ) -> None:
        self.totals = totals
        self.lock = lock
        self.facility = facility
        self.node_name = node_name
        self.names = names if names is not None else Names()
        self.cpuinfo = cpu_info_rows(cpuinfo)

    def collect(self) -> Iterator[Any]:
        with self.lock:
            yield from self._families(self.totals)

    def _families(self, t: Totals) -> Iterator[Any]:
        node = self.node_name
        zl = ["zone", "path", "node_name"]
        kj = CounterMetricFamily("kepler_node_cpu_joules", "Node energy by zone (joules).", labels=zl)
        kw = GaugeMetricFamily("kepler_node_cpu_watts", "Node power by zone (watts).", labels=zl)
        ka = CounterMetricFamily("kepler_node_cpu_active_joules", "Active node energy by zone.", labels=zl)
        ki = CounterMetricFamily("kepler_node_cpu_idle_joules", "Idle node energy by zone.", labels=zl)
        kaw = GaugeMetricFamily("kepler_node_cpu_active_watts", "Active node power by zone.", labels=zl)
        kiw = GaugeMetricFamily("kepler_node_cpu_idle_watts", "Idle node power by zone.", labels=zl)
        for (zone, path), joules in sorted(t.zones.items()):
            labels = [zone, path, node]
            kj.add_metric(labels, joules)
            watts = t.zone_watts.get((zone, path), 0.0)
            kw.add_metric(labels, watts)
            ka.add_metric(labels, t.active.get((zone, path), 0.0))
            ki.add_metric(labels, t.idle.get((zone, path), 0.0))
            kaw.add_metric(labels, watts * t.usage)
            kiw.add_metric(labels, watts * (1 - t.usage))
        yield from (kj, kw, ka, ki, kaw, kiw)
        ku = GaugeMetricFamily("kepler_node_cpu_usage_ratio", "Node CPU usage ratio.", labels=["node_name"])
        ku.add_metric([node], t.usage)
        yield ku
        # A workload's share of the node is the same in every zone, so its energy in a zone is its node energy
        # × zone / node total (the total never double counts; core sits inside package, so shares can add
        # to more than 1 across zones, exactly as the zones themselves do). Cumulative ratios for counters,
        # the last interval's for watts.
        zone_fraction = {k: j / t.node_joules for k, j in t.zones.items()} if t.node_joules > 0 else {}
        zone_watts_fraction = {k: w / t.node_watts for k, w in t.zone_watts.items()} if t.node_watts > 0 else {}
        pl = ["pid", "comm", "exe", "type", "state", "container_id", "vm_id", "zone", "node_name"]
        pj = CounterMetricFamily("kepler_process_cpu_joules", "Process energy by zone (joules).", labels=pl)
        pw = GaugeMetricFamily("kepler_process_cpu_watts", "Process power by zone (watts).", labels=pl)
        ps = CounterMetricFamily(
            "kepler_process_cpu_seconds",
            "Process CPU time (seconds).",
            labels=["pid", "comm", "exe", "type", "container_id", "vm_id", "node_name"],
        )
        zj = CounterMetricFamily(
            "zerowatt_process_joules",
            "Process energy, node total zone (joules); exited processes stay with state=terminated.",
            labels=["pid", "comm", "container_id", "state"],
        )
        seconds: dict[tuple[str, ...], float] = {}
        process_joules: dict[tuple[str, ...], float] = {}
        for p in [*t.processes.values(), *t.terminated.values()]:
            if p.cpu_seconds <= 0 and p.joules <= 0:
                continue
            pid = str(p.info.pid)
            cid = p.info.container.container_id if p.info.container else ""
            vm = p.info.vm.vm_id if p.info.vm else ""
            kind = "vm" if p.info.vm else "container" if cid else "regular"
            # no state label on CPU seconds (Kepler's set): a reused pid with the same name sums into one series
            key = (pid, p.info.comm, p.info.exe, kind, cid, vm, node)
            seconds[key] = seconds.get(key, 0.0) + p.cpu_seconds
            own = (pid, p.info.comm, cid, p.state)  # no exe label: two terminated binaries may share it
            process_joules[own] = process_joules.get(own, 0.0) + p.joules
            for (zone, _path), frac in zone_fraction.items():
                labels = [pid, p.info.comm, p.info.exe, kind, p.state, cid, vm, zone, node]
                pj.add_metric(labels, p.joules * frac)
                pw.add_metric(labels, p.watts * zone_watts_fraction.get((zone, _path), 0.0))
        for names, value in seconds.items():
            ps.add_metric(list(names), value)
        for names, value in process_joules.items():
            zj.add_metric(list(names), value)
        yield from (pj, pw, ps, zj)
        rest = [
            (
                "zerowatt_node_unattributed_joules",
                "Active energy of CPU time no sampled process accounts for.",
                t.unattributed,
            ),
            (
                "zerowatt_node_idle_joules",
                "Idle energy kept at node level (not shared among workloads).",
                t.idle_at_node,
            ),
            (
                "zerowatt_terminated_joules",
                "Energy of terminated processes beyond the ones kept as series of their own.",
                t.terminated_joules,
            ),
        ]
        for name, text, value in rest:
            family = CounterMetricFamily(name, text + " Joules.")
            family.add_metric([], value)
            yield family
        cl = ["container_id", "container_name", "runtime", "state", "zone", "pod_id", "node_name"]
        cj = CounterMetricFamily("kepler_container_cpu_joules", "Container energy by zone (joules).", labels=cl)
        cw = GaugeMetricFamily("kepler_container_cpu_watts", "Container power by zone (watts).", labels=cl)
        cs = CounterMetricFamily(
            "kepler_container_cpu_seconds",
            "Container CPU time (seconds).",
            labels=["container_id", "container_name", "runtime", "state", "pod_id", "node_name"],
        )
        for cid, c in sorted(t.containers.items()):
            cname = self.names.container(cid).container_name
            cs.add_metric([cid, cname, c.ref.runtime, c.state, c.ref.pod_id, node], c.cpu_seconds)
            for (zone, _path), frac in zone_fraction.items():
                labels = [cid, cname, c.ref.runtime, c.state, zone, c.ref.pod_id, node]
                cj.add_metric(labels, c.joules * frac)
                cw.add_metric(labels, c.watts * zone_watts_fraction.get((zone, _path), 0.0))
        yield from (cj, cw, cs)
        yield from workload_families(t, self.names, node, zone_fraction, zone_watts_fraction)
        yield from info_families(self.cpuinfo)
        yield from platform_family(t, node)
        report = self.facility.report(t.node_joules)
        nj = CounterMetricFamily(
            "zerowatt_node_joules", "Node IT energy, no zone counted twice (joules).", labels=["source"]
        )
        src = t.source.name if t.source else "none"
        nj.add_metric([src], t.node_joules)
        fj = CounterMetricFamily("zerowatt_node_facility_joules", "Node energy × PUE (joules).")
        fj.add_metric([], report.facility_joules)
        co = CounterMetricFamily("zerowatt_node_co2e_grams", "Carbon of the facility energy (g CO2e).")
        co.add_metric([], report.co2e_grams)
        wa = CounterMetricFamily("zerowatt_node_water_litres", "Site water for the IT energy (litres).")
        wa.add_metric([], report.water_litres)
        nw = GaugeMetricFamily("zerowatt_node_watts", "Node IT power over the last interval (watts).")
        nw.add_metric([], t.node_watts)
        info = GaugeMetricFamily(
            "zerowatt_energy_source_info", "The power source in use.", labels=["source", "trust", "measures"]
        )
        if t.source is not None:
            info.add_metric([t.source.name, t.source.trust.value, t.source.measures], 1.0)
        fac = GaugeMetricFamily(
            "zerowatt_facility_info", "Facility factors in use.", labels=["pue", "wue", "carbon_g_per_kwh"]
        )
        fac.add_metric([f"{self.facility.pue:g}", f"{self.facility.wue:g}", f"{self.facility.carbon_g_per_kwh:g}"], 1.0)
        kwh = GaugeMetricFamily("zerowatt_joules_per_kwh", "Conversion constant for dashboards.")
        kwh.add_metric([], JOULES_PER_KWH)
        yield from (nj, fj, co, wa, nw, info, fac, kwh)


class Exporter:
    """Samples a :class:`Meter` every ``interval`` seconds (on the wall-clock grid, :mod:`zerowatt.energy.grid`)
    in a thread and serves the totals over HTTP."""

    def __init__(
        self,
        meter: Meter,
        facility: Facility,
        *,
        interval: float = 1.0,
        node_name: str | None = None,
        gpu: NvmlSource | None = None,
        max_terminated: int = MAX_TERMINATED,
        names: Names | None = None,
    ) -> None:
        self.meter = meter
        self.interval = interval
        self.totals = Totals(max_terminated=max_terminated)
        self.lock = threading.Lock()
        self.registry = CollectorRegistry()
        node = node_name or socket.gethostname()
        cpuinfo = meter.procs.cpuinfo()
        names = names if names is not None else Names()  # one cache for the CPU and GPU families
        self.registry.register(EnergyCollector(self.totals, self.lock, facility, node, names, cpuinfo))
        self.gpu = gpu
        self.gpu_totals = GpuTotals()
        if gpu is not None:
            self.registry.register(GpuCollector(self.gpu_totals, self.lock, node, self._live_process, names))
        self.problems = LogOnce()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: Any = None

    def _live_process(self, pid: int) -> ProcessInfo | None:
        """The running process with ``pid`` (for the GPU families' labels; called under the lock)."""
        for (p, _start), total in self.totals.processes.items():
            if p == pid:
                return total.info
        return None

    def step(self, now: float | None = None) -> None:
        """One sample (errors are logged once; the exporter keeps serving the last totals)."""
        t = time.monotonic() if now is None else now
        if self.gpu is not None:
            try:
                devices = self.gpu.sample(t)
                with self.lock:
                    self.gpu_totals.add(devices)
            except SensorError as exc:
                self.problems.warning(f"GPU sample failed: {exc}")
        try:
            iv = self.meter.sample(t)
        except (SensorError, OSError) as exc:
            self.problems.warning(f"energy sample failed: {exc}")
            return
        if iv is not None:
            with self.lock:
                self.totals.add(iv)

    def _run(self) -> None:
        # At the multiples of the interval since the epoch: the app host's samplers close the same intervals,
        # so its per-app joules and this exporter's per-process joules price each CPU-second alike.
        run_on_grid(lambda _tick: self.step(), self.interval, self._stop, time.time)

    def start(self, host: str, port: int) -> int:
        """Start sampling and serving; returns the bound port (``port`` 0 picks a free one)."""
        self.step()
        self._server, _ = start_http_server(port, addr=host, registry=self.registry)
        self._thread = threading.Thread(target=self._run, name="zerowatt-energy-sampler", daemon=True)
        self._thread.start()
        return int(self._server.server_port)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.gpu is not None:
            self.gpu.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

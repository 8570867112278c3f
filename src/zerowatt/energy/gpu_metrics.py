"""GPU families of the exporter: zerowatt's ``zerowatt_gpu_*`` and Kepler 0.10's ``kepler_node_gpu_*`` and
``kepler_process_gpu_*`` (labels from Kepler's metrics reference), from NVML samples (:mod:`.sources.nvml`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from zerowatt.energy.pods import Names
from zerowatt.energy.procfs import ProcessInfo
from zerowatt.energy.sources.nvml import GpuDeviceSample
from zerowatt.units import Joules


@dataclass
class GpuTotals:
    """Cumulative GPU energy per device and per (device, pid). Pure."""

    names: dict[int, str] = field(default_factory=dict)
    uuids: dict[int, str] = field(default_factory=dict)
    joules: dict[int, Joules] = field(default_factory=dict)
    watts: dict[int, float] = field(default_factory=dict)
    idle: dict[int, Joules] = field(default_factory=dict)
    idle_watts: dict[int, float] = field(default_factory=dict)
    processes: dict[tuple[int, int], Joules] = field(default_factory=dict)
    process_watts: dict[tuple[int, int], float] = field(default_factory=dict)

    def add(self, devices: list[GpuDeviceSample]) -> None:
        for d in devices:
            split = d.attribution()
            self.names[d.index] = d.name
            self.uuids[d.index] = d.uuid
            self.joules[d.index] = self.joules.get(d.index, 0.0) + d.joules
            self.idle[d.index] = self.idle.get(d.index, 0.0) + split.idle
            self.watts[d.index] = d.joules / d.seconds if d.seconds > 0 else 0.0
            self.idle_watts[d.index] = split.idle / d.seconds if d.seconds > 0 else 0.0
            for key in [k for k in self.process_watts if k[0] == d.index]:
                self.process_watts[key] = 0.0
            for pid, joules in split.workloads.items():
                self.processes[(d.index, pid)] = self.processes.get((d.index, pid), 0.0) + joules
                self.process_watts[(d.index, pid)] = joules / d.seconds if d.seconds > 0 else 0.0


class GpuCollector(Collector):
    """Publishes :class:`GpuTotals` under zerowatt names (``zerowatt_gpu_*``) and Kepler's
    (``kepler_node_gpu_*{gpu,gpu_uuid,gpu_name,vendor}``, ``kepler_process_gpu_*``, one series per process
    summed over its GPUs, as Kepler's labels have no ``gpu``; ``kepler_{container,pod}_gpu_*`` summed from
    them). ``process_info``: a running pid's name, binary and container from the CPU meter; remembered after
    it exits. ``names``: container and pod names."""

    def __init__(
        self,
        totals: GpuTotals,
        lock: threading.Lock,
        node_name: str,
        process_info: Callable[[int], ProcessInfo | None] | None = None,
        names: Names | None = None,
    ) -> None:
        self.totals = totals
        self.lock = lock
        self.node_name = node_name
        self.process_info = process_info
        self.names = names
        self._seen: dict[int, ProcessInfo] = {}  # GPU pids' details while they ran

    def collect(self) -> Iterator[Any]:
        with self.lock:
            yield from self._zerowatt(self.totals)
            yield from self._kepler(self.totals)

    def _zerowatt(self, t: GpuTotals) -> Iterator[Any]:
        labels = ["gpu", "name", "node_name"]
        gj = CounterMetricFamily("zerowatt_gpu_joules", "GPU board energy (joules).", labels=labels)
        gi = CounterMetricFamily("zerowatt_gpu_idle_joules", "GPU energy not attributed to processes.", labels=labels)
        gw = GaugeMetricFamily("zerowatt_gpu_watts", "GPU board power over the last interval.", labels=labels)
        for index in sorted(t.joules):
            lv = [str(index), t.names.get(index, ""), self.node_name]
            gj.add_metric(lv, t.joules[index])
            gi.add_metric(lv, t.idle.get(index, 0.0))
            gw.add_metric(lv, t.watts.get(index, 0.0))
        gp = CounterMetricFamily(
            "zerowatt_gpu_process_joules",
            "GPU energy by process (SM utilisation share).",
            labels=["gpu", "pid", "node_name"],
        )
        for (index, pid), joules in sorted(t.processes.items()):
            gp.add_metric([str(index), str(pid), self.node_name], joules)
        yield from (gj, gi, gw, gp)

    def _kepler(self, t: GpuTotals) -> Iterator[Any]:
        node = self.node_name
        labels = ["gpu", "gpu_uuid", "gpu_name", "vendor", "node_name"]
        fams: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
            "j": CounterMetricFamily("kepler_node_gpu_joules", "GPU energy (joules).", labels=labels),
            "w": GaugeMetricFamily("kepler_node_gpu_watts", "GPU power (watts).", labels=labels),
            "aj": CounterMetricFamily("kepler_node_gpu_active_joules", "GPU active energy (joules).", labels=labels),
            "ij": CounterMetricFamily("kepler_node_gpu_idle_joules", "GPU idle energy (joules).", labels=labels),
            "aw": GaugeMetricFamily("kepler_node_gpu_active_watts", "GPU active power (watts).", labels=labels),
            "iw": GaugeMetricFamily("kepler_node_gpu_idle_watts", "GPU idle power (watts).", labels=labels),
        }
        for index in sorted(t.joules):
            lv = [str(index), t.uuids.get(index, ""), t.names.get(index, ""), "nvidia", node]
            joules, idle = t.joules[index], t.idle.get(index, 0.0)
            watts, idle_w = t.watts.get(index, 0.0), t.idle_watts.get(index, 0.0)
            for key, value in (
                ("j", joules),
                ("w", watts),
                ("aj", joules - idle),
                ("ij", idle),
                ("aw", watts - idle_w),
                ("iw", idle_w),
            ):
                fams[key].add_metric(lv, value)
        yield from fams.values()
        pl = ["pid", "comm", "exe", "type", "state", "container_id", "vm_id", "node_name"]
        pj = CounterMetricFamily("kepler_process_gpu_joules", "Process GPU energy (joules).", labels=pl)
        pw = GaugeMetricFamily("kepler_process_gpu_watts", "Process GPU power (watts).", labels=pl)
        per_pid: dict[int, list[float]] = {}
        for (_, pid), joules in t.processes.items():
            acc = per_pid.setdefault(pid, [0.0, 0.0])
            acc[0] += joules
        for (_, pid), watts in t.process_watts.items():
            per_pid.setdefault(pid, [0.0, 0.0])[1] += watts
        cl = ["container_id", "container_name", "runtime", "state", "pod_id", "node_name"]
        cj = CounterMetricFamily("kepler_container_gpu_joules", "Container GPU energy (joules).", labels=cl)
        cw = GaugeMetricFamily("kepler_container_gpu_watts", "Container GPU power (watts).", labels=cl)
        podl = ["pod_id", "pod_name", "pod_namespace", "state", "node_name"]
        podj = CounterMetricFamily("kepler_pod_gpu_joules", "Pod GPU energy (joules).", labels=podl)
        podw = GaugeMetricFamily("kepler_pod_gpu_watts", "Pod GPU power (watts).", labels=podl)
        containers: dict[str, list[Any]] = {}  # id -> [joules, watts, running, ref]
        pods: dict[str, list[Any]] = {}
        for pid, (joules, watts) in sorted(per_pid.items()):
            live = self.process_info(pid) if self.process_info is not None else None
            if live is not None:
                self._seen[pid] = live
            info = live or self._seen.get(pid)  # an exited process keeps the names it had
            cid = info.container.container_id if info is not None and info.container else ""
            vm = info.vm.vm_id if info is not None and info.vm else ""
            kind = "vm" if vm else "container" if cid else "regular"
            state = "running" if live is not None else "terminated"
            lv = [str(pid), info.comm if info else "", info.exe if info else "", kind, state, cid, vm, node]
            pj.add_metric(lv, joules)
            pw.add_metric(lv, watts)
            if info is not None and info.container is not None:
                ref = info.container
                for key, table in ((cid, containers), (ref.pod_id, pods)):
                    if key:
                        acc = table.setdefault(key, [0.0, 0.0, False, ref])
                        acc[0] += joules
                        acc[1] += watts
                        acc[2] = acc[2] or live is not None
        for cid, (joules, watts, running, ref) in sorted(containers.items()):
            name = self.names.container(cid).container_name if self.names is not None else ""
            lv = [cid, name, ref.runtime, "running" if running else "terminated", ref.pod_id, node]
            cj.add_metric(lv, joules)
            cw.add_metric(lv, watts)
        for uid, (joules, watts, running, _ref) in sorted(pods.items()):
            pod = self.names.pod(uid) if self.names is not None else None
            lv = [
                uid,
                pod.pod_name if pod else "",
                pod.pod_namespace if pod else "",
                "running" if running else "terminated",
                node,
            ]
            podj.add_metric(lv, joules)
            podw.add_metric(lv, watts)
        yield from (pj, pw, cj, cw, podj, podw)

"""Kepler (0.10) families computed from what the exporter already has: pods, VMs, CPU info, build info.

Names and label sets follow Kepler's metrics reference (``docs/user/metrics.md`` in sustainable-computing-io/kepler):
``kepler_pod_cpu_{joules_total,watts}{pod_id,pod_name,pod_namespace,state,zone}``,
``kepler_vm_cpu_{joules_total,watts}{vm_id,vm_name,hypervisor,state,zone}``,
``kepler_node_cpu_info{processor,vendor_id,model_name,physical_id,core_id}``,
``kepler_build_info{arch,branch,revision,version,goversion}`` (these two without ``node_name``, as in Kepler),
``kepler_platform_watts``; the others carry ``node_name``. A pod is the sum of its
containers, a VM the sum of its hypervisor processes; either is ``running`` while one of them is.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from zerowatt.energy.meter import Totals
from zerowatt.energy.pods import Names
from zerowatt.energy.sources.base import ZoneKey
from zerowatt.units import Joules, Watts

CPU_INFO_FIELDS = ("processor", "vendor_id", "model name", "physical id", "core id")


def cpu_info_rows(text: str) -> list[tuple[str, str, str, str, str]]:
    """``(processor, vendor_id, model_name, physical_id, core_id)`` per logical CPU of ``/proc/cpuinfo`` text."""
    rows: list[tuple[str, str, str, str, str]] = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip(), value.strip())
        if "processor" in fields:
            p, v, m, ph, c = (fields.get(k, "") for k in CPU_INFO_FIELDS)
            rows.append((p, v, m, ph, c))
    return rows


@dataclass
class _Sum:
    joules: Joules = 0.0
    watts: Watts = 0.0
    running: bool = False


def _zone_split(
    family_j: CounterMetricFamily,
    family_w: GaugeMetricFamily,
    labels: list[str],
    s: _Sum,
    fractions: dict[ZoneKey, float],
    watt_fractions: dict[ZoneKey, float],
    node: str,
) -> None:
    state = "running" if s.running else "terminated"
    for (zone, path), frac in fractions.items():
        family_j.add_metric([*labels, state, zone, node], s.joules * frac)
        family_w.add_metric([*labels, state, zone, node], s.watts * watt_fractions.get((zone, path), 0.0))


def workload_families(
    t: Totals, names: Names, node: str, fractions: dict[ZoneKey, float], watt_fractions: dict[ZoneKey, float]
) -> Iterator[Any]:
    """Pods (from containers) and VMs (from hypervisor processes)."""
    pods: dict[str, _Sum] = {}
    for c in t.containers.values():
        if c.ref.pod_id:
            s = pods.setdefault(c.ref.pod_id, _Sum())
            s.joules += c.joules
            s.watts += c.watts
            s.running = s.running or c.state == "running"
    pl = ["pod_id", "pod_name", "pod_namespace", "state", "zone", "node_name"]
    pj = CounterMetricFamily("kepler_pod_cpu_joules", "Pod energy by zone (joules).", labels=pl)
    pw = GaugeMetricFamily("kepler_pod_cpu_watts", "Pod power by zone (watts).", labels=pl)
    for uid, s in sorted(pods.items()):
        pod = names.pod(uid)
        _zone_split(
            pj,
            pw,
            [uid, pod.pod_name if pod else "", pod.pod_namespace if pod else ""],
            s,
            fractions,
            watt_fractions,
            node,
        )
    yield from (pj, pw)
    vms: dict[tuple[str, str, str], _Sum] = {}
    for p in [*t.processes.values(), *t.terminated.values()]:
        vm = p.info.vm
        if vm is not None:
            s = vms.setdefault((vm.vm_id, vm.vm_name, vm.hypervisor), _Sum())
            s.joules += p.joules
            s.watts += p.watts
            s.running = s.running or p.state == "running"
    vl = ["vm_id", "vm_name", "hypervisor", "state", "zone", "node_name"]
    vj = CounterMetricFamily("kepler_vm_cpu_joules", "Virtual machine energy by zone (joules).", labels=vl)
    vw = GaugeMetricFamily("kepler_vm_cpu_watts", "Virtual machine power by zone (watts).", labels=vl)
    for key, s in sorted(vms.items()):
        _zone_split(vj, vw, list(key), s, fractions, watt_fractions, node)
    yield from (vj, vw)


def info_families(cpuinfo: list[tuple[str, str, str, str, str]]) -> Iterator[Any]:
    """``kepler_node_cpu_info`` (one sample per logical CPU) and ``kepler_build_info`` (zerowatt's own build)."""
    ci = GaugeMetricFamily(
        "kepler_node_cpu_info",
        "CPU information from procfs.",
        labels=["processor", "vendor_id", "model_name", "physical_id", "core_id"],  # no node_name, as Kepler's
    )
    for row in cpuinfo:
        ci.add_metric(list(row), 1.0)
    yield ci
    try:
        version = metadata.version("zerowatt")
    except metadata.PackageNotFoundError:
        version = "unknown"
    bi = GaugeMetricFamily(
        "kepler_build_info",
        "Build information: zerowatt's version; goversion holds the Python version (zerowatt is not written in Go).",
        labels=["arch", "branch", "revision", "version", "goversion"],
    )
    bi.add_metric([platform.machine(), "", "", version, f"python{platform.python_version()}"], 1.0)
    yield bi


def platform_family(t: Totals, node: str) -> Iterator[Any]:
    """``kepler_platform_watts``: Kepler reads a BMC (Redfish); zerowatt exports the one platform meter it can
    read, an ACPI ``power_meter`` through hwmon (measured at the wall, like a BMC's chassis power)."""
    fam = GaugeMetricFamily(
        "kepler_platform_watts",
        "Platform power from an ACPI power meter (watts).",
        labels=["source", "bmc_id", "chassis_id", "source_id", "source_name", "source_type", "node_name"],
    )
    for (zone, path), watts in sorted(t.zone_watts.items()):
        if zone.startswith("power_meter"):
            fam.add_metric(["hwmon", "", "", path, zone, "acpi_power_meter", node], watts)
    yield fam

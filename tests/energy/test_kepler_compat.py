"""Kepler 0.10 compatibility: every metric Kepler's Grafana dashboard queries exists, with Kepler's labels.

``tests/energy/data/kepler_0.10_metrics.json`` holds what was read from Kepler's repository (see its
``credit``): the metrics reference (each family's type and label names) and, for the dashboard, each metric
it queries and the labels its queries use. A synthetic node — RAPL, a Kubernetes pod's container named by the
kubelet's log links (real symlinks), a KubeVirt/libvirt QEMU process, a plain process, and a replayed NVIDIA
GPU — goes through the real exporter; its rendered /metrics must satisfy both.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.energy.conftest import FakeNvml, RaplTree
from zerowatt.energy.exporter import Exporter
from zerowatt.energy.facility import Facility
from zerowatt.energy.meter import Meter
from zerowatt.energy.model import ModelChoice, NodePowerModel
from zerowatt.energy.pods import Names, parse_container_link, parse_pod_dir
from zerowatt.energy.procfs import ProcReader
from zerowatt.energy.sources.model import ModelSource
from zerowatt.energy.sources.nvml import NvmlSource
from zerowatt.energy.sources.rapl import RaplSource
from zerowatt.energy.vms import vm_from_cmdline

KEPLER = json.loads((Path(__file__).parent / "data" / "kepler_0.10_metrics.json").read_text())
CID = "a1" * 32
POD_UID = "8f2c1b7e-3d4a-4c5b-9e6f-0a1b2c3d4e5f"
VM_UUID = "5a9e3f1c-7b2d-4e8a-b6c4-d0e1f2a3b4c5"
CPUINFO = "".join(
    f"processor\t: {i}\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7763 64-Core Processor\n"
    f"physical id\t: 0\ncore id\t\t: {i}\n\n"
    for i in range(2)
)


def _stat(busy: int, total: int) -> str:
    return f"cpu  {busy} 0 0 {total - busy} 0 0 0 0 0 0\ncpu0 {busy} 0 0 {total - busy} 0 0 0 0 0 0\n"


def _pid(root: Path, pid: int, comm: str, ticks: int, cgroup: str, cmdline: list[str] | None = None) -> None:
    d = root / str(pid)
    d.mkdir(exist_ok=True)
    (d / "stat").write_text(f"{pid} ({comm}) S 1 {pid} {pid} 0 -1 0 0 0 0 0 {ticks} 0 0 0 20 0 1 0 {pid} 0 0\n")
    (d / "cgroup").write_text(cgroup)
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in (cmdline or [comm])) + b"\0")


def _node(tmp: Path) -> tuple[Path, Names]:
    proc = tmp / "proc"
    proc.mkdir()
    (proc / "cpuinfo").write_text(CPUINFO)
    logs = tmp / "log"
    pod_dir = logs / "pods" / f"shop_web-7d9f_{POD_UID}" / "nginx"
    pod_dir.mkdir(parents=True)
    (pod_dir / "0.log").write_text("")
    (logs / "containers").mkdir()
    os.symlink(pod_dir / "0.log", logs / "containers" / f"web-7d9f_shop_nginx-{CID}.log")
    return proc, Names(log_root=str(logs), docker_root=str(tmp / "docker"))


def _write(proc: Path, tick: int) -> None:
    pod = POD_UID.replace("-", "_")
    cgroup = (
        f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{pod}.slice/cri-containerd-{CID}.scope\n"
    )
    _pid(proc, 100, "nginx", 10 * tick, cgroup)
    _pid(proc, 435, "python", 2 * tick, cgroup)  # the replayed GPU's process A, in the same container
    qemu = ["/usr/libexec/qemu-kvm", "-name", "guest=vms_testvm,debug-threads=on", "-uuid", VM_UUID]
    _pid(proc, 200, "qemu-kvm", 20 * tick, "0::/machine.slice/machine-qemu.scope\n", qemu)
    _pid(proc, 300, "batch", 5 * tick, "0::/user.slice\n")
    (proc / "stat").write_text(_stat(40 * tick, 100 * tick + 100))


def _families(exporter: Exporter) -> dict[str, Any]:
    text = generate_latest(exporter.registry).decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        name = fam.name + ("_total" if fam.type == "counter" else "")
        out[name] = fam
    return out


def _render(tmp: Path, rapl: RaplTree, gpu: NvmlSource | None = None) -> dict[str, Any]:
    proc, names = _node(tmp)
    rapl.add("intel-rapl:0", "package-0", 0)
    rapl.add("intel-rapl:0:1", "dram", 0)
    _write(proc, 1)
    exporter = Exporter(
        Meter(RaplSource(str(rapl.root)), ProcReader(str(proc))), Facility(), node_name="n1", gpu=gpu, names=names
    )
    exporter.step(0.0)
    _write(proc, 2)
    rapl.set("intel-rapl:0", 50_000_000)
    rapl.set("intel-rapl:0:1", 5_000_000)
    if gpu is not None:
        gpu.nvml.t = 60.0  # type: ignore[attr-defined]
    exporter.step(60.0)
    return _families(exporter)


def _check_reference(fams: dict[str, Any], name: str) -> None:
    ref = KEPLER["reference"][name]
    fam = fams.get(name)
    assert fam is not None and fam.samples, f"{name}: not exported"
    assert fam.type == ref["type"].lower(), (name, fam.type)
    for sample in fam.samples:
        if sample.name.endswith("_created"):
            continue
        assert sorted(sample.labels) == ref["labels"], (name, sorted(sample.labels), ref["labels"])


def test_every_metric_the_dashboard_queries_exists_with_keplers_labels(tmp_path: Path, rapl: RaplTree) -> None:
    fams = _render(tmp_path, rapl)
    for name, queried in KEPLER["dashboard"].items():
        _check_reference(fams, name)
        for label in queried:  # what the panel filters or groups by has a value
            assert any(s.labels.get(label) for s in fams[name].samples), (name, label)
    containers = fams["kepler_container_cpu_watts"].samples
    assert {s.labels["container_name"] for s in containers} == {"nginx"}
    pods = fams["kepler_pod_cpu_watts"].samples
    assert {(s.labels["pod_name"], s.labels["pod_namespace"], s.labels["pod_id"]) for s in pods} == {
        ("web-7d9f", "shop", POD_UID)
    }
    vms = fams["kepler_vm_cpu_watts"].samples
    assert {(s.labels["vm_id"], s.labels["vm_name"], s.labels["hypervisor"]) for s in vms} == {
        (VM_UUID, "vms_testvm", "kvm")
    }
    assert {s.labels["model_name"] for s in fams["kepler_node_cpu_info"].samples} == {"AMD EPYC 7763 64-Core Processor"}
    # the VM is its QEMU process's energy
    vm_j = sum(s.value for s in fams["kepler_vm_cpu_joules_total"].samples if s.labels["zone"] == "package")
    qemu_j = sum(
        s.value
        for s in fams["kepler_process_cpu_joules_total"].samples
        if s.labels["pid"] == "200" and s.labels["zone"] == "package"
    )
    assert vm_j == pytest.approx(qemu_j) and vm_j > 0


def test_every_kepler_family_zerowatt_exports_matches_keplers_reference(tmp_path: Path, rapl: RaplTree) -> None:
    fams = _render(tmp_path, rapl)
    exported = {name for name, fam in fams.items() if name.startswith("kepler_") and fam.samples}
    assert exported - set(KEPLER["reference"]) == set()
    for name in exported:
        _check_reference(fams, name)
    for name in (
        "kepler_container_cpu_seconds_total",
        "kepler_pod_cpu_joules_total",
        "kepler_vm_cpu_joules_total",
        "kepler_build_info",
    ):
        assert name in exported


def test_gpu_families_have_keplers_labels(tmp_path: Path, rapl: RaplTree, fake_nvml: FakeNvml) -> None:
    fams = _render(tmp_path, rapl, NvmlSource(fake_nvml))
    for name in KEPLER["reference"]:
        if "_gpu_" in name:
            _check_reference(fams, name)
    containers = fams["kepler_container_gpu_joules_total"].samples
    assert [(s.labels["container_name"], s.labels["state"]) for s in containers] == [("nginx", "running")]
    process = [s for s in fams["kepler_process_gpu_joules_total"].samples if s.labels["pid"] == "435"]
    assert containers[0].value == pytest.approx(process[0].value) and process[0].value > 0
    pods = fams["kepler_pod_gpu_joules_total"].samples
    assert [(s.labels["pod_name"], s.labels["pod_namespace"]) for s in pods] == [("web-7d9f", "shop")]


def test_model_zone_is_keplers_psys_and_says_it_is_modelled(tmp_path: Path) -> None:
    proc, names = _node(tmp_path)
    _write(proc, 1)
    source = ModelSource(ModelChoice(NodePowerModel(10.0, 50.0, 2), "configured", "test"))
    exporter = Exporter(Meter(source, ProcReader(str(proc))), Facility(), node_name="n1", names=names)
    exporter.step(0.0)
    _write(proc, 2)
    exporter.step(1.0)
    samples = _families(exporter)["kepler_node_cpu_joules_total"].samples
    assert {(s.labels["zone"], s.labels["path"]) for s in samples} == {("psys", "model:configured")}


def test_names_vms_and_pods_parsers() -> None:
    parsed = parse_container_link(f"web-7d9f_shop_nginx-sidecar-{CID}.log")
    assert parsed is not None and parsed[1].container_name == "nginx-sidecar" and parsed[1].pod_namespace == "shop"
    assert parse_container_link("not-a-log.txt") is None
    pod = parse_pod_dir(f"kube-system_coredns-5d78c9869d-abcde_{POD_UID}")
    assert pod is not None and pod[1].pod_name == "coredns-5d78c9869d-abcde" and pod[1].pod_namespace == "kube-system"
    assert vm_from_cmdline(["/usr/bin/qemu-system-x86_64", "-name", "plain"]) == vm_from_cmdline(
        ["/usr/bin/qemu-system-x86_64", "-name=plain"]
    )
    vm = vm_from_cmdline(["/usr/lib/virtualbox/VBoxHeadless", "--comment", "box", "--startvm", "id-1"])
    assert vm is not None and (vm.vm_id, vm.vm_name, vm.hypervisor) == ("id-1", "box", "virtualbox")
    vm = vm_from_cmdline(["/usr/bin/vmware-vmx", "-s", "x", "/vms/win11.vmx"])
    assert vm is not None and (vm.vm_name, vm.hypervisor) == ("win11", "vmware")
    vm = vm_from_cmdline(["/usr/lib/xen/bin/qemu-system-i386", "-xen-domid", "7", "-name", "dom7"])
    assert vm is not None and (vm.vm_id, vm.vm_name, vm.hypervisor) == ("7", "dom7", "xen")
    assert vm_from_cmdline(["/usr/bin/python3", "-name", "x"]) is None
    assert vm_from_cmdline([]) is None


def test_docker_container_names_come_from_its_config(tmp_path: Path) -> None:
    d = tmp_path / "docker" / "containers" / CID
    d.mkdir(parents=True)
    (d / "config.v2.json").write_text(json.dumps({"Name": "/redis-cache"}))
    names = Names(log_root=str(tmp_path / "nolog"), docker_root=str(tmp_path / "docker"))
    assert names.container(CID).container_name == "redis-cache"
    assert names.container("f" * 64).container_name == ""

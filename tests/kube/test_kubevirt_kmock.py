"""KubeVirt VirtualMachines on kmock: every run strategy through a downtime and back, as KubeVirt would run them.

The VMs are shaped like KubeVirt's ``examples/vm-cirros.yaml``; the emulator answers the ``start`` subresource as
virt-api does and :meth:`Emulator.kubevirt_sync` plays virt-controller, so "running" below means what KubeVirt
would do with the spec the downscaler left.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from tests.kube.conftest import NOW, OLD
from tests.kube.emulator import RUNNING, STOPPED, EmulatorThread, Fault
from tests.kube.test_controller_kmock import controller, create, emu, events, get
from zerowatt.kube import annotations as ann

#: KubeVirt's examples/vm-cirros.yaml (the demo disk image and cloud-init), with requests for the savings count.
CIRROS: dict[str, Any] = {
    "apiVersion": "kubevirt.io/v1",
    "kind": "VirtualMachine",
    "metadata": {"labels": {"kubevirt.io/vm": "vm-cirros"}, "name": "vm-cirros"},
    "spec": {
        "runStrategy": "Halted",
        "template": {
            "metadata": {"labels": {"kubevirt.io/vm": "vm-cirros"}},
            "spec": {
                "domain": {
                    "devices": {
                        "disks": [
                            {"disk": {"bus": "virtio"}, "name": "containerdisk"},
                            {"disk": {"bus": "virtio"}, "name": "cloudinitdisk"},
                        ]
                    },
                    "memory": {"guest": "128Mi"},
                    "resources": {"requests": {"cpu": "1", "memory": "256Mi"}},
                },
                "terminationGracePeriodSeconds": 0,
                "volumes": [
                    {"containerDisk": {"image": "quay.io/kubevirt/cirros-container-disk-demo"},
                     "name": "containerdisk"},
                    {"cloudInitNoCloud": {"userData": "#!/bin/sh\n\necho 'printed from cloud-init userdata'\n"},
                     "name": "cloudinitdisk"},
                ],
            },
        },
    },
}  # fmt: skip


def vm(name: str, spec: dict[str, Any], status: dict[str, Any] | None, namespace: str = "lab") -> dict[str, Any]:
    obj = copy.deepcopy(CIRROS)
    obj["metadata"].update(name=name, namespace=namespace, creationTimestamp=OLD, resourceVersion="1")
    del obj["spec"]["runStrategy"]
    obj["spec"].update(spec)
    if status is not None:
        obj["status"] = dict(status)
    return obj


def running(kube: EmulatorThread, name: str) -> bool:
    st = get(kube, "virtualmachines", "lab", name).get("status") or {}
    return bool(st.get("created")) and st.get("printableStatus") != "Stopped"


@pytest.fixture
def lab(kube: EmulatorThread) -> EmulatorThread:
    emu(kube).add_namespace("lab", {ann.UPTIME: "never"})
    vms = {
        "always": ({"runStrategy": "Always"}, RUNNING),
        "legacy": ({"running": True}, RUNNING),
        "rerun": ({"runStrategy": "RerunOnFailure"}, {**RUNNING, "runStrategy": "RerunOnFailure"}),
        "once": ({"runStrategy": "Once"}, {**RUNNING, "runStrategy": "Once"}),
        "manual": ({"runStrategy": "Manual"}, {**RUNNING, "runStrategy": "Manual"}),
        "manual-off": ({"runStrategy": "Manual"}, {**STOPPED, "runStrategy": "Manual"}),  # its owner stopped it
        "once-done": ({"runStrategy": "Once"}, {"created": True, "printableStatus": "Stopped", "runStrategy": "Once"}),
        "halted": ({"runStrategy": "Halted"}, STOPPED),
        "receiver": ({"runStrategy": "WaitAsReceiver"}, {"created": True, "printableStatus": "WaitingForReceiver"}),
        "sometimes": ({"runStrategy": "Sometimes"}, RUNNING),
        "bare": ({}, RUNNING),
    }
    for name, (spec, status) in vms.items():
        create(kube, "virtualmachines", vm(name, spec, status))
    emu(kube).served.clear()
    return kube


def test_every_run_strategy_through_a_downtime(lab: EmulatorThread) -> None:
    e = emu(lab)
    report = controller(lab, include="virtualmachines", enable_events=True).run_pass(NOW)
    changed = sorted(c.name for c in report.changes)
    assert changed == ["always", "legacy", "manual", "once", "rerun"]
    assert {w for w, _ in report.errors} == {
        "VirtualMachine lab/receiver", "VirtualMachine lab/sometimes", "VirtualMachine lab/bare",
    }  # fmt: skip
    errors = dict(report.errors)
    assert "WaitAsReceiver" in errors["VirtualMachine lab/receiver"]
    assert "'Sometimes' is not one of" in errors["VirtualMachine lab/sometimes"]
    assert "neither spec.running nor spec.runStrategy" in errors["VirtualMachine lab/bare"]
    for name in ("receiver", "sometimes", "bare"):  # untouched
        assert ann.ORIGINAL_REPLICAS not in (
            get(lab, "virtualmachines", "lab", name)["metadata"].get("annotations") or {}
        )
    warnings = {ev["involvedObject"]["name"]: ev["reason"] for ev in events(lab, "lab") if ev["type"] == "Warning"}
    assert warnings == {"receiver": "UnsupportedObject", "sometimes": "UnsupportedObject", "bare": "UnsupportedObject"}

    # Released capacity: the five VMs that ran; not the Manual VM its owner had stopped, nor the finished Once VM.
    assert report.released.replicas == 5 and report.released.cores == pytest.approx(5.0)
    assert (
        get(lab, "virtualmachines", "lab", "manual-off")["spec"]
        == vm("manual-off", {"runStrategy": "Manual"}, None)["spec"]
    )

    lab.call(e.kubevirt_sync)
    assert [n for n in ("always", "legacy", "rerun", "once", "manual") if running(lab, n)] == []
    again = controller(lab, include="virtualmachines").run_pass(NOW + timedelta(minutes=1))
    assert again.changes == [] and again.released.replicas == 5  # a second pass writes nothing

    e.namespaces["lab"]["metadata"]["annotations"][ann.UPTIME] = "always"
    e.served.clear()
    up = controller(lab, include="virtualmachines").run_pass(NOW + timedelta(hours=1))
    assert sorted(c.name for c in up.changes) == ["always", "legacy", "manual", "once", "rerun"]
    starts = [(m, p) for m, p in e.served if p.endswith("/start")]
    assert starts == [("PUT", "/apis/subresources.kubevirt.io/v1/namespaces/lab/virtualmachines/manual/start")]
    last_patch = max(i for i, (m, p) in enumerate(e.served) if m == "PATCH" and p.endswith("/virtualmachines/manual"))
    assert e.served.index(starts[0]) > last_patch  # started after runStrategy Manual is back, not while Halted
    manual = get(lab, "virtualmachines", "lab", "manual")
    assert [e for w, e in up.errors if w == "VirtualMachine lab/manual"] == []
    assert manual["spec"]["runStrategy"] == "Manual" and manual["status"]["stateChangeRequests"] == [
        {"action": "Start"}
    ]
    legacy = get(lab, "virtualmachines", "lab", "legacy")["spec"]
    assert legacy["running"] is True and "runStrategy" not in legacy
    for name, strategy in (("always", "Always"), ("rerun", "RerunOnFailure"), ("once", "Once")):
        obj = get(lab, "virtualmachines", "lab", name)
        assert obj["spec"]["runStrategy"] == strategy
        assert ann.ORIGINAL_RUN_STRATEGY not in (obj["metadata"].get("annotations") or {})

    lab.call(e.kubevirt_sync)
    assert [n for n in ("always", "legacy", "rerun", "once", "manual") if not running(lab, n)] == []
    assert not running(lab, "manual-off") and not running(lab, "once-done")  # stopped by their owners: still off


def test_forged_state_is_not_written_back(kube: EmulatorThread) -> None:
    emu(kube).add_namespace("lab")
    forged = vm("forged", {"runStrategy": "Halted"}, STOPPED)
    forged["metadata"]["annotations"] = {ann.ORIGINAL_REPLICAS: "1", ann.ORIGINAL_RUN_STRATEGY: "Bogus"}
    create(kube, "virtualmachines", forged)
    report = controller(kube, include="virtualmachines").run_pass(NOW)
    assert report.changes == [] and [w for w, _ in report.errors] == ["VirtualMachine lab/forged"]
    assert "'Bogus'" in report.errors[0][1]
    assert get(kube, "virtualmachines", "lab", "forged")["spec"]["runStrategy"] == "Halted"
    assert [m for m, p in emu(kube).served if "virtualmachines/forged" in p and m != "GET"] == []


def test_a_failed_start_is_reported_with_the_way_out(kube: EmulatorThread) -> None:
    emu(kube).add_namespace("lab")
    halted = vm("manual", {"runStrategy": "Halted"}, STOPPED)
    halted["metadata"]["annotations"] = {ann.ORIGINAL_REPLICAS: "1", ann.ORIGINAL_RUN_STRATEGY: "Manual"}
    create(kube, "virtualmachines", halted)
    emu(kube).faults.append(Fault("PUT", r".*/virtualmachines/manual/start", 403))
    report = controller(kube, include="virtualmachines", enable_events=True).run_pass(NOW)
    assert [c.name for c in report.changes] == ["manual"]
    assert [w for w, _ in report.errors] == ["VirtualMachine lab/manual"]
    assert "403" in report.errors[0][1] and "virtctl start" in report.errors[0][1]
    assert get(kube, "virtualmachines", "lab", "manual")["spec"]["runStrategy"] == "Manual"
    assert [ev["reason"] for ev in events(kube, "lab")] == ["ScaleUp", "StartFailed"]


def test_dry_run_neither_patches_nor_starts(kube: EmulatorThread) -> None:
    emu(kube).add_namespace("lab")
    halted = vm("manual", {"runStrategy": "Halted"}, STOPPED)
    halted["metadata"]["annotations"] = {ann.ORIGINAL_REPLICAS: "1", ann.ORIGINAL_RUN_STRATEGY: "Manual"}
    create(kube, "virtualmachines", halted)
    emu(kube).served.clear()
    report = controller(kube, include="virtualmachines", dry_run=True).run_pass(NOW)
    assert [(c.name, c.action, c.applied) for c in report.changes] == [("manual", "up", False)]
    assert [m for m, _ in emu(kube).served if m != "GET"] == []


def test_a_conflict_on_the_restore_still_starts_the_manual_vm(kube: EmulatorThread) -> None:
    emu(kube).add_namespace("lab")
    halted = vm("manual", {"runStrategy": "Halted"}, STOPPED)
    halted["metadata"]["annotations"] = {ann.ORIGINAL_REPLICAS: "1", ann.ORIGINAL_RUN_STRATEGY: "Manual"}
    create(kube, "virtualmachines", halted)

    def other_writer(e: Any) -> None:  # someone labels the VM between our list and our patch
        vm_obj = next(v for _, n, v in e.vms() if n == "manual")
        vm_obj.patch({"metadata": {"labels": {"owner": "team-a"}, "resourceVersion": "2"}})

    emu(kube).faults.append(Fault("PATCH", r".*/virtualmachines/manual", 409, before=other_writer))
    report = controller(kube, include="virtualmachines").run_pass(NOW)
    assert report.errors == [] and [c.name for c in report.changes] == ["manual"]
    served = [m for m, p in emu(kube).served if "/virtualmachines/manual" in p]
    assert served == ["PATCH", "GET", "PATCH", "PUT"]
    obj = get(kube, "virtualmachines", "lab", "manual")
    assert obj["spec"]["runStrategy"] == "Manual" and obj["metadata"]["labels"]["owner"] == "team-a"
    assert obj["status"]["stateChangeRequests"] == [{"action": "Start"}]

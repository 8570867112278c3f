"""Virtual machines from a command line: QEMU/KVM (libvirt, KubeVirt's virt-launcher), Xen, VirtualBox, VMware.

The rules follow Kepler 0.10 (``internal/resource/vm.go``): the executable path names the hypervisor
(``bin/qemu-system-*``, ``libexec/qemu-kvm``, ``bin/kvm`` → ``kvm``, or ``xen`` with ``-xen-domid``, whose
value is then the id; ``virtualbox/VBoxHeadless`` and friends → ``virtualbox``; ``bin/vmware-vmx`` →
``vmware``). QEMU's id is ``-uuid`` else its name; its name is ``-name guest=NAME,...`` (libvirt; KubeVirt
writes ``<namespace>_<vm>``) or ``-name NAME``. Pure functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PATTERNS = (
    (re.compile(r"(bin/qemu-system-\w+|libexec/qemu-kvm|bin/kvm)"), "kvm"),
    (re.compile(r"virtualbox/(VBoxHeadless|VBoxSDL|VirtualBoxVM)"), "virtualbox"),
    (re.compile(r"bin/vmware-vmx"), "vmware"),
)
#: Process names worth reading the command line of (cheap pre-filter: one read per new process otherwise).
VM_COMMS = ("qemu", "kvm", "VBox", "VirtualBoxVM", "vmware-vmx")


@dataclass(frozen=True)
class VmRef:
    vm_id: str
    vm_name: str
    hypervisor: str


def _qemu_name(argv: list[str]) -> str:
    for i, arg in enumerate(argv):
        if arg == "-name" and i + 1 < len(argv):
            value = argv[i + 1]
            for part in value.split(","):
                if part.startswith("guest="):
                    return part[len("guest=") :]
            return value
        if arg.startswith("-name="):
            return arg[len("-name=") :]
    return ""


def _after(argv: list[str], *flags: str) -> str:
    for i, arg in enumerate(argv):
        if arg.lstrip("-") in flags and i + 1 < len(argv):
            return argv[i + 1]
    return ""


def vm_from_cmdline(argv: list[str]) -> VmRef | None:
    """The VM a process with command line ``argv`` runs, or None."""
    if not argv:
        return None
    hypervisor = next((kind for pattern, kind in _PATTERNS if pattern.search(argv[0])), None)
    if hypervisor is None:
        return None
    if hypervisor == "kvm" and "-xen-domid" in argv:  # Xen's device model is QEMU too
        name = _qemu_name(argv)
        return VmRef(_after(argv, "xen-domid") or name, name, "xen")
    if hypervisor == "kvm":
        name = _qemu_name(argv)
        return VmRef(_after(argv, "uuid") or name, name, hypervisor)
    if hypervisor == "virtualbox":
        name = _after(argv, "comment")
        return VmRef(_after(argv, "startvm") or name, name, hypervisor)
    name = next((a.rsplit("/", 1)[-1][: -len(".vmx")] for a in argv if a.endswith(".vmx")), "")
    return VmRef(name, name, hypervisor)

"""Container identity from a process's ``/proc/<pid>/cgroup`` text (cgroup v2 and v1 layouts).

Recognised (runtime, path shape):

- docker: ``/docker/<id>``, ``/system.slice/docker-<id>.scope``
- containerd / CRI: ``cri-containerd-<id>.scope``, ``/containerd/<id>``
- cri-o: ``crio-<id>.scope`` (``crio-conmon-<id>.scope`` is the monitor, not the container)
- podman: ``libpod-<id>.scope``
- Kubernetes, cgroupfs driver: ``/kubepods/<qos>/pod<uid>/<id>``; systemd driver:
  ``kubepods-<qos>-pod<uid_with_underscores>.slice/<runtime>-<id>.scope``

``<id>`` is 64 hex digits. Pure functions on text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SCOPE = re.compile(r"(docker|cri-containerd|crio|libpod)-([0-9a-f]{64})\.scope")
_PLAIN = re.compile(r"/(docker|containerd|crio|libpod)/([0-9a-f]{64})(?:/|$)")
_KUBE_ID = re.compile(r"/kubepods[^\n]*/([0-9a-f]{64})(?:/|$)")
_POD = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")
_RUNTIMES = {
    "docker": "docker",
    "cri-containerd": "containerd",
    "containerd": "containerd",
    "crio": "cri-o",
    "libpod": "podman",
}


@dataclass(frozen=True)
class ContainerRef:
    """A container a process runs in: its id, runtime and (under Kubernetes) pod uid."""

    container_id: str
    runtime: str
    pod_id: str = ""


def container_from_cgroup(text: str) -> ContainerRef | None:
    """The container of the process whose ``/proc/<pid>/cgroup`` is ``text``, or None (a host process)."""
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        pod = _POD.search(path)
        pod_id = pod.group(1).replace("_", "-") if pod else ""
        m = _SCOPE.search(path)
        if m:
            return ContainerRef(m.group(2), _RUNTIMES[m.group(1)], pod_id)
        m = _PLAIN.search(path)
        if m:
            return ContainerRef(m.group(2), _RUNTIMES[m.group(1)], pod_id)
        k = _KUBE_ID.search(path)
        if k:
            return ContainerRef(k.group(1), "kubernetes", pod_id)
    return None

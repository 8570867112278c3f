"""Container and pod names on a Kubernetes node, from the kubelet's log links; Docker names from its config.

The cgroup path gives a container's id and its pod's uid, never a name. The kubelet keeps one symlink per
container in ``/var/log/containers``: ``<pod>_<namespace>_<container>-<container id>.log`` (the CRI logging
layout every kubelet writes, whatever the runtime), and one directory per pod in ``/var/log/pods``:
``<namespace>_<pod>_<pod uid>``. Reading two directories once per new container is far cheaper than asking
the kubelet's API (which needs credentials) or the CRI socket (which needs gRPC), and works from a host mount.
Docker (without Kubernetes) writes ``"Name":"/<name>"`` in ``/var/lib/docker/containers/<id>/config.v2.json``.

``ZEROWATT_LOG_ROOT`` (default ``/var/log``) and ``ZEROWATT_DOCKER_ROOT`` (default ``/var/lib/docker``) point
at other trees (a host mount, tests).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

# Kubernetes names: DNS labels/subdomains (lowercase alphanumerics, '-', '.'); '_' separates the parts.
_CONTAINER_LINK = re.compile(r"^(?P<pod>[^_]+)_(?P<ns>[^_]+)_(?P<name>.+)-(?P<id>[0-9a-f]{64})\.log$")
_POD_DIR = re.compile(r"^(?P<ns>[^_]+)_(?P<pod>[^_]+)_(?P<uid>[0-9a-f-]{36})$")


@dataclass(frozen=True)
class ContainerNames:
    container_name: str = ""
    pod_name: str = ""
    pod_namespace: str = ""


@dataclass(frozen=True)
class PodNames:
    pod_name: str
    pod_namespace: str


def parse_container_link(filename: str) -> tuple[str, ContainerNames] | None:
    """``(container id, names)`` from a ``/var/log/containers`` entry name, or None."""
    m = _CONTAINER_LINK.match(filename)
    if m is None:
        return None
    return m.group("id"), ContainerNames(m.group("name"), m.group("pod"), m.group("ns"))


def parse_pod_dir(dirname: str) -> tuple[str, PodNames] | None:
    """``(pod uid, names)`` from a ``/var/log/pods`` entry name, or None."""
    m = _POD_DIR.match(dirname)
    if m is None:
        return None
    return m.group("uid"), PodNames(m.group("pod"), m.group("ns"))


class Names:
    """Looks names up, re-reading the directories only when an unknown id is asked for (at most once a second)."""

    def __init__(self, log_root: str | None = None, docker_root: str | None = None) -> None:
        self.log_root = log_root or os.environ.get("ZEROWATT_LOG_ROOT", "/var/log")
        self.docker_root = docker_root or os.environ.get("ZEROWATT_DOCKER_ROOT", "/var/lib/docker")
        self.containers: dict[str, ContainerNames] = {}
        self.pods: dict[str, PodNames] = {}
        self._asked: set[str] = set()  # ids (containers, pods) that already triggered a re-read

    def refresh(self) -> None:
        try:
            for entry in os.listdir(f"{self.log_root}/containers"):
                parsed = parse_container_link(entry)
                if parsed is not None:
                    self.containers[parsed[0]] = parsed[1]
        except OSError:
            pass
        try:
            for entry in os.listdir(f"{self.log_root}/pods"):
                pod = parse_pod_dir(entry)
                if pod is not None:
                    self.pods[pod[0]] = pod[1]
        except OSError:
            pass

    def container(self, container_id: str) -> ContainerNames:
        """Its names; unknown ids re-read the directories once each (a later re-read may still name them)."""
        names = self.containers.get(container_id)
        if names is None and container_id not in self._asked:
            self._asked.add(container_id)
            self.refresh()
            names = self.containers.get(container_id)
        if names is None:
            docker = self._docker_name(container_id)
            names = ContainerNames(docker)
            if docker:
                self.containers[container_id] = names
        return names

    def pod(self, pod_uid: str) -> PodNames | None:
        if pod_uid not in self.pods and pod_uid not in self._asked:
            self._asked.add(pod_uid)
            self.refresh()
        return self.pods.get(pod_uid)

    def _docker_name(self, container_id: str) -> str:
        try:
            with open(f"{self.docker_root}/containers/{container_id}/config.v2.json") as f:
                name = json.load(f).get("Name", "")
        except (OSError, ValueError, AttributeError):
            return ""
        return str(name).lstrip("/") if isinstance(name, str) else ""

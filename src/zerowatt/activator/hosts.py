"""Which app a request is for, from its Host header (core).

The public Service ``NAME`` in namespace ``NS`` is reached as ``NAME``, ``NAME.NS``, ``NAME.NS.svc`` or
``NAME.NS.svc.CLUSTER_DOMAIN`` (Kubernetes DNS for Services, kubernetes/dns ``docs/specification.md``),
each with or without ``:PORT``. A bare ``NAME`` is found in any namespace; when more than one namespace
has it the request is refused (421) rather than sent to a guess. Hostile input (empty, over-long, odd
characters, bracketed IPv6 literals) is a :class:`Miss` with a clear reason, never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

#: RFC 1123 labels as Kubernetes names use them (lower case after folding).
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
#: Longest Host header looked at (a DNS name is at most 253 characters, plus ``:PORT``).
MAX_HOST = 300


@dataclass(frozen=True, slots=True)
class AppKey:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Miss:
    """No app for this Host: the status to answer (400, 404 or 421) and why."""

    status: int
    reason: str


def split_host(host: str, cluster_domain: str = "cluster.local") -> tuple[str, str | None] | Miss:
    """``(name, namespace or None)`` named by ``host``, or a :class:`Miss` (400) saying what is wrong."""
    if not host:
        return Miss(400, "missing Host header: the activator routes by Host (NAME[.NAMESPACE[.svc[.DOMAIN]]])")
    if len(host) > MAX_HOST:
        return Miss(400, f"Host header longer than {MAX_HOST} characters")
    text = host.strip().lower()
    if text.startswith("["):
        return Miss(404, "an IP address names no app: use the Service's name as Host")
    name_part, sep, port = text.rpartition(":")
    if sep:
        if not port.isdigit() or len(port) > 5:
            return Miss(400, f"Host {host[:80]!r}: bad port")
        text = name_part
    text = text.rstrip(".")
    labels = text.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return Miss(400, f"Host {host[:80]!r}: expected NAME[.NAMESPACE[.svc[.{cluster_domain}]]]")
    suffix = ["svc", *cluster_domain.split(".")] if cluster_domain else ["svc"]
    if len(labels) >= 3:
        if labels[2:] != suffix[: len(labels) - 2]:
            return Miss(404, f"Host {host[:80]!r}: not a Service name of this cluster (…svc.{cluster_domain})")
        labels = labels[:2]
    if len(labels) == 1:
        return labels[0], None
    return labels[0], labels[1]


def resolve(
    host: str, apps: Mapping[str, Mapping[str, object]], cluster_domain: str = "cluster.local"
) -> AppKey | Miss:
    """The app ``host`` names among ``apps`` (name → {namespace: anything}), or a :class:`Miss`."""
    split = split_host(host, cluster_domain)
    if isinstance(split, Miss):
        return split
    name, namespace = split
    namespaces = apps.get(name)
    if not namespaces:
        return Miss(404, f"no app named {name!r} behind the activator")
    if namespace is not None:
        if namespace not in namespaces:
            return Miss(404, f"no app {namespace}/{name} behind the activator")
        return AppKey(namespace, name)
    if len(namespaces) > 1:
        listed = ", ".join(sorted(namespaces))
        return Miss(421, f"app {name!r} exists in several namespaces ({listed}): use Host NAME.NAMESPACE")
    (only,) = namespaces
    return AppKey(only, name)

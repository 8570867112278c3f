"""What a downscaled workload gives back: requested CPU and memory (watts, kWh and CO2e are priced elsewhere).

Released requests are the pod template's requests × the replicas taken away (``original-replicas`` minus
the current level). They are turned into watts, kWh and CO2e by :class:`zerowatt.energy.capacity.CapacityPricing`,
the pricing the right-sizer uses too: the energy subsystem's node model by default, CCF's fixed averages with
``--power-model ccf`` (see that module for the coefficients and their sources).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from zerowatt.kube.kinds import Kind, Obj
from zerowatt.units import Cores

_SUFFIX: dict[str, int | Decimal] = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1,
    "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}  # fmt: skip


_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkKMGTPE]?)$")


def parse_quantity(value: Any) -> float:
    """A Kubernetes quantity (``500m``, ``1.5``, ``128Mi``, ``1e3``) as a float; ``ValueError`` if not one."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return _parse_text(str(value))


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> float:
    """Cached: a cluster repeats a few request strings (``100m``, ``128Mi``) across thousands of workloads."""
    m = _QUANTITY.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    try:
        return float(Decimal(m.group(1)) * Decimal(_SUFFIX[m.group(2)]))
    except ArithmeticError:  # decimal.Overflow for "1e99999999999": out of any range, not a quantity
        raise ValueError(f"{text[:40]!r} is out of range for a Kubernetes quantity") from None


def _pod_spec(obj: Obj, kind: Kind) -> Mapping[str, Any]:
    spec = obj.get("spec") or {}
    if kind.plural in ("wasmapps", "spinapps"):  # spinapps: spec.resources {limits, requests} for the app's pods
        return {"containers": [{"resources": spec.get("resources") or {}}]}
    if kind.plural == "virtualmachines":
        domain = ((spec.get("template") or {}).get("spec") or {}).get("domain") or {}
        return {"containers": [{"resources": domain.get("resources") or {}}]}
    template = spec.get("template") or {}
    pod = template.get("spec") if isinstance(template, Mapping) else None
    return pod if isinstance(pod, Mapping) else {}


def requests_per_pod(obj: Obj, kind: Kind) -> tuple[Cores, float]:
    """Sum of the containers' CPU and memory requests in the pod template (unreadable values count 0)."""
    cores = memory = 0.0
    for c in _pod_spec(obj, kind).get("containers") or []:
        req = ((c or {}).get("resources") or {}).get("requests") or {}
        try:
            cores += parse_quantity(req["cpu"]) if "cpu" in req else 0.0
            memory += parse_quantity(req["memory"]) if "memory" in req else 0.0
        except (ValueError, ArithmeticError):
            continue
    return cores, memory


@dataclass
class Released:
    """Totals over downscaled objects: replicas taken away, cores and bytes of requests given back."""

    objects: int = 0
    replicas: int = 0
    cores: Cores = 0.0
    memory: float = 0.0

    def add(self, replicas: int, per_pod: tuple[Cores, float]) -> None:
        self.objects += 1
        self.replicas += replicas
        self.cores += replicas * per_pod[0]
        self.memory += replicas * per_pod[1]


#: Kinds whose level is a pod count; for the others (HPA bounds, PDBs, suspend flags) released requests are
#: not a level difference and are counted through the workload itself.
POD_COUNT_KINDS = frozenset({"deployments", "statefulsets", "rollouts", "wasmapps", "spinapps", "virtualmachines"})


def released_replicas(kind: Kind, level: int, original: int | None) -> int:
    if original is None or kind.plural not in POD_COUNT_KINDS:
        return 0
    return max(0, original - level)

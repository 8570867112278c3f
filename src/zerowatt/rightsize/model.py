"""Plain data of right-sizing: who a recommendation is for, what it says, and what it frees."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from zerowatt.units import Cores

OwnerKind = Literal["workload", "pod"]


@dataclass(frozen=True, order=True)
class ContainerId:
    """One recommendation's subject: a container name in a workload (or, without workloads, in a pod).

    The VPA aggregates every pod of a workload into one state per container name; a file without a
    ``workload`` column falls back to one state per pod.
    """

    namespace: str
    owner: str
    container: str
    owner_kind: OwnerKind = "pod"


@dataclass(frozen=True)
class Resources:
    """CPU in cores and memory in bytes; ``None`` where unknown or unset (e.g. no CPU limit)."""

    cpu: Cores | None = None
    memory: float | None = None

    def to_json(self) -> dict[str, float | int | None]:
        mem = None if self.memory is None else int(self.memory)
        return {"cpu": self.cpu, "memory": mem}


@dataclass(frozen=True)
class Recommendation:
    """What one container should reserve, with the VPA's bounds and what it reserves today."""

    id: ContainerId
    target: Resources
    lower_bound: Resources
    upper_bound: Resources
    #: What to set: requests (the target) and limits (``None``: leave unset/unchanged).
    request: Resources
    limit: Resources
    current_request: Resources = field(default_factory=Resources)
    current_limit: Resources = field(default_factory=Resources)
    #: Pods of this workload running at the end of the history (the freed totals count each of them).
    replicas: int = 1
    #: CPU samples aggregated and the VPA's confidence (≈ days of minute samples).
    samples: int = 0
    confidence_days: float = 0.0
    oom_kills: int = 0
    #: Why a resource has no recommendation (no valid samples, not enough data); ``None`` when both have one.
    reason: str | None = None

    def freed(self) -> tuple[Cores, float]:
        """(cores, bytes) of requests released across all replicas; negative where requests grow.

        A resource whose current request is unknown counts as nothing freed.
        """

        def delta(cur: float | None, new: float | None) -> float:
            if cur is None or new is None or not math.isfinite(cur) or not math.isfinite(new):
                return 0.0
            return (cur - new) * self.replicas

        return (
            delta(self.current_request.cpu, self.request.cpu),
            delta(self.current_request.memory, self.request.memory),
        )

"""Status conditions as ``metav1.Condition`` defines them, and when two statuses are the same.

A condition keeps its ``lastTransitionTime`` while its status stays the same (Kubernetes' API conventions),
so a reconcile that changes nothing produces the status already stored, and the operator writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

ACCEPTED = "Accepted"
READY = "Ready"


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str


def timestamp(now: datetime) -> str:
    """RFC 3339 in UTC with second precision, as the API server writes times."""
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def render(
    conditions: Sequence[Condition], observed: Sequence[Any], generation: int, now: datetime
) -> list[dict[str, Any]]:
    """The conditions as stored, keeping each one's transition time unless its status changed."""
    before = {c.get("type"): c for c in observed if isinstance(c, Mapping)}
    out = []
    for c in conditions:
        status = "True" if c.status else "False"
        old = before.get(c.type)
        since = old.get("lastTransitionTime") if old is not None and old.get("status") == status else None
        out.append(
            {
                "type": c.type,
                "status": status,
                "reason": c.reason,
                "message": c.message,
                "observedGeneration": generation,
                "lastTransitionTime": since or timestamp(now),
            }
        )
    return out


def find(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for c in status.get("conditions") or ():
        if isinstance(c, Mapping) and c.get("type") == kind:
            return c
    return None

"""Fixed keep-alive: an instance stays loaded for a fixed window after its last request (AWS Lambda's 10 min).

The 10-minute figure is the one Shahrad et al. (USENIX ATC 2020, §4.1) quote for AWS Lambda and compare
their hybrid policy against. This module is the policy's parameters (also the ``--policy-option``
schema) and its online autoscaler; the batch simulation is :mod:`.keepalive_batch`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zerowatt.errors import ValidationError
from zerowatt.scaling.online import OnlineContext, WindowAutoscaler
from zerowatt.scaling.options import option
from zerowatt.units import Seconds

if TYPE_CHECKING:
    from zerowatt.scaling.sim.periods import FloatArray


@dataclass(frozen=True, slots=True)
class FixedKeepAlive:
    """Keep an instance loaded for ``keep_alive`` seconds after its last request."""

    keep_alive: Seconds = field(
        default=600.0, metadata=option("seconds an instance stays loaded after its last request (600)")
    )
    capacity: int | None = field(
        default=None,
        metadata=option("concurrent requests per instance while busy (default: unlimited)", at_least=1),
    )

    def __post_init__(self) -> None:
        if self.keep_alive < 0:
            raise ValidationError("keepalive.keep_alive", f"must be >= 0 s, got {self.keep_alive}")

    def windows(self, memory_gb: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(pre-warm, keep-alive) per function (batch form; NumPy is imported here, not by the online path)."""
        import numpy as np

        return np.zeros_like(memory_gb), np.full_like(memory_gb, self.keep_alive)


def online(params: FixedKeepAlive, context: OnlineContext) -> WindowAutoscaler:
    """The online keep-alive of one component (the window divided by the time compression)."""
    keep = FixedKeepAlive(params.keep_alive / context.compression).keep_alive
    return WindowAutoscaler("keepalive", (0.0, keep), capacity=params.capacity)

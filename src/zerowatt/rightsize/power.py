"""Watts that reserved-but-unused CPU and memory keep drawing, for the "freed" totals of a report.

Defaults come from the Cloud Carbon Footprint methodology (cloudcarbonfootprint.org, "Methodology",
Apache-2.0): per-vCPU minimum and maximum watts by micro-architecture derived from SPECpower_ssj2008
(``ccf-coefficients-aws-use.csv``), and 0.392 W per GB of memory. A freed vCPU is valued at the midpoint of
the average minimum and maximum coefficients. The energy subsystem (``zerowatt.energy``) can inject
measured coefficients instead.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from zerowatt.errors import ValidationError
from zerowatt.units import Cores, Watts

#: Mean of (mean "Min Watts", mean "Max Watts") over the CCF AWS micro-architectures:
#: (1.0113 + 3.8128) / 2, from ccf-coefficients-aws-use.csv (see :meth:`PowerCoefficients.from_ccf_csv`).
CCF_WATTS_PER_VCPU = 2.412
#: CCF memory coefficient: 0.392 W per GB (cloudcarbonfootprint.org methodology, "Memory").
CCF_WATTS_PER_GB = 0.392


@dataclass(frozen=True)
class PowerCoefficients:
    """How many watts one reserved vCPU and one reserved GB (10^9 bytes) of memory stand for."""

    watts_per_vcpu: Watts = CCF_WATTS_PER_VCPU
    watts_per_gb: Watts = CCF_WATTS_PER_GB

    def watts(self, cores: Cores, memory_bytes: float) -> Watts:
        return cores * self.watts_per_vcpu + memory_bytes / 1e9 * self.watts_per_gb

    @classmethod
    def from_ccf_csv(cls, path: Path, watts_per_gb: Watts = CCF_WATTS_PER_GB) -> PowerCoefficients:
        """Derive the per-vCPU figure from a CCF coefficients file (``Min Watts``, ``Max Watts`` columns)."""
        try:
            with path.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
            mins = [float(r["Min Watts"]) for r in rows]
            maxs = [float(r["Max Watts"]) for r in rows]
        except (OSError, KeyError, ValueError) as exc:
            raise ValidationError(str(path), f"expected CCF columns 'Min Watts' and 'Max Watts': {exc}") from None
        if not rows:
            raise ValidationError(str(path), "no coefficients")
        return cls((sum(mins) / len(mins) + sum(maxs) / len(maxs)) / 2, watts_per_gb)

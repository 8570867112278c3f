"""Choose the node power model: configuration, then SPECpower by CPU model, then CCF coefficients by
micro-architecture, then a generic default.

How a SPECpower system maps to this node: a published result is a whole server (often two sockets, all
hardware threads, memory, disks, fans and power-supply losses) measured at the wall. zerowatt apportions it
per hardware thread: a node with ``n`` logical CPUs of a system with ``T`` threads gets ``n/T`` of its idle
and 100% watts. This is how Cloud Carbon Footprint apportions per vCPU, and it makes a VM's share of a host
proportional to the threads it holds. On the benchmarked system itself (n = T) the model reproduces the
published idle and 100% figures exactly (see ``benchmarks/bench_energy.py``).

Matching: both sides go through :func:`zerowatt.energy.cpu.cpu_key`; an exact key match wins, then a
"family" match ignoring the part-number suffix (``9654P`` ↔ ``9654``). Among several systems with one key the
shipped table holds the lower-median one by watts per thread (chosen when the table was derived).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

from zerowatt.energy.cpu import CpuIdentity, cpu_key, family_key, microarchitecture
from zerowatt.energy.model import ModelChoice, NodePowerModel
from zerowatt.errors import ValidationError
from zerowatt.units import Watts

#: Cloud Carbon Footprint's average per-vCPU minimum and maximum watts for AWS, used when the
#: micro-architecture is unknown (CCF methodology, "Energy Estimate (Watt-Hours)", Apache-2.0).
GENERIC_MIN_WATTS_PER_VCPU: Watts = 0.74
GENERIC_MAX_WATTS_PER_VCPU: Watts = 3.5
DEFAULT_PROVIDER = "aws"


@dataclass(frozen=True)
class SpecPowerSystem:
    """One row of the shipped SPECpower table."""

    key: str
    cpu: str
    system: str
    vendor: str
    published: str
    threads: int
    idle_watts: Watts
    max_watts: Watts
    systems: int

    def model(self) -> NodePowerModel:
        return NodePowerModel(self.idle_watts, self.max_watts, self.threads)


@dataclass(frozen=True)
class Coefficients:
    """CCF per-vCPU watts of one micro-architecture at one cloud provider."""

    provider: str
    architecture: str
    min_watts_per_vcpu: Watts
    max_watts_per_vcpu: Watts


@dataclass(frozen=True)
class ModelOverrides:
    """User configuration: whole-node watts, or per-logical-CPU watts; any may be None (not set)."""

    idle_watts: Watts | None = None
    max_watts: Watts | None = None
    idle_watts_per_cpu: Watts | None = None
    max_watts_per_cpu: Watts | None = None

    def any(self) -> bool:
        return any(
            v is not None for v in (self.idle_watts, self.max_watts, self.idle_watts_per_cpu, self.max_watts_per_cpu)
        )


def _data(name: str) -> str:
    return resources.files("zerowatt.energy").joinpath("data", name).read_text(encoding="utf-8")


def parse_specpower_table(text: str) -> list[SpecPowerSystem]:
    return [
        SpecPowerSystem(
            key=r["key"],
            cpu=r["cpu"],
            system=r["system"],
            vendor=r["vendor"],
            published=r["published"],
            threads=int(r["threads"]),
            idle_watts=float(r["idle_watts"]),
            max_watts=float(r["max_watts"]),
            systems=int(r["systems"]),
        )
        for r in csv.DictReader(io.StringIO(text))
    ]


def parse_coefficients_table(text: str) -> list[Coefficients]:
    return [
        Coefficients(r["provider"], r["architecture"], float(r["min_watts_per_vcpu"]), float(r["max_watts_per_vcpu"]))
        for r in csv.DictReader(io.StringIO(text))
    ]


@cache
def specpower_table() -> tuple[SpecPowerSystem, ...]:
    """The shipped SPECpower table (derived from CCF's collection of SPEC's published results)."""
    return tuple(parse_specpower_table(_data("specpower.csv")))


@cache
def coefficients_table() -> tuple[Coefficients, ...]:
    """The shipped CCF per-vCPU coefficients."""
    return tuple(parse_coefficients_table(_data("ccf_coefficients.csv")))


def match_specpower(model_name: str, table: tuple[SpecPowerSystem, ...]) -> tuple[SpecPowerSystem, str] | None:
    """The SPECpower row for ``model_name`` and whether it matched ``exactly`` or by ``family``."""
    key = cpu_key(model_name)
    if not key:
        return None
    for row in table:
        if row.key == key:
            return row, "exact"
    fam = family_key(key)
    candidates = sorted((r for r in table if family_key(r.key) == fam), key=lambda r: r.max_watts / r.threads)
    if candidates:
        return candidates[(len(candidates) - 1) // 2], "family"
    return None


def _from_hardware(
    cpu: CpuIdentity,
    logical_cpus: int,
    table: tuple[SpecPowerSystem, ...],
    coefficients: tuple[Coefficients, ...],
    provider: str,
) -> ModelChoice:
    found = match_specpower(cpu.model_name, table)
    if found is not None:
        row, how = found
        return ModelChoice(
            row.model().scaled(logical_cpus),
            "specpower" if how == "exact" else "specpower-family",
            f"SPECpower_ssj2008 {row.vendor} {row.system} ({row.cpu}, {row.threads} threads, {row.published}): "
            f"idle {row.idle_watts:g} W, 100% {row.max_watts:g} W, scaled to {logical_cpus} logical CPUs"
            + ("" if how == "exact" else f"; family match for {cpu.model_name!r}"),
        )
    arch = microarchitecture(cpu)
    if arch is not None:
        rows = [c for c in coefficients if c.architecture == arch]
        chosen = next((c for c in rows if c.provider == provider), rows[0] if rows else None)
        if chosen is not None:
            return ModelChoice(
                NodePowerModel.per_cpu(chosen.min_watts_per_vcpu, chosen.max_watts_per_vcpu, logical_cpus),
                "ccf-coefficients",
                f"Cloud Carbon Footprint {chosen.provider} coefficients for {arch}: "
                f"{chosen.min_watts_per_vcpu:.3f}–{chosen.max_watts_per_vcpu:.3f} W per vCPU × {logical_cpus}",
            )
    return ModelChoice(
        NodePowerModel.per_cpu(GENERIC_MIN_WATTS_PER_VCPU, GENERIC_MAX_WATTS_PER_VCPU, logical_cpus),
        "generic-default",
        f"no SPECpower or micro-architecture match for {cpu.model_name!r}: CCF average "
        f"{GENERIC_MIN_WATTS_PER_VCPU}–{GENERIC_MAX_WATTS_PER_VCPU} W per vCPU × {logical_cpus}",
    )


def choose_model(
    cpu: CpuIdentity,
    overrides: ModelOverrides | None = None,
    *,
    logical_cpus: int | None = None,
    table: tuple[SpecPowerSystem, ...] | None = None,
    coefficients: tuple[Coefficients, ...] | None = None,
    provider: str = DEFAULT_PROVIDER,
) -> ModelChoice:
    """The model for a node with ``cpu``: configured values win, a partial override keeps the detected other half."""
    n = logical_cpus or cpu.logical_cpus
    detected = _from_hardware(
        cpu,
        n,
        specpower_table() if table is None else table,
        coefficients_table() if coefficients is None else coefficients,
        provider,
    )
    o = overrides or ModelOverrides()
    if not o.any():
        return detected
    if o.idle_watts is not None and o.idle_watts_per_cpu is not None:
        raise ValidationError("idle_watts", "set either idle_watts or idle_watts_per_cpu, not both")
    if o.max_watts is not None and o.max_watts_per_cpu is not None:
        raise ValidationError("max_watts", "set either max_watts or max_watts_per_cpu, not both")
    idle = o.idle_watts if o.idle_watts is not None else None
    if o.idle_watts_per_cpu is not None:
        idle = o.idle_watts_per_cpu * n
    full = o.max_watts if o.max_watts is not None else None
    if o.max_watts_per_cpu is not None:
        full = o.max_watts_per_cpu * n
    idle_w = detected.model.idle_watts if idle is None else idle
    max_w = detected.model.max_watts if full is None else full
    model = NodePowerModel(idle_w, max_w, n)
    kept = "" if idle is not None and full is not None else f"; the other value from {detected.basis}"
    return ModelChoice(
        model, "configured", f"configured: idle {idle_w:g} W, 100% {max_w:g} W for {n} logical CPUs{kept}"
    )

"""Node power: which model each node gets, its power now, and the watts of each capacity category.

Each node gets the energy subsystem's linear model P(u) = P_idle + (P_max − P_idle)·u
(:class:`~zerowatt.energy.model.NodePowerModel`, chosen by :mod:`zerowatt.energy.catalog`), from, in order:
``--node-watts idle,max`` (every node); ``--node-cpu NAME``; the CPU that Node Feature Discovery labels
(``feature.node.kubernetes.io/cpu-model.vendor_id``/``family``/``id``, CCF's coefficients for its
micro-architecture); the instance type (``node.kubernetes.io/instance-type``) through
:data:`INSTANCE_FAMILIES`; else CCF's average per-vCPU coefficients. All apportioned to the node's logical
CPUs, as the catalog apportions per thread.

Watts of the categories, per node (Kepler's split, see :mod:`zerowatt.energy.attribution`): u is the node's
typical CPU use (the rows' median usage, the request where unknown) over its logical CPUs; the active power
(P_max − P_idle)·u is shared among the rows by their typical use, and within a row between base and variable
in proportion to their cores (a row with neither, i.e. usage without a request, gives its share to idle);
the idle power P_idle is shared among the six categories in proportion to their CPU cores. The categories'
watts add up to the node's modelled power.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from zerowatt.capacity.breakdown import Breakdown
from zerowatt.energy.catalog import choose_model, coefficients_table
from zerowatt.energy.cpu import CpuIdentity
from zerowatt.energy.model import ModelChoice, NodePowerModel
from zerowatt.units import Watts

INSTANCE_LABELS = ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type")
NFD = "feature.node.kubernetes.io/cpu-model."
#: Instance family → (provider, CCF micro-architecture), from the providers' instance-type pages (AWS "Amazon
#: EC2 instance types" processor tables, Google Cloud "Machine families", Azure "Dv4/Dv5 series"). Families
#: whose hosts mix generations (GCP e2, n1) are left out: they get CCF's average.
INSTANCE_FAMILIES: dict[str, tuple[str, str]] = {
    # AWS: the family is the part before the dot, e.g. m6i.2xlarge → m6i.
    "m4": ("aws", "Broadwell"), "c4": ("aws", "Haswell"), "r4": ("aws", "Broadwell"),
    "m5": ("aws", "Skylake"), "c5": ("aws", "Skylake"), "r5": ("aws", "Skylake"), "t3": ("aws", "Skylake"),
    "m5n": ("aws", "Cascade Lake"), "r5n": ("aws", "Cascade Lake"), "c5n": ("aws", "Skylake"),
    "m5a": ("aws", "EPYC 1st Gen"), "r5a": ("aws", "EPYC 1st Gen"), "t3a": ("aws", "EPYC 1st Gen"),
    "c5a": ("aws", "EPYC 2nd Gen"),
    "m6i": ("aws", "Ice Lake"), "c6i": ("aws", "Ice Lake"), "r6i": ("aws", "Ice Lake"),
    "m6a": ("aws", "EPYC 3rd Gen"), "c6a": ("aws", "EPYC 3rd Gen"), "r6a": ("aws", "EPYC 3rd Gen"),
    "m7i": ("aws", "Sapphire Rapids"), "c7i": ("aws", "Sapphire Rapids"), "r7i": ("aws", "Sapphire Rapids"),
    "m7a": ("aws", "EPYC 4th Gen"), "c7a": ("aws", "EPYC 4th Gen"), "r7a": ("aws", "EPYC 4th Gen"),
    "m6g": ("aws", "Graviton2"), "c6g": ("aws", "Graviton2"), "r6g": ("aws", "Graviton2"),
    "t4g": ("aws", "Graviton2"),
    "m7g": ("aws", "Graviton3"), "c7g": ("aws", "Graviton3"), "r7g": ("aws", "Graviton3"),
    "c7gn": ("aws", "Graviton3E"),
    "m8g": ("aws", "Graviton4"), "c8g": ("aws", "Graviton4"), "r8g": ("aws", "Graviton4"),
    # Google Cloud: the family is the part before the first dash, e.g. n2d-standard-8 → n2d.
    "n2": ("gcp", "Cascade Lake"), "c2": ("gcp", "Cascade Lake"), "n2d": ("gcp", "EPYC 2nd Gen"),
    "c2d": ("gcp", "EPYC 3rd Gen"), "t2d": ("gcp", "EPYC 3rd Gen"), "c3": ("gcp", "Sapphire Rapids"),
    "c3d": ("gcp", "EPYC 4th Gen"), "n4": ("gcp", "Emerald Rapids"),
    # Azure: Standard_D4s_v5 → dv5 (Intel), Standard_D4as_v5 → dav5 (AMD).
    "dv4": ("azure", "Cascade Lake"), "dv5": ("azure", "Cascade Lake"), "ev4": ("azure", "Cascade Lake"),
    "dav4": ("azure", "EPYC 2nd Gen"), "eav4": ("azure", "EPYC 2nd Gen"),
    "dav5": ("azure", "EPYC 3rd Gen"), "eav5": ("azure", "EPYC 3rd Gen"),
}  # fmt: skip

_AZURE = re.compile(r"^standard_([a-z]+)\d+([a-z]*)_v(\d)$")


def instance_family(instance_type: str) -> tuple[str, str] | None:
    """(provider, micro-architecture) of a cloud instance type, or None when the table does not know it."""
    t = instance_type.strip().lower()
    if "." in t:
        return INSTANCE_FAMILIES.get(t.split(".", 1)[0])
    m = _AZURE.match(t)
    if m:
        amd = "a" in m.group(2)
        return INSTANCE_FAMILIES.get(f"{m.group(1)[:1]}{'a' if amd else ''}v{m.group(3)}")
    if "-" in t:
        return INSTANCE_FAMILIES.get(t.split("-", 1)[0])
    return None


def _by_architecture(provider: str, arch: str, cpus: int) -> ModelChoice | None:
    rows = [c for c in coefficients_table() if c.architecture == arch]
    chosen = next((c for c in rows if c.provider == provider), rows[0] if rows else None)
    if chosen is None:
        return None
    return ModelChoice(
        NodePowerModel.per_cpu(chosen.min_watts_per_vcpu, chosen.max_watts_per_vcpu, cpus),
        "ccf-coefficients",
        f"CCF {chosen.provider} coefficients for {arch} × {cpus} vCPUs",
    )


@dataclass(frozen=True)
class NodeModels:
    """Per node: idle and 100 % watts and the basis of each (``configured``, ``specpower``, ...)."""

    idle: np.ndarray  # (N,) W
    max: np.ndarray  # (N,) W
    basis: list[str]

    def watts(self, utilisation: np.ndarray) -> np.ndarray:
        return np.asarray(self.idle + (self.max - self.idle) * np.clip(utilisation, 0.0, 1.0), dtype=np.float64)


def node_models(
    labels: Sequence[Mapping[str, str]],
    cpus: np.ndarray,
    node_watts: tuple[Watts, Watts] | None = None,
    node_cpu: str | None = None,
) -> NodeModels:
    """Choose each node's power model (see the module docstring for the order)."""
    cache: dict[tuple[str, int], ModelChoice] = {}
    idle = np.zeros(len(labels))
    full = np.zeros(len(labels))
    basis: list[str] = []
    for n, lab in enumerate(labels):
        c = int(cpus[n])
        if node_watts is not None:
            idle[n], full[n] = node_watts
            basis.append("configured")
            continue
        key: tuple[str, int]
        if node_cpu:
            key = ("cpu:" + node_cpu, c)
        elif NFD + "family" in lab and NFD + "id" in lab:
            key = (f"nfd:{lab.get(NFD + 'vendor_id', '')}:{lab[NFD + 'family']}:{lab[NFD + 'id']}", c)
        else:
            itype = next((lab[k] for k in INSTANCE_LABELS if k in lab), "")
            key = ("type:" + itype, c)
        choice = cache.get(key)
        if choice is None:
            choice = cache[key] = _choose(key[0], c)
        idle[n], full[n] = choice.model.idle_watts, choice.model.max_watts
        basis.append(choice.basis)
    return NodeModels(idle, full, basis)


def _choose(key: str, cpus: int) -> ModelChoice:
    kind, _, value = key.partition(":")
    if kind == "cpu":
        return choose_model(CpuIdentity(value), logical_cpus=cpus)
    if kind == "nfd":
        vendor, family, model = value.split(":")
        try:
            ident = CpuIdentity("", vendor_id=vendor, family=int(family), model=int(model))
        except ValueError:
            ident = CpuIdentity("")
        return choose_model(ident, logical_cpus=cpus)
    fam = instance_family(value) if value else None
    if fam is not None:
        found = _by_architecture(fam[0], fam[1], cpus)
        if found is not None:
            return found
    return choose_model(CpuIdentity(""), logical_cpus=cpus)


def utilisation(bd: Breakdown, node_of_row: np.ndarray, cpus: np.ndarray) -> np.ndarray:
    """Each node's typical CPU utilisation from its rows' typical use (millicores over logical CPUs)."""
    used = np.bincount(node_of_row, weights=bd.row_typical, minlength=cpus.size)
    return np.asarray(np.clip(used / (np.maximum(cpus, 1) * 1000.0), 0.0, 1.0), dtype=np.float64)


@dataclass
class CategoryWatts:
    row: np.ndarray  # (A, 5) W per accounting row: base, variable, safety, growth, redundancy
    node: np.ndarray  # (N, 6) W per node, the six categories
    node_total: np.ndarray  # (N,) modelled power


def attribute(
    bd: Breakdown, node_of_row: np.ndarray, alloc_cpu: np.ndarray, models: NodeModels, cpus: np.ndarray
) -> CategoryWatts:
    """Share each node's modelled power among the categories (see the module docstring)."""
    n_nodes = alloc_cpu.size
    u = utilisation(bd, node_of_row, cpus)
    total = models.watts(u)
    active = total - models.idle
    typ_sum = np.bincount(node_of_row, weights=bd.row_typical, minlength=n_nodes)
    share = np.where(typ_sum[node_of_row] > 0, bd.row_typical / np.where(typ_sum > 0, typ_sum, 1.0)[node_of_row], 0.0)
    dyn = active[node_of_row] * share
    bcpu = bd.row_cat[:, 0, 0].astype(np.float64)
    vcpu = bd.row_cat[:, 1, 0].astype(np.float64)
    used = bcpu + vcpu
    row = np.zeros((bd.row_cat.shape[0], 5))
    with np.errstate(invalid="ignore", divide="ignore"):
        row[:, 0] = np.where(used > 0, dyn * bcpu / used, 0.0)
        row[:, 1] = np.where(used > 0, dyn * vcpu / used, 0.0)
    orphan = np.bincount(node_of_row, weights=np.where(used > 0, 0.0, dyn), minlength=n_nodes)
    has_cpu = alloc_cpu > 0
    per_core_idle = np.where(has_cpu, models.idle / np.where(has_cpu, alloc_cpu, 1), 0.0)
    row += bd.row_cat[:, :, 0] * per_core_idle[node_of_row][:, None]
    node = np.zeros((n_nodes, 6))
    for c in range(5):
        node[:, c] = np.bincount(node_of_row, weights=row[:, c], minlength=n_nodes)
    node[:, 5] = bd.node_cat[:, 5, 0] * per_core_idle + orphan + np.where(has_cpu, 0.0, models.idle)
    return CategoryWatts(row, node, total)

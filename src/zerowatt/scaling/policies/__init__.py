"""The policy registry: every autoscaling policy by name, with its parameters, online autoscaler and batch simulation.

One module per policy holds its parameters dataclass (also its ``--policy-option`` schema, see
:mod:`zerowatt.scaling.options`) and its online autoscaler, in plain Python: :mod:`.kpa` (Knative's pod
autoscaler), :mod:`.keepalive` (fixed keep-alive), :mod:`.hybrid` (Shahrad et al.'s hybrid histogram),
:mod:`.energy` (zerowatt's energy-aware break-even). Its batch simulation, vectorised with NumPy over a
whole trace, is its ``*_batch`` module in the simulator (:mod:`zerowatt.scaling.sim`), imported by name
only when the simulator runs it: a ``zerowatt up`` worker that imports the online side never loads NumPy,
and the policies never import the simulator (the simulator imports them).

:data:`POLICIES` is the only place a policy is picked by name: the host (:func:`parse_policy`,
:class:`PolicyConfig`) and the simulator (:func:`zerowatt.scaling.sim.driver.run_policy`) both look it up.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from zerowatt.errors import UsageError, ValidationError
from zerowatt.scaling.online import Autoscaler, OnlineContext
from zerowatt.scaling.options import OptionSpec, build, option, option_specs, split_options
from zerowatt.scaling.policies import energy, hybrid, keepalive, kpa
from zerowatt.units import Seconds

if TYPE_CHECKING:
    from zerowatt.scaling.power import EnergyParams
    from zerowatt.scaling.sim.periods import PolicyResult, Prepared, Progress

P = TypeVar("P")
#: Where the batch simulations live (imported by name, on first use).
_SIM = "zerowatt.scaling.sim"
P_contra = TypeVar("P_contra", contravariant=True)


class BatchSimulation(Protocol[P_contra]):
    """A policy's batch simulation: its ``*_batch`` module's ``simulate``."""

    def __call__(
        self,
        params: P_contra,
        prep: Prepared,
        cold_start: Seconds,
        power: EnergyParams,
        progress: Progress | None = None,
    ) -> PolicyResult: ...


@dataclass(frozen=True, slots=True)
class Policy(Generic[P]):
    """One autoscaling policy: its parameters dataclass, its online autoscaler and its batch simulation."""

    name: str
    summary: str
    params: type[P]  # the parameters, and the --policy-option schema (fields with option metadata)
    online: Callable[[P, OnlineContext], Autoscaler]  # one component's autoscaler, for the host
    batch_module: str  # holds ``simulate`` (a BatchSimulation); imported on first use (NumPy)

    @property
    def options(self) -> dict[str, OptionSpec]:
        return option_specs(self.params)

    @property
    def simulate_batch(self) -> BatchSimulation[P]:
        """The batch simulation over a whole trace (imports the ``*_batch`` module and NumPy)."""
        sim: BatchSimulation[P] = importlib.import_module(self.batch_module).simulate
        return sim


POLICIES: dict[str, Policy[Any]] = {
    p.name: p
    for p in (
        Policy("kpa", "Knative's pod autoscaler", kpa.KpaParams, kpa.online, f"{_SIM}.kpa_batch"),
        Policy("keepalive", "fixed keep-alive", keepalive.FixedKeepAlive, keepalive.online, f"{_SIM}.keepalive_batch"),
        Policy(
            "hybrid",
            "Shahrad et al.'s hybrid histogram",
            hybrid.HybridParams,
            hybrid.online,
            f"{_SIM}.hybrid_batch",
        ),
        Policy("energy", "energy-aware break-even", energy.EnergyAware, energy.online, f"{_SIM}.energy_batch"),
    )
}
POLICY_NAMES: tuple[str, ...] = tuple(POLICIES)


def policy(name: str) -> Policy[Any]:
    """The policy called ``name`` (``UsageError`` listing the known ones)."""
    try:
        return POLICIES[name]
    except KeyError:
        raise UsageError(f"--policy: unknown policy {name!r}; expected one of {', '.join(POLICY_NAMES)}") from None


def make_autoscaler(
    name: str, *, cold_start: Seconds, memory_gb: float | None = None, capacity: int | None = None, **params: object
) -> Autoscaler:
    """The online autoscaler of policy ``name`` for one component (``params``: parameters by policy name, e.g.
    ``kpa=KpaParams(...)``; the others' are ignored). ``cold_start`` is the component's measured start
    latency, ``memory_gb`` its resident memory (the energy-aware break-even depends on both)."""
    spec = policy(name)
    p = params.get(name)
    if p is None:
        p = spec.params()
    if not isinstance(p, spec.params):
        raise TypeError(f"{name}: expected {spec.params.__name__}, got {type(p).__name__}")
    if capacity is not None and any(f.name == "capacity" for f in dataclasses.fields(p)):
        p = dataclasses.replace(p, capacity=capacity)
    return spec.online(p, OnlineContext(cold_start, memory_gb))


@dataclass(frozen=True, slots=True)
class CommonOptions:
    """``--policy-option`` keys every policy takes."""

    compression: float = field(
        default=1.0,
        metadata=option(
            "time compression: every policy window divided by this (a trace replayed N times faster)", above=True
        ),
    )
    max_instances: int | None = field(
        default=None,
        metadata=option("most instances per component and worker (WAGI: 1, an in-process component)", at_least=1),
    )

    def __post_init__(self) -> None:
        if self.compression <= 0:
            raise ValidationError("compression", f"must be > 0, got {self.compression}")
        if self.max_instances is not None and self.max_instances < 1:
            raise ValidationError("max_instances", f"must be >= 1, got {self.max_instances}")


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """A validated ``--policy NAME --policy-option KEY=VALUE ...``: builds one autoscaler per component."""

    name: str
    params: Any  # the policy's parameters dataclass
    common: CommonOptions = field(default_factory=CommonOptions)
    options: tuple[tuple[str, float], ...] = ()  # as given (logs)

    @property
    def compression(self) -> float:
        return self.common.compression

    @property
    def max_instances(self) -> int | None:
        return self.common.max_instances

    def autoscaler(self, *, cold_start: Seconds, memory_gb: float | None = None) -> Autoscaler:
        """A fresh autoscaler for one component (``cold_start``: the executor's start latency, used by the
        energy policy unless its ``cold_start`` option overrides it)."""
        return policy(self.name).online(self.params, OnlineContext(cold_start, memory_gb, self.compression))


def parse_policy(name: str, options: Sequence[str] = ()) -> PolicyConfig:
    """Validate ``--policy NAME`` and its ``--policy-option KEY=VALUE`` list (``UsageError``, exit 2, naming the
    key). Building one autoscaler here also runs the checks of the compressed parameters."""
    spec = policy(name)
    common_specs = option_specs(CommonOptions)
    specs = {**common_specs, **spec.options}
    owner = f"policy {name!r}"
    values = split_options(options, specs, owner)
    common = build(CommonOptions, {k: v for k, v in values.items() if k in common_specs}, common_specs, owner)
    params = build(spec.params, {k: v for k, v in values.items() if k not in common_specs}, spec.options, owner)
    config = PolicyConfig(name, params, common, tuple(sorted(values.items())))
    try:
        config.autoscaler(cold_start=0.0003)
    except ValidationError as exc:
        raise UsageError(f"--policy-option ({owner}): {exc}") from None
    return config

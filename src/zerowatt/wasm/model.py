"""The loaded application model: plain, immutable data produced from a ``spin.toml``.

Everything downstream (the router, the executors, the host, the autoscaler, the operator) works on
these objects, never on raw TOML. Paths here are already resolved to absolute host paths, variables
already resolved to values, and sources already verified, so a loaded :class:`App` is servable as is:
loading either yields a complete App or raises :class:`zerowatt.errors.ValidationError`
(nothing is served half-way).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class ExecutorKind(StrEnum):
    """How a component is run.

    ``AUTO`` is resolved at load time from the module itself: a core module exporting ``_start`` is
    WAGI, a component exporting ``wasi:http/incoming-handler`` is WASI_HTTP.
    """

    AUTO = "auto"
    WAGI = "wagi"
    WASI_HTTP = "wasi-http"


@dataclass(frozen=True, slots=True)
class Variable:
    """An application variable (``[variables]``): exactly one of default/required applies."""

    name: str
    default: str | None = field(default=None, repr=False)  # may be a secret's value: never in repr()
    required: bool = False
    secret: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class Preopen:
    """A host directory made visible (read-only) to the guest at ``guest_path`` through WASI preopens."""

    host_path: Path
    guest_path: str


@dataclass(frozen=True, slots=True)
class WagiOptions:
    """Spin's WAGI executor options: ``executor = { type = "wagi", argv = ..., entrypoint = ... }``."""

    argv: str = "${SCRIPT_NAME} ${ARGS}"
    entrypoint: str = "_start"


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-component guest limits; ``None`` means "use the host's default" (``--request-timeout`` ...).

    Set in the manifest through Spin's tool table: ``[component.<id>.tool.zerowatt]``.
    """

    request_timeout: float | None = None
    memory_limit: int | None = None


@dataclass(frozen=True, slots=True)
class BuildSpec:
    """``[component.<id>.build]``: the commands ``zerowatt build`` runs in order (``up`` ignores them).

    Spin's ``command`` is one string or an array of strings run left to right; both become ``commands``.
    """

    commands: tuple[str, ...]
    workdir: Path
    watch: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Component:
    """One ``[component.<id>]``, fully resolved."""

    id: str
    source: Path  # absolute path of the .wasm/.wat file (verified against its digest if one was given)
    source_digest: str  # "sha256:<hex>" of the file's bytes, computed at load time; keys the compile cache
    environment: Mapping[str, str] = field(default_factory=dict)
    files: tuple[Preopen, ...] = ()
    # resolved values of component variables; kept out of repr() so that logging a Component leaks no secret
    variables: Mapping[str, str] = field(default_factory=dict, repr=False)
    secret_variables: frozenset[str] = frozenset()  # keys whose values must never be logged or printed
    allowed_outbound_hosts: tuple[str, ...] = ()
    build: BuildSpec | None = None
    limits: Limits = field(default_factory=Limits)
    description: str = ""

    def guest_environment(self) -> dict[str, str]:
        """The environment a guest sees: each variable as ``SPIN_VARIABLE_<NAME>``, plus ``environment``.

        This is how zerowatt exposes component variables to guests without a ``spin:variables``
        interface (WAGI, plain wasi:http): ``message = "..."`` becomes ``SPIN_VARIABLE_MESSAGE=...``,
        the name Spin's own environment provider uses. The loader rejects a manifest whose
        ``environment`` sets one of those names, so neither silently wins. Executors add their
        per-request variables (CGI) on top.
        """
        env = {f"SPIN_VARIABLE_{name.upper()}": value for name, value in self.variables.items()}
        env.update(self.environment)
        return env


@dataclass(frozen=True, slots=True)
class Route:
    """A trigger route: ``/exact``, ``/prefix/...`` (wildcard), or private (not routable over HTTP)."""

    pattern: str  # as written, e.g. "/hello", "/api/...", "/..."
    private: bool = False

    @property
    def is_wildcard(self) -> bool:
        return self.pattern.endswith("/...")

    @property
    def prefix(self) -> str:
        """The fixed part: "/api" for "/api/...", "" for "/...", the path itself when exact."""
        if self.is_wildcard:
            return self.pattern[: -len("/...")]
        return self.pattern


@dataclass(frozen=True, slots=True)
class HttpTrigger:
    """One ``[[trigger.http]]``: a route bound to a component and an executor."""

    route: Route
    component_id: str
    executor: ExecutorKind = ExecutorKind.AUTO
    wagi: WagiOptions = field(default_factory=WagiOptions)


@dataclass(frozen=True, slots=True)
class App:
    """One application (one ``spin.toml``)."""

    name: str
    manifest_path: Path
    components: Mapping[str, Component]
    triggers: tuple[HttpTrigger, ...]
    version: str = ""
    description: str = ""
    variables: Mapping[str, Variable] = field(default_factory=dict)
    base: str = "/"
    authors: tuple[str, ...] = ()
    # what the loader decided on its own that the operator should know (e.g. which executor runs a module
    # that offers two ABIs, and why); printed by ``zerowatt check`` and ``up``
    notes: tuple[str, ...] = ()

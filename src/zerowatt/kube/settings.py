"""The controller's settings (kube-downscaler's flags and environment variables) as plain, validated data."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from zerowatt.errors import SettingError, ValidationError
from zerowatt.kube.kinds import KINDS, Kind, parse_include_resources, parse_replicas

#: kube-downscaler's defaults (hjacobs/kube-downscaler cmd.py), kept so a switch changes nothing.
DEFAULT_EXCLUDE_NAMESPACES = "kube-system"
#: py-kube-downscaler's default (cmd.py: its own name and hjacobs' two), plus zerowatt's own Deployment.
DEFAULT_EXCLUDE_DEPLOYMENTS = "py-kube-downscaler,kube-downscaler,downscaler,zerowatt-downscaler"
DEFAULT_GRACE_PERIOD = 900
#: py-kube-downscaler's code says 30, its README and its Helm chart (``--interval=60``) say 60: a deployed
#: upstream runs every 60 s, so that is the default a migrating cluster keeps (see docs/downscaler.md).
DEFAULT_INTERVAL = 60


@dataclass(frozen=True)
class Settings:
    """Cluster-wide defaults; namespace and workload annotations override them (see ``decide``)."""

    default_uptime: str = "always"
    default_downtime: str = "never"
    upscale_period: str = "never"
    downscale_period: str = "never"
    downtime_replicas: int = 0
    grace_period: float = DEFAULT_GRACE_PERIOD
    deployment_time_annotation: str | None = None
    exclude_namespaces: tuple[re.Pattern[str], ...] = (re.compile(DEFAULT_EXCLUDE_NAMESPACES),)
    exclude_names: frozenset[str] = frozenset(DEFAULT_EXCLUDE_DEPLOYMENTS.split(","))
    matching_labels: tuple[re.Pattern[str], ...] = ()
    upscale_target_only: bool = False
    forced_uptime: bool = False
    kinds: tuple[Kind, ...] = field(default_factory=lambda: (KINDS["deployments"],))


def compile_regexes(key: str, value: str) -> tuple[re.Pattern[str], ...]:
    """A comma-separated list of regular expressions (matched in full, as kube-downscaler does)."""
    out = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(re.compile(part))
        except re.error as exc:
            raise SettingError(key, f"{part!r} is not a valid regular expression: {exc}") from None
    return tuple(out)


def make_settings(
    *,
    default_uptime: str = "always",
    default_downtime: str = "never",
    upscale_period: str = "never",
    downscale_period: str = "never",
    downtime_replicas: int | str = 0,
    grace_period: float = DEFAULT_GRACE_PERIOD,
    deployment_time_annotation: str | None = None,
    exclude_namespaces: str = DEFAULT_EXCLUDE_NAMESPACES,
    exclude_deployments: str = DEFAULT_EXCLUDE_DEPLOYMENTS,
    matching_labels: str = "",
    upscale_target_only: bool = False,
    include_resources: str = "deployments",
) -> Settings:
    """Build :class:`Settings` from flag-shaped strings; a :class:`SettingError` names the bad setting's key.

    ``downtime_replicas``: an integer, or a percentage such as ``"20%"`` (PodDisruptionBudgets only).
    """
    if isinstance(downtime_replicas, str):
        try:
            downtime_replicas = parse_replicas(downtime_replicas, key="downtime_replicas")
        except ValidationError as exc:
            raise SettingError("downtime_replicas", exc.message) from None
    if downtime_replicas < 0:
        raise SettingError("downtime_replicas", f"{downtime_replicas} is negative; expected 0 or more")
    if grace_period < 0:
        raise SettingError("grace_period", f"{grace_period} is negative; expected seconds >= 0")
    return Settings(
        default_uptime=default_uptime,
        default_downtime=default_downtime,
        upscale_period=upscale_period,
        downscale_period=downscale_period,
        downtime_replicas=downtime_replicas,
        grace_period=grace_period,
        deployment_time_annotation=deployment_time_annotation or None,
        exclude_namespaces=compile_regexes("exclude_namespaces", exclude_namespaces),
        exclude_names=frozenset(n.strip() for n in exclude_deployments.split(",") if n.strip()),
        matching_labels=compile_regexes("matching_labels", matching_labels),
        upscale_target_only=upscale_target_only,
        kinds=parse_include_resources(include_resources),
    )

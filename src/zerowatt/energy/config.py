"""Energy configuration: a TOML file, environment variables and CLI flags, in rising precedence.

File (``--config PATH`` or ``$ZEROWATT_ENERGY_CONFIG``), table ``[energy]``::

    source = "auto"              # auto | rapl | hwmon | model
    idle_watts = 80.0            # node watts at idle   (or idle_watts_per_cpu)
    max_watts = 310.0            # node watts at 100%   (or max_watts_per_cpu)
    pue = 1.58                   # number or preset: industry-average, hyperscale, free-cooled
    wue = 1.8                    # L/kWh, number or preset: industry-average, hyperscale, dry
    carbon_g_per_kwh = 300.0     # or region = "aws:eu-west-1"
    spread_idle = false

Environment: ``ZEROWATT_ENERGY_SOURCE``, ``ZEROWATT_IDLE_WATTS``, ``ZEROWATT_MAX_WATTS``,
``ZEROWATT_IDLE_WATTS_PER_CPU``, ``ZEROWATT_MAX_WATTS_PER_CPU``, ``ZEROWATT_PUE``, ``ZEROWATT_WUE``,
``ZEROWATT_CARBON``, ``ZEROWATT_REGION``, ``ZEROWATT_SPREAD_IDLE``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from zerowatt.energy.catalog import ModelOverrides
from zerowatt.energy.facility import Facility, facility_from
from zerowatt.errors import ValidationError

_FLOATS = ("idle_watts", "max_watts", "idle_watts_per_cpu", "max_watts_per_cpu", "carbon_g_per_kwh")
_ENV = {
    "source": "ZEROWATT_ENERGY_SOURCE",
    "idle_watts": "ZEROWATT_IDLE_WATTS",
    "max_watts": "ZEROWATT_MAX_WATTS",
    "idle_watts_per_cpu": "ZEROWATT_IDLE_WATTS_PER_CPU",
    "max_watts_per_cpu": "ZEROWATT_MAX_WATTS_PER_CPU",
    "pue": "ZEROWATT_PUE",
    "wue": "ZEROWATT_WUE",
    "carbon_g_per_kwh": "ZEROWATT_CARBON",
    "region": "ZEROWATT_REGION",
    "spread_idle": "ZEROWATT_SPREAD_IDLE",
}


@dataclass(frozen=True)
class EnergyConfig:
    source: str = "auto"
    idle_watts: float | None = None
    max_watts: float | None = None
    idle_watts_per_cpu: float | None = None
    max_watts_per_cpu: float | None = None
    pue: str | None = None
    wue: str | None = None
    carbon_g_per_kwh: float | None = None
    region: str | None = None
    spread_idle: bool = False

    def overrides(self) -> ModelOverrides:
        return ModelOverrides(self.idle_watts, self.max_watts, self.idle_watts_per_cpu, self.max_watts_per_cpu)

    def facility(self) -> Facility:
        return facility_from(self.pue, self.wue, self.carbon_g_per_kwh, self.region)

    def merged(self, values: Mapping[str, Any], where: str) -> EnergyConfig:
        """This config with ``values`` (already parsed from ``where``) on top; None values are ignored."""
        known = {f.name for f in fields(self)}
        changes: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                raise ValidationError(f"{where}: {key}", f"unknown setting; expected one of {', '.join(sorted(known))}")
            if value is None:
                continue
            changes[key] = _coerce(key, value, f"{where}: {key}")
        return replace(self, **changes)


def _coerce(key: str, value: Any, where: str) -> Any:
    if key in _FLOATS:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValidationError(where, f"expected a number, got {value!r}") from None
    if key == "spread_idle":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ValidationError(where, f"expected true or false, got {value!r}")
    return str(value)


def load_config(path: Path | None, env: Mapping[str, str], flags: Mapping[str, Any]) -> EnergyConfig:
    """File, then environment, then flags (None = flag not given)."""
    config = EnergyConfig()
    file = path or (Path(env["ZEROWATT_ENERGY_CONFIG"]) if env.get("ZEROWATT_ENERGY_CONFIG") else None)
    if file is not None:
        try:
            data = tomllib.loads(file.read_text())
        except OSError as exc:
            raise ValidationError(str(file), f"cannot read energy config: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValidationError(str(file), f"invalid TOML: {exc}") from None
        table = data.get("energy", data)
        if not isinstance(table, dict):
            raise ValidationError(f"{file}: energy", "expected a table")
        config = config.merged(table, str(file))
    config = config.merged({k: env[v] for k, v in _ENV.items() if env.get(v)}, "environment")
    return config.merged(flags, "command line")

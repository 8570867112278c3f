"""From IT energy to what a data centre pays: facility energy (PUE), water (WUE) and carbon.

Definitions (The Green Grid): PUE = facility energy / IT energy; WUE = site water (litres) / IT energy (kWh).
Carbon = facility energy (kWh) × grid intensity (g CO2e/kWh): the grid supplies the whole facility.

Defaults and presets, with their sources:

- PUE 1.58: Uptime Institute Global Data Center Survey 2023, industry average.
- PUE ``hyperscale`` 1.10: Google's fleet-wide trailing-twelve-month PUE (Google 2023 Environmental Report).
- PUE ``free-cooled`` 1.15: a free-/adiabatic-cooled colocation site in the style of Scaleway's DC5 (Paris),
  whose design annual PUE Scaleway publishes as about 1.15.
- WUE 1.8 L/kWh: US data centre on-site average (Shehabi et al., "United States Data Center Energy Usage
  Report", LBNL 2016).
- WUE ``hyperscale`` 0.18 L/kWh: AWS global data-centre WUE for 2023 (Amazon 2023 Sustainability Report).
- WUE ``dry`` 0: closed-loop or dry cooling that evaporates no water on site.
- Carbon 475 g CO2e/kWh when nothing is configured: IEA world-average electricity emission factor (2019).
- Carbon per cloud region: Cloud Carbon Footprint's grid emission factors (Apache-2.0; EPA eGRID, EEA,
  carbonfootprint.com, Google, EMA Singapore per row), shipped in ``data/grid_carbon.csv``.
"""

from __future__ import annotations

import csv
import difflib
import io
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from typing import Any

from zerowatt.errors import SettingError, ValidationError
from zerowatt.units import JOULES_PER_KWH, GramsCO2e, Joules, Litres

DEFAULT_PUE = 1.58
DEFAULT_WUE = 1.8
DEFAULT_CARBON_G_PER_KWH = 475.0

PUE_PRESETS: dict[str, float] = {"industry-average": DEFAULT_PUE, "hyperscale": 1.10, "free-cooled": 1.15}
WUE_PRESETS: dict[str, float] = {"industry-average": DEFAULT_WUE, "hyperscale": 0.18, "dry": 0.0}


@dataclass(frozen=True)
class RegionCarbon:
    """Grid carbon intensity of one cloud region."""

    provider: str
    region: str
    location: str
    g_co2e_per_kwh: float
    source: str

    @property
    def name(self) -> str:
        return f"{self.provider}:{self.region}"


@dataclass(frozen=True)
class EnergyReport:
    """IT energy turned into facility energy, water and carbon, with the factors used."""

    it_joules: Joules
    facility_joules: Joules
    water_litres: Litres
    co2e_grams: GramsCO2e
    pue: float
    wue_l_per_kwh: float
    carbon_g_per_kwh: float
    carbon_basis: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Facility:
    """The site a node runs in. Stable API: ``Facility(pue, wue, carbon_g_per_kwh).report(it_joules)``."""

    pue: float = DEFAULT_PUE
    wue: float = DEFAULT_WUE
    carbon_g_per_kwh: float = DEFAULT_CARBON_G_PER_KWH
    carbon_basis: str = "IEA world average 2019"

    def __post_init__(self) -> None:
        if not (self.pue >= 1.0):
            raise ValidationError("pue", f"must be ≥ 1.0 (facility energy includes the IT energy), got {self.pue!r}")
        if not (self.wue >= 0.0):
            raise ValidationError("wue", f"must be ≥ 0 litres per kWh, got {self.wue!r}")
        if not (self.carbon_g_per_kwh >= 0.0):
            raise ValidationError("carbon", f"must be ≥ 0 g CO2e per kWh, got {self.carbon_g_per_kwh!r}")

    def facility_joules(self, it_joules: Joules) -> Joules:
        return it_joules * self.pue

    def water_litres(self, it_joules: Joules) -> Litres:
        return it_joules / JOULES_PER_KWH * self.wue

    def co2e_grams(self, it_joules: Joules) -> GramsCO2e:
        return self.facility_joules(it_joules) / JOULES_PER_KWH * self.carbon_g_per_kwh

    def report(self, it_joules: Joules) -> EnergyReport:
        return EnergyReport(
            it_joules=it_joules,
            facility_joules=self.facility_joules(it_joules),
            water_litres=self.water_litres(it_joules),
            co2e_grams=self.co2e_grams(it_joules),
            pue=self.pue,
            wue_l_per_kwh=self.wue,
            carbon_g_per_kwh=self.carbon_g_per_kwh,
            carbon_basis=self.carbon_basis,
        )


def parse_grid_table(text: str) -> list[RegionCarbon]:
    return [
        RegionCarbon(r["provider"], r["region"], r["location"], float(r["g_co2e_per_kwh"]), r["source"])
        for r in csv.DictReader(io.StringIO(text))
    ]


@cache
def grid_table() -> tuple[RegionCarbon, ...]:
    """The shipped grid carbon table (CCF grid emission factors, converted to g/kWh)."""
    text = resources.files("zerowatt.energy").joinpath("data", "grid_carbon.csv").read_text(encoding="utf-8")
    return tuple(parse_grid_table(text))


def _norm(region: str) -> str:
    return region.strip().lower().replace(" ", "")


def region_carbon(name: str, table: tuple[RegionCarbon, ...] | None = None) -> RegionCarbon:
    """Look up ``aws:eu-west-1`` / ``gcp:europe-west1`` / ``azure:westeurope``, or a bare region name that
    only one provider uses (``eu-west-1``). Unknown or ambiguous names raise a :class:`ValidationError`."""
    rows = grid_table() if table is None else table
    provider, sep, region = name.partition(":")
    if sep:
        wanted = [r for r in rows if r.provider == provider.strip().lower() and r.region == _norm(region)]
    else:
        wanted = [r for r in rows if r.region == _norm(name)]
    if len(wanted) == 1:
        return wanted[0]
    if len(wanted) > 1:
        names = ", ".join(r.name for r in wanted)
        raise SettingError("region", f"{name!r} is ambiguous: say which of {names}")
    close = difflib.get_close_matches(name.lower(), [r.name for r in rows] + [r.region for r in rows], n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; use provider:region, e.g. aws:eu-west-1"
    raise SettingError("region", f"unknown cloud region {name!r}{hint}")


def preset(value: str, presets: dict[str, float], what: str) -> float:
    """A number, or the name of a preset, for ``--pue``/``--wue``."""
    try:
        return float(value)
    except ValueError:
        pass
    if value in presets:
        return presets[value]
    raise SettingError(what, f"expected a number or one of {', '.join(presets)}, got {value!r}")


def facility_from(
    pue: str | float | None = None,
    wue: str | float | None = None,
    carbon: float | None = None,
    region: str | None = None,
) -> Facility:
    """Build a :class:`Facility` from user options (numbers or preset names); unset ones take the defaults."""
    if carbon is not None and region is not None:
        raise SettingError("carbon_or_region", "give a carbon intensity or a region, not both")
    p = DEFAULT_PUE if pue is None else (pue if isinstance(pue, float) else preset(str(pue), PUE_PRESETS, "pue"))
    w = DEFAULT_WUE if wue is None else (wue if isinstance(wue, float) else preset(str(wue), WUE_PRESETS, "wue"))
    if region is not None:
        rc = region_carbon(region)
        return Facility(p, w, rc.g_co2e_per_kwh, f"{rc.name} ({rc.location}, {rc.source}, via CCF)")
    if carbon is not None:
        return Facility(p, w, carbon, "configured")
    return Facility(p, w)

"""Derive the compact tables shipped in ``zerowatt/energy/data/`` from the reference data.

Run by ``scripts/derive_energy_data.py`` (and checked by a test that re-derives and compares), so the
shipped numbers can always be traced back to the published sources named in ``data/NOTICE.md``:

- ``specpower.csv``: one representative SPECpower_ssj2008 result per CPU model key (the lower-median system
  by watts per hardware thread at 100% load, so its published idle and 100% figures are shipped *exactly*);
- ``ccf_coefficients.csv``: CCF's per-vCPU min/max watts by micro-architecture, per cloud;
- ``grid_carbon.csv``: grid carbon intensity per cloud region, converted to g CO2e/kWh.

Pure text-in, text-out functions; :func:`write_tables` is the only one touching files.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from zerowatt.energy.cpu import cpu_key
from zerowatt.errors import ValidationError

SPECPOWER_FIELDS = ("key", "cpu", "system", "vendor", "published", "threads", "idle_watts", "max_watts", "systems")
COEFFICIENT_FIELDS = ("provider", "architecture", "min_watts_per_vcpu", "max_watts_per_vcpu")
GRID_FIELDS = ("provider", "region", "location", "g_co2e_per_kwh", "source")


@dataclass
class Derived:
    """The text of one derived table plus the input rows that were skipped, each with its reason."""

    text: str
    skipped: list[str] = field(default_factory=list)


def _write(fields: tuple[str, ...], rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _num(text: str) -> str:
    """Shortest round-trip text of a float (so shipped values equal the published ones exactly)."""
    return repr(float(text))


def derive_specpower(text: str, name: str = "specpower.csv") -> Derived:
    """One representative result per CPU key, with the count of published systems sharing that key."""
    groups: dict[str, list[dict[str, str]]] = {}
    skipped: list[str] = []
    for line_no, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            idle = float(row["avg. watts @ active idle"])
            full = float(row["avg. watts @ 100%"])
            threads = int(row["Total Threads"])
        except (KeyError, TypeError, ValueError):
            skipped.append(f"{name}:{line_no}: missing or non-numeric watts/threads")
            continue
        if not (0 < idle <= full) or threads < 1:
            skipped.append(f"{name}:{line_no}: implausible idle {idle} W / 100% {full} W / {threads} threads")
            continue
        key = cpu_key(row["CPU Description"])
        if not key:
            skipped.append(f"{name}:{line_no}: empty CPU description")
            continue
        groups.setdefault(key, []).append(row)
    rows: list[dict[str, str]] = []
    for key in sorted(groups):
        systems = sorted(
            groups[key], key=lambda r: (float(r["avg. watts @ 100%"]) / int(r["Total Threads"]), r["System"])
        )
        rep = systems[(len(systems) - 1) // 2]
        rows.append(
            {
                "key": key,
                "cpu": rep["CPU Description"].strip().rstrip(","),
                "system": rep["System"].strip(),
                "vendor": rep["Hardware Vendor"].strip(),
                "published": rep["Published"].strip(),
                "threads": str(int(rep["Total Threads"])),
                "idle_watts": _num(rep["avg. watts @ active idle"]),
                "max_watts": _num(rep["avg. watts @ 100%"]),
                "systems": str(len(systems)),
            }
        )
    return Derived(_write(SPECPOWER_FIELDS, rows), skipped)


def derive_coefficients(texts: dict[str, str]) -> Derived:
    """Merge CCF's ``ccf-coefficients-<provider>-use.csv`` files (provider → text) into one table."""
    rows: list[dict[str, str]] = []
    for provider in sorted(texts):
        for line_no, row in enumerate(csv.DictReader(io.StringIO(texts[provider])), start=2):
            where = f"ccf-coefficients-{provider}-use.csv:{line_no}"
            try:
                low, high = float(row["Min Watts"]), float(row["Max Watts"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValidationError(where, "expected numeric 'Min Watts' and 'Max Watts'") from exc
            rows.append(
                {
                    "provider": provider,
                    "architecture": row["Architecture"].strip(),
                    "min_watts_per_vcpu": repr(low),
                    "max_watts_per_vcpu": repr(high),
                }
            )
    return Derived(_write(COEFFICIENT_FIELDS, rows))


def region_key(provider: str, region: str) -> str:
    """Canonical region name: ``aws:eu-west-1``, ``gcp:europe-west1``, ``azure:westeurope``."""
    return f"{provider}:{region.strip().lower().replace(' ', '')}"


def derive_grid(texts: dict[str, str]) -> Derived:
    """Merge CCF's ``grid-emissions-factors-<provider>.csv`` files, converting t/kWh to g/kWh.

    A row whose factor is not a decimal number in (0, 0.002] t/kWh is skipped and reported rather than
    guessed at (the Azure file has values such as ``000077`` whose decimal point is lost).
    """
    rows: list[dict[str, str]] = []
    skipped: list[str] = []
    for provider in sorted(texts):
        for line_no, row in enumerate(csv.DictReader(io.StringIO(texts[provider])), start=2):
            where = f"grid-emissions-factors-{provider}.csv:{line_no}"
            value = (row.get("CO2e (metric ton/kWh)") or "").strip()
            try:
                tonnes = float(value)
            except ValueError:
                skipped.append(f"{where}: non-numeric factor {value!r}")
                continue
            if "." not in value or not (0 < tonnes <= 0.002):
                skipped.append(f"{where}: implausible factor {value!r} t CO2e/kWh for {row['Region']!r}")
                continue
            rows.append(
                {
                    "provider": provider,
                    "region": region_key(provider, row["Region"]).split(":", 1)[1],
                    "location": (row.get("Location") or row.get("Country") or "").strip(),
                    "g_co2e_per_kwh": repr(round(tonnes * 1e6, 6)),
                    "source": (row.get("Source") or "").strip(),
                }
            )
    return Derived(_write(GRID_FIELDS, rows), skipped)


PROVIDERS = ("aws", "azure", "gcp")


def derive_all(power_dir: Path) -> dict[str, Derived]:
    """Derive every shipped table from the files in ``power_dir`` (``data/power``)."""
    specs = sorted(power_dir.glob("specpower-*.csv"))
    if not specs:
        raise ValidationError(str(power_dir), "no specpower-*.csv file found")
    spec = specs[-1]
    return {
        "specpower.csv": derive_specpower(spec.read_text(), spec.name),
        "ccf_coefficients.csv": derive_coefficients(
            {p: (power_dir / f"ccf-coefficients-{p}-use.csv").read_text() for p in PROVIDERS}
        ),
        "grid_carbon.csv": derive_grid(
            {p: (power_dir / f"grid-emissions-factors-{p}.csv").read_text() for p in PROVIDERS}
        ),
    }


def write_tables(power_dir: Path, out_dir: Path) -> list[str]:
    """Write the derived tables into ``out_dir``; returns the skipped-row notes."""
    notes: list[str] = []
    for name, derived in derive_all(power_dir).items():
        (out_dir / name).write_text(derived.text)
        notes.extend(derived.skipped)
    return notes

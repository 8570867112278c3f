"""A right-sizing report (recommendations + what they free) and its renderings: JSON, YAML, CSV, HTML, table."""

from __future__ import annotations

import csv
import html
import io
import json
import pprint
from dataclasses import dataclass, field
from typing import Any

import yaml
from rich.markup import escape
from rich.table import Table

from zerowatt.energy.capacity import CapacityCost, CapacityPricing, ccf_pricing
from zerowatt.rightsize.model import Recommendation
from zerowatt.units import GIB


def cost_json(cost: CapacityCost) -> dict[str, float]:
    """Freed power (IT and facility) and, per year, facility kWh, kg CO2e and litres of water."""
    return {
        "watts": round(cost.it_watts, 3),
        "facility_watts": round(cost.facility_watts, 3),
        "kwh_per_year": round(cost.kwh, 3),
        "co2e_kg_per_year": round(cost.co2e_grams / 1000, 3),
        "water_litres_per_year": round(cost.water_litres, 3),
    }


@dataclass
class Totals:
    """Requests freed (negative: added) in cores and bytes; :meth:`cost` prices them."""

    containers: int = 0
    cpu_cores: float = 0.0
    memory_bytes: float = 0.0

    def add(self, rec: Recommendation) -> None:
        cores, mem = rec.freed()
        self.containers += 1
        self.cpu_cores += cores
        self.memory_bytes += mem

    def cost(self, pricing: CapacityPricing) -> CapacityCost:
        return pricing.cost(self.cpu_cores, self.memory_bytes)

    def to_json(self, pricing: CapacityPricing) -> dict[str, float | int]:
        return {
            "containers": self.containers,
            "cpu_cores": round(self.cpu_cores, 6),
            "memory_bytes": int(self.memory_bytes),
            "memory_gib": round(self.memory_bytes / GIB, 6),
            **cost_json(self.cost(pricing)),
        }


@dataclass
class Report:
    strategy: str
    source: str
    history_seconds: float
    now: float
    recommendations: list[Recommendation]
    power: CapacityPricing = field(default_factory=ccf_pricing)
    warnings: list[str] = field(default_factory=list)

    def totals(self) -> tuple[Totals, dict[str, Totals]]:
        cluster = Totals()
        per_ns: dict[str, Totals] = {}
        for rec in self.recommendations:
            cluster.add(rec)
            per_ns.setdefault(rec.id.namespace, Totals()).add(rec)
        return cluster, dict(sorted(per_ns.items()))

    def to_json(self) -> dict[str, Any]:
        cluster, per_ns = self.totals()
        return {
            "strategy": self.strategy,
            "source": self.source,
            "history_seconds": self.history_seconds,
            "now": self.now,
            "power": self.power.to_json(),
            "containers": [container_json(r, self.power) for r in self.recommendations],
            "totals": {
                "cluster": cluster.to_json(self.power),
                "namespaces": {k: v.to_json(self.power) for k, v in per_ns.items()},
            },
            "warnings": self.warnings,
        }


def container_json(rec: Recommendation, pricing: CapacityPricing) -> dict[str, Any]:
    cores, mem = rec.freed()
    out: dict[str, Any] = {"namespace": rec.id.namespace}
    out[rec.id.owner_kind] = rec.id.owner
    out.update(
        {
            "container": rec.id.container,
            "target": rec.target.to_json(),
            "lower_bound": rec.lower_bound.to_json(),
            "upper_bound": rec.upper_bound.to_json(),
            "recommended": {"requests": rec.request.to_json(), "limits": rec.limit.to_json()},
            "current": {"requests": rec.current_request.to_json(), "limits": rec.current_limit.to_json()},
            "freed": {"cpu": round(cores, 6), "memory": int(mem), **cost_json(pricing.cost(cores, mem))},
            "replicas": rec.replicas,
            "samples": rec.samples,
            "confidence_days": round(rec.confidence_days, 4),
            "oom_kills": rec.oom_kills,
            "reason": rec.reason,
        }
    )
    return out


def render_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2) + "\n"


def render_yaml(report: Report) -> str:
    return str(yaml.safe_dump(report.to_json(), sort_keys=False))


CSV_COLUMNS = (
    "namespace",
    "owner_kind",
    "owner",
    "container",
    "replicas",
    "current_cpu_request",
    "current_memory_request",
    "current_cpu_limit",
    "current_memory_limit",
    "target_cpu",
    "target_memory",
    "lower_bound_cpu",
    "lower_bound_memory",
    "upper_bound_cpu",
    "upper_bound_memory",
    "recommended_cpu_limit",
    "recommended_memory_limit",
    "freed_cpu",
    "freed_memory",
    "samples",
    "confidence_days",
    "oom_kills",
    "freed_watts",
    "freed_facility_watts",
    "freed_kwh_per_year",
    "freed_co2e_kg_per_year",
    "reason",
)


def _cell(v: float | None) -> str:
    if v is None:
        return ""
    return f"{v:.6g}" if not float(v).is_integer() else str(int(v))


def render_csv(report: Report) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in report.recommendations:
        cores, mem = r.freed()
        cost = cost_json(report.power.cost(cores, mem))
        w.writerow(
            [
                r.id.namespace,
                r.id.owner_kind,
                r.id.owner,
                r.id.container,
                r.replicas,
                *(_cell(v) for v in (r.current_request.cpu, r.current_request.memory)),
                *(_cell(v) for v in (r.current_limit.cpu, r.current_limit.memory)),
                *(_cell(v) for v in (r.target.cpu, r.target.memory, r.lower_bound.cpu, r.lower_bound.memory)),
                *(_cell(v) for v in (r.upper_bound.cpu, r.upper_bound.memory, r.limit.cpu, r.limit.memory)),
                _cell(round(cores, 6)),
                _cell(int(mem)),
                r.samples,
                f"{r.confidence_days:.4f}",
                r.oom_kills,
                *(_cell(cost[k]) for k in ("watts", "facility_watts", "kwh_per_year", "co2e_kg_per_year")),
                r.reason or "",
            ]
        )
    return buf.getvalue()


def render_pprint(report: Report) -> str:
    """KRR's ``pprint`` formatter: Python's ``pprint`` of the report's data (here the JSON document)."""
    return pprint.pformat(report.to_json()) + "\n"


#: KRR's ``csv-raw`` columns (``formatters/csv_raw.py``), in its order; values in cores and bytes.
CSV_RAW_COLUMNS = (
    *("Namespace", "Name", "Pods", "Old Pods", "Type", "Container"),
    *(f"{res} {kind} {which}" for res in ("CPU", "Memory") for kind in ("Requests", "Limits") for which in
      ("Current", "Recommended")),
)  # fmt: skip


def _raw(v: float | None, undefined: bool) -> str:
    """KRR's ``_format_value``: integers without a decimal point, ``unset`` for none, ``?`` when undefined."""
    if v is None:
        return "?" if undefined else "unset"
    return str(int(v)) if float(v).is_integer() else str(float(v))


def render_csv_raw(report: Report) -> str:
    """KRR's ``csv-raw``: one row per container, current and recommended requests and limits unformatted."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_RAW_COLUMNS)
    for r in report.recommendations:
        kind, name = r.id.owner.split("/", 1) if r.id.owner_kind == "workload" and "/" in r.id.owner else (
            "Pod", r.id.owner)  # fmt: skip
        why = r.reason or ""
        everything = bool(why) and "cpu:" not in why and "memory:" not in why  # no valid sample at all
        no_cpu, no_mem = everything or "cpu:" in why, everything or "memory:" in why
        w.writerow(
            [
                r.id.namespace, name, r.replicas, 0, kind, r.id.container,
                _raw(r.current_request.cpu, False), _raw(r.request.cpu, no_cpu),
                _raw(r.current_limit.cpu, False), _raw(r.limit.cpu, no_cpu),
                _raw(r.current_request.memory, False), _raw(r.request.memory, no_mem),
                _raw(r.current_limit.memory, False), _raw(r.limit.memory, no_mem),
            ]
        )  # fmt: skip
    return buf.getvalue()


def fmt_cpu(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v * 1000:.0f}m" if abs(v) < 10 else f"{v:.1f}"


def fmt_mem(v: float | None) -> str:
    if v is None:
        return "—"
    mib = v / (1024 * 1024)
    return f"{mib:.0f}Mi" if abs(mib) < 10240 else f"{mib / 1024:.1f}Gi"


def _change(cur: float | None, new: float | None) -> str:
    if cur is None or new is None or cur == 0:
        return ""
    pct = (new - cur) / cur * 100
    return f" ({pct:+.0f}%)"


def render_table(report: Report) -> list[Table]:
    """Rich tables: one row per container, then the totals per namespace and for the cluster."""
    t = Table(title=f"zerowatt rightsize — strategy {report.strategy}", show_lines=False)
    for col in ("namespace", "owner", "container"):
        t.add_column(col, no_wrap=True)
    for col in ("CPU request", "memory request", "CPU limit", "memory limit"):
        t.add_column(col, overflow="fold")
    notes = any(r.reason for r in report.recommendations)
    if notes:
        t.add_column("note", overflow="fold")
    for r in report.recommendations:
        t.add_row(
            escape(r.id.namespace),  # names come from the samples: never Rich markup
            escape(r.id.owner),
            escape(r.id.container),
            f"{fmt_cpu(r.current_request.cpu)} → {fmt_cpu(r.request.cpu)}"
            f"{_change(r.current_request.cpu, r.request.cpu)}",
            f"{fmt_mem(r.current_request.memory)} → {fmt_mem(r.request.memory)}"
            f"{_change(r.current_request.memory, r.request.memory)}",
            f"{fmt_cpu(r.current_limit.cpu)} → {fmt_cpu(r.limit.cpu)}",
            f"{fmt_mem(r.current_limit.memory)} → {fmt_mem(r.limit.memory)}",
            *([escape(r.reason or "")] if notes else []),
        )
    tt = Table(title="requests freed (negative: added)", caption=f"power: {report.power.describe()}")
    for col in TOTALS_HEAD:
        tt.add_column(col, justify="right" if col != "scope" else "left")
    for row in totals_rows(report):
        tt.add_row(*map(escape, row))
    return [t, tt]


TOTALS_HEAD = ("scope", "containers", "cores", "GiB", "IT W", "facility W", "kWh/yr", "kg CO2e/yr")


def totals_rows(report: Report) -> list[tuple[str, ...]]:
    """One row per namespace, then the cluster: what the table and the HTML page show."""
    cluster, per_ns = report.totals()
    rows: list[tuple[str, ...]] = []
    for name, tot in [*per_ns.items(), ("cluster", cluster)]:
        c = tot.cost(report.power)
        rows.append(
            (
                name,
                str(tot.containers),
                f"{tot.cpu_cores:.3f}",
                f"{tot.memory_bytes / GIB:.3f}",
                f"{c.it_watts:.1f}",
                f"{c.facility_watts:.1f}",
                f"{c.kwh:.0f}",
                f"{c.co2e_grams / 1000:.1f}",
            )
        )
    return rows


def render_html(report: Report) -> str:
    """A self-contained HTML page (inline CSS, no scripts or external assets)."""
    e = html.escape
    rows = []
    for r in report.recommendations:
        cores, mem = r.freed()
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{e(str(c))}</td>"
                for c in (
                    r.id.namespace,
                    r.id.owner,
                    r.id.container,
                    f"{fmt_cpu(r.current_request.cpu)} → {fmt_cpu(r.request.cpu)}",
                    f"{fmt_mem(r.current_request.memory)} → {fmt_mem(r.request.memory)}",
                    f"{fmt_cpu(r.lower_bound.cpu)} – {fmt_cpu(r.upper_bound.cpu)}",
                    f"{fmt_mem(r.lower_bound.memory)} – {fmt_mem(r.upper_bound.memory)}",
                    f"{fmt_cpu(r.current_limit.cpu)} → {fmt_cpu(r.limit.cpu)}",
                    f"{fmt_mem(r.current_limit.memory)} → {fmt_mem(r.limit.memory)}",
                    f"{cores:.3f}",
                    f"{mem / GIB:.3f}",
                )
            )
            + "</tr>"
        )
    totals = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in totals_rows(report))
    warnings = "".join(f"<li>{e(w)}</li>" for w in report.warnings)
    head = (
        "namespace", "owner", "container", "CPU request", "memory request", "CPU bounds", "memory bounds",
        "CPU limit", "memory limit", "freed cores", "freed GiB",
    )  # fmt: skip
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>zerowatt rightsize report</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:left}}
th{{background:#f0f4f0}}.w{{color:#a50}}
</style></head><body>
<h1>Right-sizing report</h1>
<p>Strategy <b>{e(report.strategy)}</b>, source {e(report.source)}, history {report.history_seconds / 86400:.1f} days.
Power: {e(report.power.describe())}; a year is {report.power.to_json()["hours_per_year"]:g} hours.</p>
<h2>Freed requests</h2>
<table><tr>{"".join(f"<th>{h}</th>" for h in TOTALS_HEAD)}</tr>{totals}</table>
<h2>Containers</h2>
<table><tr>{"".join(f"<th>{h}</th>" for h in head)}</tr>{"".join(rows)}</table>
{f'<h2>Warnings</h2><ul class="w">{warnings}</ul>' if warnings else ""}
</body></html>
"""

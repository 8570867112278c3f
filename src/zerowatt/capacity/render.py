"""Adapter: the report document as a 100-column table, YAML, or a self-contained HTML page with SVG charts.

Every renderer reads the plain document of :func:`zerowatt.capacity.report.document`, so the formats never
disagree. The HTML page has no script and no external asset: inline CSS and SVG only (stacked bars of the six
categories per node, the cluster before and after each scale-down, the watts per category).
"""

from __future__ import annotations

import html
import io
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from zerowatt.capacity.breakdown import CATEGORIES

WIDTH = 100
GIB = 2**30
COLOURS = {
    "base": "#1b7837",
    "variable": "#7fbf7b",
    "safety": "#fdb863",
    "growth": "#e66101",
    "redundancy": "#8073ac",
    "idle": "#bababa",
}
#: How many nodes the table and the page list one by one (the JSON has them all).
TABLE_NODES = 25
HTML_NODES = 300


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.0f}%" if whole else "-"


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def render_yaml(doc: dict[str, Any]) -> str:
    return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=WIDTH))


def _scenario_rows(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    c = doc["consolidation"]
    return [
        ("today's requests", c["requests"]),
        ("right-sized requests", c["rightsized"]),
        ("cluster-autoscaler rule", c["cluster_autoscaler"]),
    ]


#: Short column heads of the categories in the 100-column share tables.
_SHORT = {"base": "base", "variable": "var", "safety": "safe", "growth": "grow", "redundancy": "red", "idle": "idle"}


def _share_table(title: str, label: str, rows: list[dict[str, Any]], total: str, categories: tuple[str, ...]) -> Table:
    """One row per namespace or node: its cores (``total``), each category's share of them, and its watts."""
    table = Table(title=f"{title} (CPU share of each category)", title_justify="left")
    table.add_column(label, overflow="fold", max_width=30)
    for col in ("cores", *(_SHORT[k] for k in categories), "W"):
        table.add_column(col, justify="right")
    for row in rows[:TABLE_NODES]:
        cores = row[total]["cpu"]
        table.add_row(
            escape(row["name"]),
            f"{cores:.1f}",
            *(_pct(row[k]["cpu"], cores) for k in categories),
            f"{row[total]['watts']:.0f}",
        )
    if len(rows) > TABLE_NODES:
        table.caption = f"{len(rows) - TABLE_NODES} more {label}s in --format json"
    return table


def render_table(doc: dict[str, Any]) -> str:
    """The report as text tables that fit in :data:`WIDTH` columns."""
    out = io.StringIO()
    con = Console(file=out, width=WIDTH, force_terminal=False, color_system=None, highlight=False)
    cl = doc["cluster"]
    cap = cl["capacity"]
    t = Table(title=f"Capacity of {cl['nodes']} nodes, {cl['pods']} pods: what it is for", title_justify="left")
    for col in ("category", "cores", "%", "GiB", "%", "watts", "%"):
        t.add_column(col, justify="left" if col == "category" else "right")
    for name in CATEGORIES:
        v = cl[name]
        t.add_row(
            name,
            f"{v['cpu']:.1f}",
            _pct(v["cpu"], cap["cpu"]),
            f"{v['memory'] / GIB:.1f}",
            _pct(v["memory"], cap["memory"]),
            f"{v['watts']:.0f}",
            _pct(v["watts"], cap["watts"]),
        )
    t.add_row("capacity", f"{cap['cpu']:.1f}", "", f"{cap['memory'] / GIB:.1f}", "", f"{cap['watts']:.0f}", "")
    con.print(t)
    spaces = sorted(doc["namespaces"], key=lambda n: -n["requests"]["cpu"])
    if spaces:  # a namespace has no idle: its share columns stop at redundancy
        con.print(_share_table("Namespaces by requested cores", "namespace", spaces, "requests", CATEGORIES[:5]))
    nodes = sorted(doc["nodes"], key=lambda n: -n["idle"]["cpu"])
    con.print(_share_table("Nodes by idle cores", "node", nodes, "capacity", CATEGORIES))
    st = Table(title="Servers that can be off", title_justify="left")
    st.add_column("scenario")
    for col in ("off", "kept", "kWh/yr", "kg CO2e/yr", "litres/yr", "money/yr"):
        st.add_column(col, justify="right")
    for label, s in _scenario_rows(doc):
        money = _money(s["money_per_year"])
        st.add_row(
            label,
            str(len(s["nodes_off"])),
            str(len(s["nodes_kept"])),
            f"{s['kwh_per_year']:,.0f}",
            f"{s['co2e_kg_per_year']:,.0f}",
            f"{s['water_litres_per_year']:,.0f}",
            money,
        )
    con.print(st)
    req = doc["consolidation"]["requests"]
    if req["drain"]:
        dt = Table(title="Drain order (today's requests)", title_justify="left")
        dt.add_column("#", justify="right")
        dt.add_column("node", overflow="fold", max_width=40)
        for col in ("pods", "IT W", "kWh/yr", "kg CO2e/yr"):
            dt.add_column(col, justify="right")
        for i, d in enumerate(req["drain"][:TABLE_NODES], 1):
            dt.add_row(
                str(i),
                escape(d["node"]),
                str(d["pods_moved"]),
                f"{d['it_watts']:.1f}",
                f"{d['kwh_per_year']:,.0f}",
                f"{d['co2e_kg_per_year']:,.0f}",
            )
        con.print(dt)
    kept = list(req["kept_because"].items())
    if kept:
        kt = Table(title="Why the kept nodes stay (today's requests)", title_justify="left")
        kt.add_column("node", overflow="fold", max_width=30)
        kt.add_column("reason", overflow="fold")
        for name, why in kept[:TABLE_NODES]:
            kt.add_row(escape(name), escape(why))
        if len(kept) > TABLE_NODES:
            kt.caption = f"{len(kept) - TABLE_NODES} more in --format json"
        con.print(kt)
    con.print("[bold]zerowatt vs cluster-autoscaler[/]")
    for line in doc["consolidation"]["comparison"]["summary"]:
        con.print(f"  - {escape(line)}", soft_wrap=False)
    if req["commands"]:
        con.print("[bold]Commands (drain order)[/]")
        for line in req["commands"][: 2 * TABLE_NODES]:
            con.print("  " + escape(line), overflow="fold")
    return out.getvalue()


# -- HTML ---------------------------------------------------------------------------------------------------


def _bar(parts: list[tuple[str, float, str]], width: float, x0: float, y: float, h: float, scale: float) -> str:
    """One horizontal stacked bar of (category, value, tooltip) at ``scale`` pixels per unit."""
    out, x = [], x0
    for name, value, tip in parts:
        w = max(0.0, value * scale)
        if w > 0:
            out.append(
                f'<rect x="{x:.2f}" y="{y:.2f}" width="{w:.2f}" height="{h:.2f}" fill="{COLOURS[name]}">'
                f"<title>{html.escape(tip)}</title></rect>"
            )
        x += w
    return "".join(out)


def _svg(width: float, height: float, label: str, body: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" role="img" '
        f'aria-label="{label}">{body}</svg>'
    )


def _legend() -> str:
    return "".join(
        f'<span class="key"><span class="sw" style="background:{c}"></span>{n}</span>' for n, c in COLOURS.items()
    )


def _short(name: str, width: int = 28) -> str:
    """A node name that fits the label column: its start and its (distinctive) end around an ellipsis."""
    if len(name) <= width:
        return name
    return name[: width // 2 - 1] + "…" + name[-(width - width // 2) :]


def _nodes_svg(doc: dict[str, Any]) -> str:
    nodes = sorted(doc["nodes"], key=lambda n: -n["idle"]["cpu"])[:HTML_NODES]
    if not nodes:
        return ""
    label_w, bar_w, row = 250.0, 610.0, 16.0
    biggest = max(n["capacity"]["cpu"] for n in nodes) or 1.0
    scale = bar_w / biggest
    rows = []
    off = set(doc["consolidation"]["requests"]["nodes_off"])
    for i, n in enumerate(nodes):
        y = i * row
        parts = [
            (k, max(0.0, n[k]["cpu"]), f"{n['name']}: {k} {n[k]['cpu']:.2f} cores, {n[k]['watts']:.1f} W")
            for k in CATEGORIES
        ]
        mark = " (off)" if n["name"] in off else ""
        rows.append(
            f'<text x="0" y="{y + 12:.1f}" class="lbl">{html.escape(_short(n["name"]) + mark)}</text>'
            + _bar(parts, bar_w, label_w, y + 2, row - 4, scale)
        )
    height = len(nodes) * row + 4
    return _svg(label_w + bar_w + 10, height, "capacity per node", "".join(rows))


def _cluster_svg(doc: dict[str, Any]) -> str:
    cl = doc["cluster"]
    cap = cl["capacity"]["cpu"] or 1.0
    by_name = {n["name"]: n for n in doc["nodes"]}
    bars: list[tuple[str, list[tuple[str, float, str]]]] = [
        ("today", [(k, max(0.0, cl[k]["cpu"]), f"today: {k} {cl[k]['cpu']:.1f} cores") for k in CATEGORIES])
    ]
    for label, s in _scenario_rows(doc):
        freed = sum(by_name[n]["capacity"]["cpu"] for n in s["nodes_off"])
        if s is doc["consolidation"]["rightsized"]:
            rs = s["requested"]["cpu"]
            b = min(cl["base"]["cpu"], rs)
            v = min(cl["variable"]["cpu"], rs - b)
            parts = [
                ("base", b, f"{label}: base {b:.1f} cores"),
                ("variable", v, f"{label}: variable {v:.1f} cores"),
                ("safety", max(0.0, rs - b - v), f"{label}: rest of the right-sized requests {rs - b - v:.1f} cores"),
                ("idle", max(0.0, cap - freed - rs), f"{label}: idle {cap - freed - rs:.1f} cores"),
            ]
        else:
            parts = [(k, max(0.0, cl[k]["cpu"]), f"{label}: {k} {cl[k]['cpu']:.1f} cores") for k in CATEGORIES[:5]]
            parts.append(
                ("idle", max(0.0, cl["idle"]["cpu"] - freed), f"{label}: idle {cl['idle']['cpu'] - freed:.1f} cores")
            )
        bars.append((f"after {label}", parts))
    label_w, bar_w, row = 220.0, 640.0, 26.0
    scale = bar_w / cap
    outline = (
        '<rect x="{x}" y="{y:.1f}" width="{w:.2f}" height="{h:.1f}" fill="none" stroke="#888" '
        'stroke-dasharray="4,3"><title>capacity today</title></rect>'
    )
    body = "".join(
        f'<text x="0" y="{i * row + 17:.1f}" class="lbl">{html.escape(name)}</text>'
        + _bar(parts, bar_w, label_w, i * row + 3, row - 6, scale)
        + (outline.format(x=label_w, y=i * row + 3, w=bar_w, h=row - 6) if i else "")
        for i, (name, parts) in enumerate(bars)
    )
    return _svg(label_w + bar_w + 10, len(bars) * row + 4, "cluster before and after", body)


def _energy_svg(doc: dict[str, Any]) -> str:
    cl = doc["cluster"]
    values = [(k, max(0.0, cl[k]["watts"])) for k in CATEGORIES]
    top = max((v for _, v in values), default=1.0) or 1.0
    label_w, bar_w, row = 120.0, 600.0, 24.0
    hours = doc["power"]["hours_per_year"]
    body = []
    for i, (k, v) in enumerate(values):
        y = i * row
        w = v / top * bar_w
        body.append(
            f'<text x="0" y="{y + 16:.1f}" class="lbl">{k}</text>'
            f'<rect x="{label_w}" y="{y + 3:.1f}" width="{w:.2f}" height="{row - 6:.1f}" fill="{COLOURS[k]}">'
            f"<title>{k}: {v:.1f} W, {v * hours / 1000:,.0f} kWh/yr IT</title></rect>"
            f'<text x="{label_w + w + 6:.1f}" y="{y + 16:.1f}" class="lbl">{v:,.0f} W</text>'
        )
    return _svg(label_w + bar_w + 120, len(values) * row + 4, "watts per category", "".join(body))


def render_html(doc: dict[str, Any]) -> str:
    """A self-contained page: inline CSS and SVG, no script, no external asset."""
    e = html.escape
    cl = doc["cluster"]
    rows = "".join(
        f"<tr><td>{k}</td><td>{cl[k]['cpu']:.1f}</td><td>{cl[k]['memory'] / GIB:.1f}</td>"
        f"<td>{cl[k]['watts']:.0f}</td></tr>"
        for k in (*CATEGORIES, "capacity")
    )
    scen = "".join(
        f"<tr><td>{e(label)}</td><td>{len(s['nodes_off'])}</td><td>{len(s['nodes_kept'])}</td>"
        f"<td>{s['kwh_per_year']:,.0f}</td><td>{s['co2e_kg_per_year']:,.0f}</td><td>{s['water_litres_per_year']:,.0f}</td>"
        f"<td>{_money(s['money_per_year'])}</td></tr>"
        for label, s in _scenario_rows(doc)
    )
    req = doc["consolidation"]["requests"]
    drain = "".join(
        f"<tr><td>{i}</td><td>{e(d['node'])}</td><td>{d['pods_moved']}</td><td>{d['it_watts']:.1f}</td>"
        f"<td>{d['kwh_per_year']:,.0f}</td><td>{d['co2e_kg_per_year']:,.0f}</td></tr>"
        for i, d in enumerate(req["drain"][:HTML_NODES], 1)
    )
    kept = "".join(
        f"<tr><td>{e(n)}</td><td>{e(why)}</td></tr>" for n, why in list(req["kept_because"].items())[:HTML_NODES]
    )
    summary = "".join(f"<li>{e(s)}</li>" for s in doc["consolidation"]["comparison"]["summary"])
    commands = e("\n".join(req["commands"]))
    karpenter = e("\n".join(req["karpenter"]))
    warnings = "".join(f"<li>{e(w)}</li>" for w in doc["warnings"])
    usage = e(str(doc["usage_source"]) or "none")
    pw = doc["power"]
    scen_head = "".join(
        f"<th>{h}</th>" for h in ("scenario", "off", "kept", "kWh/yr", "kg CO2e/yr", "litres/yr", "money/yr")
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>zerowatt capacity report</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1000px}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:right}}
td:first-child,th:first-child{{text-align:left}}th{{background:#eef3ee}}
.lbl{{font:12px system-ui,sans-serif;fill:#222}}.key{{margin-right:1em;font-size:13px}}
.sw{{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}}
pre{{background:#f6f6f6;padding:.6em;overflow-x:auto}}.w{{color:#a50}}
</style></head><body>
<h1>Capacity report: which servers can be off</h1>
<p>{cl["nodes"]} nodes, {cl["pods"]} pods. Source: {e(str(doc["source"]))}; usage: {usage}.
PUE {pw["pue"]:g}, {pw["carbon_g_per_kwh"]:g} g CO2e/kWh, WUE {pw["wue_l_per_kwh"]:g} L/kWh.</p>
<p>{_legend()}</p>
<h2>The cluster today and after each scale-down (CPU cores)</h2>
{_cluster_svg(doc)}
<h2>Energy per category (modelled watts)</h2>
{_energy_svg(doc)}
<table><tr><th>category</th><th>cores</th><th>GiB</th><th>watts</th></tr>{rows}</table>
<h2>Servers that can be off</h2>
<table><tr>{scen_head}</tr>{scen}</table>
<h3>zerowatt vs cluster-autoscaler</h3><ul>{summary}</ul>
<h2>Nodes (CPU cores per category; most idle first)</h2>
{_nodes_svg(doc)}
<h2>Drain order (today's requests)</h2>
<table><tr><th>#</th><th>node</th><th>pods</th><th>IT W</th><th>kWh/yr</th><th>kg CO2e/yr</th></tr>{drain}</table>
<h2>Why the kept nodes stay</h2>
<table><tr><th>node</th><th>reason</th></tr>{kept}</table>
<h2>Commands</h2><pre>{commands}</pre>
<h2>Karpenter-style plan</h2><pre>{karpenter}</pre>
{f'<h2>Warnings</h2><ul class="w">{warnings}</ul>' if warnings else ""}
</body></html>
"""

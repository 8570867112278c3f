"""The comparison plot: cold starts against idle energy per policy, with the fixed keep-alive frontier.

An adapter (it writes a PNG with matplotlib's Agg backend); the numbers come from the simulator. The
frontier is the fixed keep-alive at several windows, the curve Shahrad et al. compare their hybrid
policy against (their Fig. 15 plots the same trade with wasted memory time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from zerowatt.errors import SettingError
from zerowatt.scaling.sim.pareto import Pareto
from zerowatt.scaling.sim.periods import PolicyResult

ATTRIBUTION = "Trace: Azure Public Dataset, Microsoft (CC-BY 4.0)"


def write_plot(
    path: Path,
    results: Mapping[str, PolicyResult],
    frontier: Sequence[PolicyResult],
    title: str,
) -> None:
    """Write the PNG to ``path`` (log-log: idle energy on x, cold starts on y)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def pos(v: float) -> float:
        return max(v, 1e-3)

    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=120)
    if frontier:
        xs = [pos(r.idle_energy_joules) for r in frontier]
        ys = [pos(r.cold_starts) for r in frontier]
        ax.plot(xs, ys, "-o", color="0.6", markersize=3, label="fixed keep-alive frontier")
        for r, x, y in zip(frontier, xs, ys, strict=True):
            ax.annotate(f"{r.params.get('keep_alive_s', 0) / 60:g} min", (x, y), fontsize=7, color="0.4",
                        xytext=(3, 3), textcoords="offset points")  # fmt: skip
    markers = {"kpa": "s", "keepalive": "o", "hybrid": "D", "energy": "*"}
    for name, r in results.items():
        ax.scatter(pos(r.idle_energy_joules), pos(r.cold_starts), s=90, marker=markers.get(name, "o"), label=name,
                   zorder=3)  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("idle energy (J, IT) — warm instances waiting")
    ax.set_ylabel("cold starts (count)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path, "plot")


def write_pareto_plot(path: Path, curves: Mapping[str, Pareto], title: str) -> None:
    """Write Shahrad et al.'s Pareto comparison (their Figs. 14–15): 3rd-quartile per-function cold-start
    share against wasted memory normalised to the 10-minute keep-alive, one curve per policy sweep.

    ``curves`` maps a label (e.g. the arrival-spreading model) to a sweep; each gets its keep-alive and
    hybrid curves in one colour.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=120)
    colours = ("tab:blue", "tab:orange", "tab:green", "tab:red")
    for i, (label, pareto) in enumerate(curves.items()):
        c = colours[i % len(colours)]
        ka = sorted(pareto.keepalive, key=lambda q: q.memory_norm)
        ax.plot([q.memory_norm for q in ka], [100 * q.cold_start_share_p75 for q in ka], "-o", color=c,
                markersize=3, label=f"fixed keep-alive ({label})")  # fmt: skip
        for q in ka if i == 0 else ():  # label the windows once: the curves nearly coincide
            if q.param_s in (60.0, 600.0, 3600.0, 14400.0):
                ax.annotate(f"{q.param_s / 60:g} min", (q.memory_norm, 100 * q.cold_start_share_p75), fontsize=7,
                            color=c, xytext=(3, 3), textcoords="offset points")  # fmt: skip
        hy = sorted(pareto.hybrid, key=lambda q: q.memory_norm)
        ax.plot([q.memory_norm for q in hy], [100 * q.cold_start_share_p75 for q in hy], "--D", color=c,
                markersize=5, label=f"hybrid, range 1–4 h ({label})")  # fmt: skip
    ax.set_xlabel("wasted memory (idle GB-s), normalised to the 10-minute keep-alive")
    ax.set_ylabel("3rd-quartile per-function cold starts (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path, "pareto")


def _save(fig: Any, path: Path, key: str) -> None:
    """Credit the trace, lay out, write ``path`` (a write error names the setting ``key``) and free the figure."""
    import matplotlib.pyplot as plt

    fig.text(0.01, 0.01, ATTRIBUTION, fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    try:
        fig.savefig(path)
    except OSError as exc:
        raise SettingError(key, f"cannot write {path}: {exc}") from None
    finally:
        plt.close(fig)

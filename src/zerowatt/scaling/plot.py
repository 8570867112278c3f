"""The comparison plot: cold starts against idle energy per policy, with the fixed keep-alive frontier.

An adapter (it writes a PNG with matplotlib's Agg backend); the numbers come from the simulator. The
frontier is the fixed keep-alive at several windows, the curve Shahrad et al. compare their hybrid
policy against (their Fig. 15 plots the same trade with wasted memory time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from zerowatt.errors import UsageError
from zerowatt.scaling.simulate import PolicyResult

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
    fig.text(0.01, 0.01, ATTRIBUTION, fontsize=7, color="0.4")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    try:
        fig.savefig(path)
    except OSError as exc:
        raise UsageError(f"--plot: cannot write {path}: {exc}") from None
    finally:
        plt.close(fig)

"""The contrast report's figures (matplotlib, Agg backend), each as PNG and SVG.

* ``dying-<row>``: the dying-memcg count (``nr_dying_descendants`` of the case's
  parent) over time, one line per kernel, for the rows that carry the sampled
  series (the zombie cases; the stress sweep, from the churn's start);
* ``bytes``: where the removed memory ended up, one small chart per scenario with
  one stacked bar per kernel: at the user (the live memcg that keeps using it), at
  the parent (reparented), at dead memcgs (hatched where the split is an upper
  bound: see selftests/README, "How parent and dead are told apart").

Files are written deterministically (no dates, fixed SVG ids) so a regenerated
report from the same runs is byte-identical.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.report.contrast import Contrast, Kernel, Row

log = logging.getLogger(__name__)

#: One colour per kind of kernel (colour-blind safe, from the Okabe-Ito palette).
KIND_COLOURS = {"base": "#7f7f7f", "series-0": "#e69f00", "series-1": "#009e73",
                "upstream": "#cc79a7", "other": "#56b4e9"}
PLACE_COLOURS = {"user": "#009e73", "parent": "#cc79a7", "dead": "#7f7f7f"}
MIB = float(1 << 20)


@dataclass(frozen=True)
class Plot:
    name: str  # file stem in plots/
    title: str
    png: Path
    svg: Path
    caption: str

    def as_dict(self, base: Path) -> dict[str, str]:
        return {"name": self.name, "title": self.title, "caption": self.caption,
                "png": str(self.png.relative_to(base)), "svg": str(self.svg.relative_to(base))}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "recharge-harness-contrast"
    plt.rcParams["font.size"] = 9
    return plt


def _save(plt: Any, fig: Any, out: Path, name: str) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    fig.savefig(png, dpi=100, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(svg, bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return png, svg


def _colour(k: Kernel) -> str:
    return KIND_COLOURS.get(k.kind, KIND_COLOURS["other"])


def dying_plot(plt: Any, c: Contrast, row: Row, out: Path) -> Plot | None:
    series = row.series_cells()
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7.0, 3.4))
    for k in c.kernels:
        o = series.get(k.key)
        if o is None:
            continue
        pts = [(s.t_ms / 1000.0, s.count) for s in o.dying if s.count is not None]
        if not pts:
            continue
        if o.window_ms is not None and o.dying_end is not None:
            # The line itself is the last reading: dying_end at window_ms (after the
            # removal; stress: after the churn, which the series starts with).
            end = (o.window_ms + (o.churn_ms or 0)) / 1000.0
            if end > pts[-1][0]:
                pts.append((end, o.dying_end))
        ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", color=_colour(k),
                label=k.label, linewidth=1.6,
                linestyle="--" if k.kind == "series-0" else "-")
        if o.churn_ms is not None:  # stress: the sweep starts where the churn ends
            ax.axvline(o.churn_ms / 1000.0, color=_colour(k), linestyle=":", linewidth=1.0)
    since = {"stress": "the churn's start", "soak_churn": "the soak's start"}.get(
        row.case, "the removal")
    churn = any(o.churn_ms is not None for o in series.values())
    ax.set_xlabel(f"seconds since {since}" + (" (dotted: the churn ends, the sweep starts)"
                                               if churn else ""))
    ax.set_ylabel("dying memcgs")
    ax.set_ylim(bottom=0)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    title = f"{row.label}: dying memcgs over time"
    ax.set_title(title)
    png, svg = _save(plt, fig, out, f"dying-{row.slug}")
    return Plot(f"dying-{row.slug}", title, png, svg,
                f"nr_dying_descendants of the case's parent, sampled in the guest, since {since}"
                " (one line per kernel).")


def bytes_plot(plt: Any, c: Contrast, rows: list[Row], out: Path,
               name: str = "bytes") -> Plot | None:
    rows = [r for r in rows if r.split_cells()]
    if not rows:
        return None
    ncols = min(4, len(rows))
    nrows = math.ceil(len(rows) / ncols)
    height = 2.7 * nrows + 0.8
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.1 * ncols, height), squeeze=False)
    for ax in axes.flat[len(rows):]:
        ax.set_visible(False)
    for ax, row in zip(axes.flat, rows):
        cells = row.split_cells()
        ks = [k for k in c.kernels if k.key in cells]
        xs = list(range(len(ks)))
        bottoms = [0.0] * len(ks)
        for place in ("user", "parent", "dead"):
            vals = [max(0, getattr(cells[k.key], place) or 0) / MIB for k in ks]
            hatches = ["//" if place == "dead" and cells[k.key].split == "bound" else ""
                       for k in ks]
            bars = ax.bar(xs, vals, bottom=bottoms, color=PLACE_COLOURS[place], width=0.7,
                          edgecolor="white", linewidth=0.5)
            for bar, h in zip(bars, hatches):
                bar.set_hatch(h)
            bottoms = [b + v for b, v in zip(bottoms, vals)]
        removed = [(cells[k.key].removed or 0) / MIB for k in ks]
        ax.scatter(xs, removed, marker="_", s=400, color="black", zorder=3, linewidths=1.2)
        ax.set_xticks(xs)
        ax.set_xticklabels([_short_label(k) for k in ks], fontsize=7)
        ax.set_title(row.label if len(row.label) <= 34 else row.label[:31] + "...", fontsize=8)
        ax.set_ylabel("MiB", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(True, axis="y", alpha=0.3)
    import matplotlib.patches as mpatches
    from matplotlib.lines import Line2D

    handles = [mpatches.Patch(color=PLACE_COLOURS["user"], label="at the user (live memcg)"),
               mpatches.Patch(color=PLACE_COLOURS["parent"], label="at the parent"),
               mpatches.Patch(facecolor=PLACE_COLOURS["dead"], label="at dead memcgs"),
               mpatches.Patch(facecolor=PLACE_COLOURS["dead"], hatch="//", edgecolor="white",
                              label="dead or parent (upper bound)"),
               Line2D([], [], color="black", marker="_", linestyle="none", markersize=14,
                      label="removed (what the dead memcgs held)")]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8,
               bbox_to_anchor=(0.5, 0.0), frameon=False)
    fig.tight_layout(rect=(0, 0.8 / height, 1, 1))  # 0.8 in at the bottom: the legend
    title = "Where the removed memory ended up"
    png, svg = _save(plt, fig, out, name)
    return Plot(name, title, png, svg,
                "One chart per scenario, one bar per kernel (bytes of the scenario's stat: file, "
                "shmem, anon); hatched: the kernel still had dying memcgs, so what is not at the "
                "user is at dead memcgs or the parent (an upper bound for dead).")


def _short_label(k: Kernel) -> str:
    return {"base": f"{k.release}", "series-0": f"{k.release}+s\n=0",
            "series-1": f"{k.release}+s\n=1", "upstream": f"{k.release}"}.get(k.kind, k.key)


def render(c: Contrast, out: Path) -> tuple[list[Plot], list[str]]:
    """Every figure into ``out`` (plots/); (plots, notes).  Without matplotlib: no
    figures and a note saying so (the table and contrast.json do not need it)."""
    try:
        plt = _pyplot()
    except ImportError as e:
        return [], [f"no plots: matplotlib is not installed ({e}); pip install matplotlib"]
    plots: list[Plot] = []
    # The zombie cases first (the headline), then stress and soak, in table order.
    for row in sorted(c.rows, key=lambda r: not r.case.startswith("zombie")):
        p = dying_plot(plt, c, row, out)
        if p is not None:
            plots.append(p)
    p = bytes_plot(plt, c, c.rows, out)
    if p is not None:
        plots.append(p)
    return plots, []

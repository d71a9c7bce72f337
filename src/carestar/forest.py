"""Forest plots: one run's posterior by scale, and several runs' shared parameters side by side.

Each panel holds parameters on one scale (``carestar.figures.ForestPanel``): effects, with a
dashed line at 0, apart from probabilities, SDs and cutpoints, and its x label names the
scale. A fitted run records its model's panels in ``run.json`` (``forest_panels``), so that
``task=compare`` can draw the runs' shared parameters on the same panels without rebuilding
the models; a run without that record (older runs) gets one panel of its own.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from carestar.diagnostics import elements, is_mode_only, resolve
from carestar.figures import CI_LABEL, ForestPanel

MAX_FOREST_ROWS = 40
OTHER_PANEL = ForestPanel("Other shared parameters", ("*",), "value on each parameter's own scale")


def forest_figure(idata: xr.DataTree, panels: list[ForestPanel], title: str) -> Figure | None:
    """Posterior means with 50% and 90% equal-tailed intervals, one panel per scale.

    Variables with no elements (the effects of a nested model without predictors) are left
    out; None if nothing is left or the run is a point estimate."""
    if is_mode_only(idata):
        return None
    rows = [(panel, _forest_rows(idata, panel)) for panel in panels]
    rows = [(panel, [(label, {"": draws}) for label, draws in r]) for panel, r in rows if r]
    if not rows:
        return None
    fig = _draw(rows, [""])
    fig.suptitle(f"{title}\n(dot: posterior mean; thick: 50%, thin: {CI_LABEL})", fontsize="medium")
    return fig


def forest_figure_runs(trees: dict[str, xr.DataTree], var_names: list[str],
                       panels: dict[str, list[dict[str, Any]] | None], title: str) -> Figure | None:
    """Several runs' posteriors of the same variables, a colour per run, on the panels the
    runs recorded (``panels``: run label -> its ``run.json`` ``forest_panels``, None where
    absent). A variable goes to the first panel, in the runs' order, whose patterns match
    it; where the runs give that panel different scales (another link or family), the x
    label says so. None without variables or when every run is a point estimate."""
    trees = {label: tree for label, tree in trees.items() if not is_mode_only(tree)}
    if not var_names or not trees:
        return None
    rows = []
    for panel, names in _assign(var_names, {label: panels.get(label) for label in trees}):
        by_element: dict[str, dict[str, np.ndarray]] = {}
        for label, tree in trees.items():
            for name in names:
                for element, draws in _rows_of(tree.posterior[name], name, len(names)):
                    by_element.setdefault(element, {})[label] = draws
        rows.append((panel, list(by_element.items())[:MAX_FOREST_ROWS]))
    fig = _draw(rows, list(trees))
    fig.legend(handles=[Line2D([], [], color=f"C{i}", lw=3.5) for i in range(len(trees))], labels=list(trees),
               loc="outside lower center", ncols=min(len(trees), 3), fontsize="small", title="run")
    fig.suptitle(f"{title}\n(dot: posterior mean; thick: 50%, thin: {CI_LABEL})", fontsize="medium")
    return fig


def panels_record(panels: list[ForestPanel]) -> list[dict[str, Any]]:
    """The panels as ``run.json`` holds them."""
    return [{**dataclasses.asdict(p), "var_names": list(p.var_names)} for p in panels]


def _assign(var_names: list[str], recorded: dict[str, list[dict[str, Any]] | None]
            ) -> list[tuple[ForestPanel, list[str]]]:
    """(panel, its variables) for every panel that gets a variable, in the runs' order."""
    panels: dict[str, ForestPanel] = {}
    scales: dict[str, dict[str, str]] = {}
    for label, record in recorded.items():
        for entry in record or []:
            panels.setdefault(entry["title"], ForestPanel(entry["title"], tuple(entry["var_names"]),
                                                          entry["xlabel"], bool(entry["zero_line"])))
            scales.setdefault(entry["title"], {})[label] = entry["xlabel"]
    assigned: dict[str, list[str]] = {}
    for name in var_names:
        title = next((t for t, p in panels.items() if any(fnmatch.fnmatchcase(name, g) for g in p.var_names)),
                     OTHER_PANEL.title)
        assigned.setdefault(title, []).append(name)
    out = []
    for title, names in assigned.items():
        panel = panels.get(title, OTHER_PANEL)
        if len(set(scales.get(title, {}).values())) > 1:
            differ = "\n".join(f"{label}: {xlabel.splitlines()[0]}" for label, xlabel in scales[title].items())
            panel = dataclasses.replace(panel, xlabel=f"the runs' scales differ:\n{differ}")
        out.append((panel, names))
    return out


def _draw(rows: list[tuple[ForestPanel, list[tuple[str, dict[str, np.ndarray]]]]], runs: list[str]) -> Figure:
    """The panels: per element, one interval per run that has it, dodged vertically."""
    heights = [0.25 * len(r) * max(1, 0.6 * len(runs)) + 0.35 for _, r in rows]
    fig, axes = plt.subplots(len(rows), 1, figsize=(7.5, sum(heights) + 1.25 * len(rows) + 0.8 + 0.4 * (len(runs) > 1)),
                             height_ratios=heights, squeeze=False, layout="constrained")
    offsets = np.linspace(-0.25, 0.25, len(runs)) if len(runs) > 1 else [0.0]
    for ax, (panel, shown) in zip(axes[:, 0], rows):
        y = np.arange(len(shown))[::-1]
        for yi, (_, by_run) in zip(y, shown):
            for k, run in enumerate(runs):
                if run in by_run:
                    _interval(ax, by_run[run], yi - offsets[k], f"C{k}")
        if panel.zero_line:
            ax.axvline(0.0, color="0.25", lw=1.0, ls="--", zorder=1.5, gid="zero_line")
        ax.set_yticks(y, [label for label, _ in shown], fontsize="small")
        ax.set_ylim(-0.7, len(shown) - 0.3)
        ax.set_xlabel(panel.xlabel)
        ax.set_title(panel.title, fontsize="medium", loc="left")
        ax.grid(axis="x", color="0.92", lw=0.6)
        ax.set_axisbelow(True)
    return fig


def _interval(ax, draws: np.ndarray, y: float, colour: str) -> None:
    q05, q25, q75, q95 = np.quantile(draws, [0.05, 0.25, 0.75, 0.95])
    ax.plot([q05, q95], [y, y], color=colour, lw=1.2, solid_capstyle="butt")
    ax.plot([q25, q75], [y, y], color=colour, lw=3.5, solid_capstyle="butt")
    ax.plot([draws.mean()], [y], "o", color="white", mec=colour, ms=4.5, zorder=3)


def _forest_rows(idata: xr.DataTree, panel: ForestPanel) -> list[tuple[str, np.ndarray]]:
    """(label, draws) of every element of the panel's variables."""
    names = [n for n in resolve(idata, list(panel.var_names)) if idata.posterior[n].size]
    rows = [row for name in names for row in _rows_of(idata.posterior[name], name, len(names))]
    return rows[:MAX_FOREST_ROWS]


def _rows_of(da: xr.DataArray, name: str, n_names: int) -> list[tuple[str, np.ndarray]]:
    """(label, pooled draws) of each element; a variable's name is left off its elements'
    labels when it is the panel's only one and has several, and off the effects' (``beta``:
    the coordinates are the effects' names)."""
    parts = elements(da)
    return [(f"{name}[{label}]" if label != name and (n_names > 1 or len(parts) == 1) and name != "beta"
             else label, np.asarray(draws).ravel()) for label, draws in parts]

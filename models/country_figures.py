"""``model=country``'s Figure 3: prevalence of each micro-level measure by country, with 90%
intervals (the organisation effect integrated out) and the observed shares, grouped by kind."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from models.country_summaries import INTERVAL

COLOURS = ("tab:blue", "tab:orange")


def figure3(draws: xr.Dataset, design) -> Figure:
    """One row per measure (grouped by kind), one point and 90% interval per country, the
    observed share as an open marker."""
    measures = list(design.measure.levels)
    kinds = list(design.kind_of_measure) if design.kind_of_measure is not None else [""] * len(measures)
    order = sorted(range(len(measures)), key=lambda j: (list(dict.fromkeys(kinds)).index(kinds[j]), j))
    prev = draws["prevalence"].stack(sample=("chain", "draw")).transpose("country", "measure", "sample").values
    lo, hi = np.quantile(prev, INTERVAL, axis=-1)
    mean = prev.mean(axis=-1)
    observed = draws["observed"].values
    fig, ax = plt.subplots(figsize=(8.0, 1.2 + 0.42 * len(measures)))
    positions, labels, y = [], [], 0.0
    last_kind = None
    for j in order:
        if kinds[j] != last_kind and last_kind is not None:
            y += 0.8
            ax.axhline(y - 0.9, color="0.8", lw=0.8)
        if kinds[j] != last_kind and kinds[j]:
            ax.text(1.01, y, f"{kinds[j]}", transform=ax.get_yaxis_transform(), va="top", fontsize=9,
                    style="italic", color="0.3")
        last_kind = kinds[j]
        for c, country in enumerate(design.country.levels):
            yc = y + (c - 0.5) * 0.3
            ax.errorbar(mean[c, j], yc, xerr=[[mean[c, j] - lo[c, j]], [hi[c, j] - mean[c, j]]], fmt="o",
                        color=COLOURS[c % 2], ms=5, capsize=2, label=country if j == order[0] else None)
            ax.plot(observed[c, j], yc, marker="x", color=COLOURS[c % 2], ms=6, ls="none",
                    label=f"{country}: observed share" if j == order[0] else None)
        positions.append(y)
        labels.append(design.labels.get(measures[j], measures[j]))
        y += 1.0
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("share of organisations using the measure (organisation effect integrated out)")
    ax.set_title("Micro-level measures by country: posterior mean and 90% interval")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.5 / (1.2 + 0.42 * len(measures)) - 0.05), ncol=2,
              fontsize=8, frameon=False)
    return fig

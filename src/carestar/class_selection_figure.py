"""``class_selection.png``: the evidence on the number of latent classes, one panel each.

1. PSIS-LOO: each run's elpd minus the best one's (0 at the best), with the SE of that
   difference where the runs' pointwise log likelihoods give it (else each run's own elpd
   SE), and the band within one SE of the best: the one-SE rule picks the fewest classes
   inside it (``carestar.class_selection``);
2. BIC and AIC (lower is better), BIC's choice marked;
3. relative entropy (class separation, 1 = every organisation certain) and the smallest
   class share, with the 5% line below which a class is flagged.

Runs that failed their diagnostics are drawn hollow, in the colour of a failed gate; the
legend sits below the panels, clear of the data.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from carestar.figures import FAILED_COLOUR


def selection_figure(table: pd.DataFrame, picks: dict[str, Any], small_class: float) -> Figure:
    """The three panels of the class-selection evidence (see the module docstring)."""
    k = table["n_classes"].to_numpy(int)
    failed = ~(table["diagnostics_passed"].to_numpy(bool) | (table["sampler"] == "map").to_numpy(bool))
    fig, axes = plt.subplots(1, 3, figsize=(12.5, 4.0), layout="constrained")
    _loo_panel(axes[0], table, picks, failed)
    ax = axes[1]
    for column, marker, style, label in (("bic", "o", "-", "BIC"), ("aic", "s", "--", "AIC")):
        _series(ax, k, table[column].to_numpy(float), failed, marker=marker, ls=style, label=label)
    if picks["bic"] is not None:
        ax.axvline(picks["bic"], color="0.4", ls=":", lw=1.0, label=f"BIC's choice ({picks['bic']})")
    ax.set_title("Information criteria", fontsize="medium", loc="left")
    ax.set_ylabel("criterion (lower is better)")
    ax = axes[2]
    _series(ax, k, table["relative_entropy"].to_numpy(float), failed, marker="o", label="relative entropy")
    _series(ax, k, table["smallest_class_share"].to_numpy(float), failed, marker="s", ls="--",
            label="smallest class share")
    ax.axhline(small_class, color="0.4", ls=":", lw=0.8, label=f"{small_class:.0%} (a small class)")
    ax.set_ylim(0, 1.05)
    ax.set_title("Separation and class size", fontsize="medium", loc="left")
    ax.set_ylabel("relative entropy; share of organisations")
    for ax in axes:
        ax.set_xlabel("number of classes")
        ax.set_xticks(list(k))
        ax.grid(color="0.92", lw=0.6)
        ax.set_axisbelow(True)
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if failed.any():
        handles.append(Line2D([], [], marker="o", ls="none", mfc="white", mec=FAILED_COLOUR))
        labels.append("run failed its diagnostics")
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize="small",
               frameon=False)
    fig.suptitle("Choosing the number of latent classes", fontsize="medium")
    return fig


def _loo_panel(ax, table: pd.DataFrame, picks: dict[str, Any], failed: np.ndarray) -> None:
    k = table["n_classes"].to_numpy(int)
    ax.set_title("PSIS-LOO", fontsize="medium", loc="left")
    ax.set_ylabel("elpd minus the best elpd (higher is better)")
    if not table["elpd_loo"].notna().any():
        ax.text(0.5, 0.5, "no LOO in these runs\n(posterior mode: sampler=map)", ha="center", va="center",
                transform=ax.transAxes, color="0.3")
        return
    elpd = table["elpd_loo"].to_numpy(float)
    best = np.nanmax(elpd)
    if "elpd_diff_se" in table and table["elpd_diff_se"].notna().all():
        se, which = table["elpd_diff_se"].to_numpy(float), "SE of the difference from the best"
        band = float(np.nanmax(se))
    else:
        se, which = table["elpd_se"].to_numpy(float), "each run's elpd SE"
        band = float(se[np.nanargmax(elpd)])
    diff = elpd - best
    ax.axhspan(-band, 0.0, color="0.9", zorder=0, label="within one SE of the best")
    ax.errorbar(k, diff, yerr=se, color="C0", capsize=3, lw=1.2, ls="-", label=f"elpd ± {which}")
    _series(ax, k, diff, failed, marker="o", color="C0")
    if picks["loo"] is not None:
        ax.axvline(picks["loo"], color="0.4", ls=":", lw=1.0, label=f"LOO's choice ({picks['loo']}, one-SE rule)")


def _series(ax, k: np.ndarray, values: np.ndarray, failed: np.ndarray, *, marker: str, ls: str = "-",
            color: str | None = None, label: str | None = None) -> None:
    """A line through the runs, hollow markers in the failed colour for failed runs."""
    (line,) = ax.plot(k, values, marker=marker, ls=ls, color=color, label=label)
    if failed.any():
        ax.plot(k[failed], values[failed], marker=marker, ls="none", mfc="white", mec=FAILED_COLOUR, mew=1.5,
                zorder=3, gid="failed_run")

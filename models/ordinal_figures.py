"""Figures and tables of the ordinal model: the poster's Figure 1 and the rating PPC."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from carestar.design import RegressionDesign
from carestar.figures import CI_LABEL, legend_outside
from carestar.monotonic import average_contribution_draws
from carestar.priors import observation_counts
from carestar.study_design import LEVELS, STRATEGY_LEVELS
from models.ordinal_likelihood import category_probabilities

if TYPE_CHECKING:
    from models.ordinal import OrdinalModel

HERMITE_NODES = 20


def strategy_probabilities(
    model: "OrdinalModel", idata: xr.DataTree, design: RegressionDesign
) -> pd.DataFrame:
    """P(stars = k) in the figure year for a council of each strategy type, for the
    categories that year's rating regime awarded (``model.lowest_stars``: 1-3 stars from
    2006), so each type's rows sum to 1.

    Other predictors sit at their means (0 after standardisation; monotonic terms at their
    mean over the rows); in panel mode the
    organisation intercept is averaged over its population distribution
    (Gauss-Hermite quadrature), so these are population-averaged probabilities.
    """
    post = idata.posterior
    draws = post["beta"].stack(sample=("chain", "draw"))
    cut = post["cutpoints"].stack(sample=("chain", "draw")).values.T  # (S, K-1)
    year = model.year if model.year is not None else model.figure_year
    lowest = model.lowest_category(year)
    shift = np.zeros(cut.shape[0])
    if "year_effect" in post:
        shift = post["year_effect"].sel(year=str(year)).stack(sample=("chain", "draw")).values
    shift = shift + np.reshape(average_contribution_draws(post, design.monotonic, observation_counts(design)), -1)
    nodes, weights = np.polynomial.hermite_e.hermegauss(HERMITE_NODES)
    weights = weights / weights.sum()
    sds = [post[f"{level}_sd"].isel({f"{level}_coef": 0}).stack(sample=("chain", "draw")).values
           for level in LEVELS if f"{level}_sd" in post]
    org_sd = (np.zeros(cut.shape[0]) if not sds else sds[0] if len(sds) == 1  # as drawn, one level
              else np.sqrt(sum(sd**2 for sd in sds)))  # the SD of a council's whole intercept
    ref = model.reference.get("strategy_type", "defender")
    rows = []
    for level in STRATEGY_LEVELS:
        name = f"strategy_type[{level}]"
        effect = np.zeros(cut.shape[0]) if level == ref else draws.sel(effect=name).values
        eta = (effect + shift)[:, None] + org_sd[:, None] * nodes[None, :]  # (S, nodes)
        p = category_probabilities(model.link, eta, cut[:, None, :], lowest, model.family)  # (S, nodes, K)
        p = (p * weights[None, :, None]).sum(axis=1)
        rows += probability_rows(p, design.categories, lowest, year=year, strategy_type=level)
    return pd.DataFrame(rows)


def probability_rows(p: np.ndarray, categories, lowest: int, **keys) -> list[dict]:
    """Mean and 90% interval of each awarded category's probability (draws x categories)."""
    return [
        {**keys, "stars": category, "mean": p[:, k].mean(),
         "q05": np.quantile(p[:, k], 0.05), "q95": np.quantile(p[:, k], 0.95)}
        for k, category in enumerate(categories) if k >= lowest
    ]


def figure1(table: pd.DataFrame) -> Figure:
    """Predicted probability of each awarded star level (1, 2 and 3 stars from 2006) by
    strategy type, with 90% intervals: every category in ``table``, so the bars of a type
    add up to 1."""
    categories = list(dict.fromkeys(table["stars"]))
    levels = list(dict.fromkeys(table["strategy_type"]))
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(levels)
    for j, level in enumerate(levels):
        part = table[table["strategy_type"] == level].set_index("stars").loc[categories]
        x = np.arange(len(part)) + (j - (len(levels) - 1) / 2) * width
        ax.bar(x, part["mean"], width, label=level.capitalize(), alpha=0.85)
        ax.errorbar(
            x,
            part["mean"],
            yerr=[part["mean"] - part["q05"], part["q95"] - part["mean"]],
            fmt="none",
            color="black",
            capsize=2,
            lw=1,
        )
    ax.set_xticks(np.arange(len(categories)), [f"{c} star{'' if c == '1' else 's'}" for c in categories])
    ax.set_ylabel("predicted probability (population average)")
    ax.set_xlabel("star rating")
    ax.set_ylim(0, 1)
    ax.set_title(f"Figure 1: star rating in {table['year'].iloc[0]} by management strategy\n"
                 f"(bars: posterior mean; whiskers: {CI_LABEL})", fontsize="medium")
    legend_outside(ax, title="strategy type")
    return fig


def predicted_category_counts(idata: xr.DataTree, design: RegressionDesign, rows: np.ndarray) -> np.ndarray:
    """Replicated count of each category over the selected rows: (K, samples).

    A weighted row's ``w`` replicates are in ``<outcome>_counts`` (``OrdinalModel.pointwise``);
    an unweighted row's one replicate in ``<outcome>``.
    """
    pp = idata.posterior_predictive
    K = len(design.categories)
    counts = f"{design.outcome}_counts"
    if counts in pp:
        c = pp[counts].stack(sample=("chain", "draw")).transpose("obs", "category", "sample").values
        return c[rows].sum(axis=0)
    predicted = pp[design.outcome].stack(sample=("chain", "draw")).values  # (obs, samples)
    return np.stack([(predicted[rows] == k).sum(axis=0) for k in range(K)])


def category_counts_check(idata: xr.DataTree, design: RegressionDesign) -> Figure:
    """Observed counts per category (per year, for the study) against predictive 90% intervals.

    Frequency weights count: a pattern row with weight w adds w to its observed category and
    w independent replicates to the predicted counts.
    """
    by_year = design.rows is not None and "year" in design.rows
    groups = sorted(design.rows["year"].unique()) if by_year else ["all rows"]
    weights = np.ones(design.n) if design.weights is None else np.asarray(design.weights, float)
    K = len(design.categories)
    fig, axes = plt.subplots(1, len(groups), figsize=(max(2.1 * len(groups), 4), 3), sharey=True, squeeze=False)
    for ax, group in zip(axes[0], groups):
        rows = (design.rows["year"] == group).to_numpy() if by_year else np.ones(design.n, bool)
        counts = predicted_category_counts(idata, design, rows)
        observed_counts = np.bincount(design.y[rows], weights=weights[rows], minlength=K)
        lo, mid, hi = np.quantile(counts, [0.05, 0.5, 0.95], axis=1)
        ax.bar(np.arange(K), observed_counts, color="0.8", label="observed")
        ax.errorbar(np.arange(K), mid, yerr=[mid - lo, hi - mid], fmt="o", color="C3", ms=3,
                    label=f"predicted: median, {CI_LABEL}")
        ax.set_title(str(group))
        ax.set_xticks(np.arange(K), design.categories)
        ax.set_xlabel(design.outcome)
    axes[0][0].set_ylabel("count" if design.weights is None else "count (frequency weights)")
    legend_outside(axes[0][-1], fontsize="small")
    counted = "star" if design.outcome == "stars" else design.outcome
    fig.suptitle(f"Posterior predictive check: {counted} counts" + (" per year" if by_year else ""),
                 fontsize="medium")
    return fig


def has_strategy(design: RegressionDesign) -> bool:
    return any(name.startswith("strategy_type[") for name in design.effects)


def draw_all(model: "OrdinalModel", idata: xr.DataTree, design: RegressionDesign) -> dict[str, Figure]:
    figures = {}
    if "posterior_predictive" in idata.children:
        name = "ppc_star_counts" if design.outcome == "stars" else "ppc_category_counts"
        figures[name] = category_counts_check(idata, design)
    if has_strategy(design):
        figures["figure1_strategy"] = figure1(strategy_probabilities(model, idata, design))
    return figures

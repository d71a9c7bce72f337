"""``model=country model.figure4=true``: the poster's Figure 4, performance measurement in
England, Northern Ireland and Japan, as a figure and as a markdown table.

Panel (a) is the study's ``country_comparison`` table (documentary evidence), one column per
country; Japan's column is documents and managers' views only, the study having surveyed no
Japanese organisation, and the figure says so. Panels (b) and (c) are what the survey lets
``model=country`` estimate for the two surveyed countries
(``country_summaries.kind_estimates``): each country's share of organisations using a
micro-level measure of each kind, and the second country - reference difference of that
share, with 90% intervals (and the synthetic study's truth where there is one).
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

COLOURS = ("tab:blue", "tab:orange")
DOCUMENTARY = "Japan"
NOTE = ("Japan: documentary evidence only (documents and managers' views); the study surveyed "
        "no Japanese organisation, so there are no estimates for Japan")
KIND_LABELS = {"national": "nationally required", "internal": "internal management"}
ORGANISATIONS = {"England": "councils", "Northern Ireland": "trusts"}


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


def country_heading(country: str, n_orgs: dict[str, int]) -> str:
    """A column's heading: who was surveyed, or that the column is documents only."""
    if country in n_orgs:
        return f"{country}\n(survey: {n_orgs[country]} {ORGANISATIONS.get(country, 'organisations')})"
    return f"{country}\n(documents only, no survey)"


def surveyed(design) -> dict[str, int]:
    """Country -> how many of its organisations the design has."""
    counts = np.bincount(design.country.codes[np.unique(design.org.codes, return_index=True)[1]],
                         minlength=len(design.country.levels))
    return {str(c): int(n) for c, n in zip(design.country.levels, counts)}


def figure4(comparison: pd.DataFrame, estimates: pd.DataFrame, n_orgs: dict[str, int]) -> Figure:
    """(a) the documentary grid, Japan's column shaded and noted; (b) share using per kind
    and country; (c) the difference per kind, the internal-management one the poster's."""
    countries = [c for c in comparison.columns if c != "dimension"]
    fig = plt.figure(figsize=(11.0, 10.0), layout="constrained")
    grid = fig.add_gridspec(2, 2, height_ratios=[2.3, 1.0])
    _draw_grid(fig.add_subplot(grid[0, :]), comparison, countries, n_orgs)
    has_truth = bool(estimates["truth"].notna().any())
    _draw_shares(fig.add_subplot(grid[1, 0]), estimates)
    _draw_differences(fig.add_subplot(grid[1, 1]), estimates)
    surveyed_countries = list(estimates.loc[estimates["quantity"] == "share using", "country"].unique())
    handles = [Line2D([], [], color=COLOURS[i % 2], marker="o", label=c) for i, c in enumerate(surveyed_countries)]
    handles.append(Line2D([], [], color="black", marker="s", label=estimates.loc[
        estimates["quantity"] == "difference", "country"].iloc[0]))
    if has_truth:
        handles.append(Line2D([], [], color="black", marker="D", mfc="white", ls="none",
                              label="synthetic study's truth"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize=9)
    fig.suptitle("Figure 4: performance measurement in England, Northern Ireland and Japan")
    return fig


def _draw_grid(ax, comparison: pd.DataFrame, countries: list[str], n_orgs: dict[str, int]) -> None:
    n = len(comparison)
    for j, country in enumerate(countries):
        if country not in n_orgs:
            ax.axvspan(j, j + 1, color="0.9", zorder=0, hatch="//", ec="0.8", lw=0)
        for i, text in enumerate(comparison[country].astype(str)):
            ax.text(j + 0.5, i + 0.5, textwrap.fill(text, 36), ha="center", va="center", fontsize=8.5,
                    style="italic" if country not in n_orgs else "normal")
    ax.hlines(np.arange(n + 1), 0, len(countries), color="0.6", lw=0.6)
    ax.vlines(np.arange(len(countries) + 1), 0, n, color="0.6", lw=0.6)
    ax.set_xlim(0, len(countries))
    ax.set_ylim(n, 0)
    ax.xaxis.tick_top()
    ax.set_xticks(np.arange(len(countries)) + 0.5, [country_heading(c, n_orgs) for c in countries])
    ax.set_yticks(np.arange(n) + 0.5, [textwrap.fill(str(d), 16) for d in comparison["dimension"]])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel(textwrap.fill(NOTE, 120), color="darkred", fontsize=9.5)
    ax.set_title("(a) The study's country comparison (documentary evidence)", loc="left")


def _kind_rows(estimates: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(estimates["kind"]))


def _interval(ax, row, y: float, colour: str, marker: str) -> None:
    ax.errorbar(row["mean"], y, xerr=[[row["mean"] - row["q05"]], [row["q95"] - row["mean"]]], fmt=marker,
                color=colour, ms=6, capsize=3)
    if np.isfinite(row["truth"]):
        ax.plot(row["truth"], y, marker="D", color=colour, mfc="white", ms=6, ls="none", zorder=3)


def _draw_shares(ax, estimates: pd.DataFrame) -> None:
    kinds = _kind_rows(estimates)
    shares = estimates[estimates["quantity"] == "share using"]
    for c, country in enumerate(dict.fromkeys(shares["country"])):
        for k, kind in enumerate(kinds):
            row = shares[(shares["country"] == country) & (shares["kind"] == kind)].iloc[0]
            _interval(ax, row, k + (c - 0.5) * 0.3, COLOURS[c % 2], "o")
    ax.set_yticks(range(len(kinds)), [textwrap.fill(kind_label(k), 12) for k in kinds])
    ax.set_ylim(len(kinds) - 0.5, -0.5)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of organisations using a measure of the kind\n(mean over its measures; "
                  "organisation effect integrated out)")
    ax.set_title("(b) Micro-level measures used: posterior mean, 90% interval", loc="left", fontsize=10)


def _draw_differences(ax, estimates: pd.DataFrame) -> None:
    kinds = _kind_rows(estimates)
    diffs = estimates[estimates["quantity"] == "difference"]
    ax.axvline(0.0, color="0.5", ls="--", lw=0.8, gid="zero_line")
    for k, kind in enumerate(kinds):
        row = diffs[diffs["kind"] == kind].iloc[0]
        _interval(ax, row, k, "black", "s")
        ax.annotate(f"{row['mean']:+.2f} [{row['q05']:+.2f}, {row['q95']:+.2f}]", (row["q95"], k),
                    xytext=(6, 0), textcoords="offset points", va="center", fontsize=8.5)
    low = min(-0.1, float(diffs["q05"].min()) - 0.05)
    ax.set_xlim(low, max(0.1, float(diffs["q95"].max())) + 0.3)
    ax.set_yticks(range(len(kinds)), [textwrap.fill(kind_label(k), 12) for k in kinds])
    ax.set_ylim(len(kinds) - 0.5, -0.5)
    ax.set_xlabel(f"{diffs['country'].iloc[0]}: difference in share\n(probability scale)")
    ax.set_title("(c) Country difference: posterior mean, 90% interval", loc="left", fontsize=10)


def markdown(comparison: pd.DataFrame, estimates: pd.DataFrame, n_orgs: dict[str, int]) -> str:
    """``tables/figure4_countries.md``: the grid, the note on Japan and the estimates."""
    countries = [c for c in comparison.columns if c != "dimension"]
    heads = [country_heading(c, n_orgs).replace("\n", " ") for c in countries]
    lines = ["# Figure 4: performance measurement in England, Northern Ireland and Japan", "",
             "The study's country comparison (documentary evidence).", "", f"**{NOTE}.**", "",
             "| dimension | " + " | ".join(heads) + " |", "|---" * (len(countries) + 1) + "|"]
    for _, row in comparison.iterrows():
        lines.append("| " + " | ".join(_cell(row[c]) for c in ["dimension", *countries]) + " |")
    has_truth = bool(estimates["truth"].notna().any())
    lines += ["", "## Estimated from the survey (`model=country`)", "",
              "Share using: the share of a country's organisations using a micro-level measure of the kind "
              "(the mean over its measures, organisation effect integrated out); difference: of that share, "
              "on the probability scale. Posterior mean and 90% interval"
              + ("; truth: the synthetic study's." if has_truth else "."), "",
              "| quantity | country | kind | mean | 90% interval |" + (" truth |" if has_truth else ""),
              "|---|---|---|---|---|" + ("---|" if has_truth else "")]
    for _, r in estimates.iterrows():
        sign = "+" if r["quantity"] == "difference" else ""
        line = (f"| {r['quantity']} | {r['country']} | {kind_label(r['kind'])} | {r['mean']:{sign}.3f} | "
                f"[{r['q05']:{sign}.3f}, {r['q95']:{sign}.3f}] |")
        if has_truth:
            line += f" {r['truth']:{sign}.3f} |" if np.isfinite(r["truth"]) else " |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")

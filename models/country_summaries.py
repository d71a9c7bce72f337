"""``model=country``'s quantities from the draws: prevalence by country and measure (the
organisation effect integrated out), differences by measure and by kind, the tables, the
recovery of the synthetic truth and the report section (definitions in ``models/country.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from carestar.design import RegressionDesign
from carestar.likelihood import linear_predictor_draws
from carestar.micro_measures import prevalence

INTERVAL = (0.05, 0.95)  # 90% intervals


def _subset(design: RegressionDesign, idx: np.ndarray) -> RegressionDesign:
    """The design's rows ``idx`` (what the linear predictor needs)."""
    from dataclasses import replace

    groups = tuple(replace(t, group=replace(t.group, codes=t.group.codes[idx]),
                           slopes=None if t.slopes is None else t.slopes.iloc[idx].reset_index(drop=True))
                   for t in design.groups)
    return replace(design, y=np.asarray(design.y)[idx], X=design.X.iloc[idx].reset_index(drop=True),
                   groups=groups, trials=None, weights=None, rows=None)


def prevalence_draws(post: xr.Dataset, design) -> xr.Dataset:
    """``prevalence`` (chain, draw, country, measure): each cell's rows' mean of
    ``E_u[logistic(eta_r + u)]``; ``observed``: the cell's share of 1s (weights counted)."""
    from models.country import org_sd_draws, without_org

    fixed = without_org(design)
    cell = design.country.codes * len(design.measure.levels) + design.measure.codes
    signature = np.column_stack([cell, fixed.X.to_numpy(float)]
                                + [t.group.codes for t in fixed.groups]
                                + [t.slopes.to_numpy(float) for t in fixed.groups if t.slopes is not None])
    unique, first, inverse = np.unique(signature, axis=0, return_index=True, return_inverse=True)
    weights = np.ones(design.n) if design.weights is None else np.asarray(design.weights, float)
    eta = linear_predictor_draws(post, _subset(fixed, first))  # (chain, draw, unique rows)
    p = prevalence(eta, org_sd_draws(post)[..., None])
    n_cells = len(design.country.levels) * len(design.measure.levels)
    mass = np.bincount(inverse.ravel(), weights, minlength=len(first))
    cell_of = unique[:, 0].astype(int)
    total = np.bincount(cell_of, mass, minlength=n_cells)
    by_cell = np.zeros(p.shape[:2] + (n_cells,))
    np.add.at(by_cell, (slice(None), slice(None), cell_of), p * mass)
    by_cell /= np.where(total > 0, total, np.nan)
    n = np.ones(design.n) if design.trials is None else np.asarray(design.trials, float)
    used = np.bincount(cell, weights * np.asarray(design.y, float), minlength=n_cells)
    tried = np.bincount(cell, weights * n, minlength=n_cells)
    shape = (len(design.country.levels), len(design.measure.levels))
    coords = {"chain": post["chain"].values, "draw": post["draw"].values,
              "country": list(design.country.levels), "measure": list(design.measure.levels)}
    return xr.Dataset({
        "prevalence": (("chain", "draw", "country", "measure"), by_cell.reshape(p.shape[:2] + shape)),
        "observed": (("country", "measure"), (used / np.where(tried > 0, tried, np.nan)).reshape(shape)),
    }, coords=coords)


def differences(draws: xr.Dataset, design) -> dict[tuple[str, str], xr.DataArray]:
    """(level, name) -> (chain, draw) draws of second country - first: per measure, per
    kind (the mean over its measures) and over all measures."""
    diff = draws["prevalence"].isel(country=1) - draws["prevalence"].isel(country=0)
    out = {("measure", str(m)): diff.sel(measure=m) for m in diff["measure"].values}
    if design.kind_of_measure is not None:
        kinds = np.asarray(design.kind_of_measure)
        for k in dict.fromkeys(design.kind_of_measure):
            out[("kind", k)] = diff.isel(measure=np.flatnonzero(kinds == k)).mean("measure")
    out[("all", "all measures")] = diff.mean("measure")
    return out


def _summary(values: np.ndarray) -> dict[str, float]:
    flat = np.asarray(values).ravel()
    return {"mean": float(flat.mean()), "q05": float(np.quantile(flat, INTERVAL[0])),
            "q95": float(np.quantile(flat, INTERVAL[1]))}


def difference_table(draws: xr.Dataset, design) -> pd.DataFrame:
    """Per measure, kind and overall: the difference on the probability scale (second
    country - reference), its 90% interval and P(second > reference)."""
    first, second = design.country.levels
    kinds = dict(zip(design.measure.levels, design.kind_of_measure or [""] * len(design.measure.levels)))
    rows = []
    for (level, name), d in differences(draws, design).items():
        s = _summary(d.values)
        rows.append({"level": level, "name": name, "kind": kinds.get(name, name if level == "kind" else ""),
                     "difference": s["mean"], "q05": s["q05"], "q95": s["q95"],
                     f"P({second} > {first})": float((d.values > 0).mean())})
    return pd.DataFrame(rows)


def prevalence_table(draws: xr.Dataset, design) -> pd.DataFrame:
    """Per country and measure: posterior mean prevalence, 90% interval, observed share."""
    rows = []
    for c in draws["country"].values:
        for m in draws["measure"].values:
            s = _summary(draws["prevalence"].sel(country=c, measure=m).values)
            rows.append({"country": str(c), "measure": str(m), "label": design.labels.get(str(m), str(m)),
                         "prevalence": s["mean"], "q05": s["q05"], "q95": s["q95"],
                         "observed": float(draws["observed"].sel(country=c, measure=m))})
    return pd.DataFrame(rows)


def recovery(draws: xr.Dataset, design) -> dict[str, Any]:
    """The synthetic truth's differences by kind and by measure against their 90% intervals."""
    table = difference_table(draws, design).set_index(["level", "name"])
    out: dict[str, Any] = {}
    for level, key in (("kind", "difference_by_kind"), ("measure", "difference_by_measure")):
        truth = design.truth.get(key, {})
        rows = {name: {"truth": float(t), "mean": float(table.loc[(level, name), "difference"]),
                       "q05": float(table.loc[(level, name), "q05"]), "q95": float(table.loc[(level, name), "q95"])}
                for name, t in truth.items() if (level, name) in table.index}
        for r in rows.values():
            r["inside_90"] = bool(r["q05"] <= r["truth"] <= r["q95"])
        out[level] = rows
    out["measures_inside_90"] = sum(r["inside_90"] for r in out["measure"].values())
    return out


def report_section(draws: xr.Dataset, design) -> str:
    first, second = design.country.levels
    table = difference_table(draws, design)
    truth = design.truth or {}
    lines = ["## Micro-level measures by country (Figure 3)", "",
             f"Prevalence = the share of a country's organisations using a measure, the organisation "
             f"effect integrated out; difference = {second} - {first} on the probability scale, posterior "
             "mean and 90% interval. `tables/country_differences.csv` has every measure.", "",
             f"| level | name | difference | 90% interval | P({second} > {first}) |"
             + (" truth |" if truth else ""), "|---|---|---|---|---|" + ("---|" if truth else "")]
    p_col = f"P({second} > {first})"
    known = {"kind": truth.get("difference_by_kind", {}), "measure": truth.get("difference_by_measure", {})}
    for _, r in table.iterrows():
        level, name = r["level"], r["name"]
        if level == "measure" and len(design.measure.levels) > 20:
            continue
        true = known.get(level, {}).get(name)
        line = (f"| {level} | {name} | {r['difference']:+.3f} | [{r['q05']:+.3f}, {r['q95']:+.3f}] | "
                f"{r[p_col]:.3f} |")
        if truth:
            line += f" {true:+.3f} |" if true is not None else " |"
        lines.append(line)
    lines += ["", "![Figure 3](figures/figure3_micro_measures.png)"]
    return "\n".join(lines) + "\n"


def kind_groups(design) -> dict[str, np.ndarray]:
    """Kind -> the indices of its measures (``{"all measures": every one}`` without kinds)."""
    if design.kind_of_measure is None:
        return {"all measures": np.arange(len(design.measure.levels))}
    kinds = np.asarray(design.kind_of_measure)
    return {k: np.flatnonzero(kinds == k) for k in dict.fromkeys(design.kind_of_measure)}


def kind_estimates(draws: xr.Dataset, design) -> pd.DataFrame:
    """Figure 4's quantities: per kind, each country's share of organisations using a
    measure of that kind (the mean of its measures' prevalences) and the second country -
    reference difference of that share, with 90% intervals and, for a synthetic study, the
    truth (the same means of the truth's prevalences)."""
    first, second = (str(c) for c in design.country.levels)
    truth = design.truth or {}
    measures = list(design.measure.levels)
    diffs = differences(draws, design)
    rows = []
    for kind, idx in kind_groups(design).items():
        for country in (first, second):
            share = draws["prevalence"].sel(country=country).isel(measure=idx).mean("measure")
            true = truth.get("prevalence", {}).get(country)
            rows.append({"quantity": "share using", "country": country, "kind": kind, **_summary(share.values),
                         "truth": float(np.mean([true[measures[j]] for j in idx])) if true else np.nan})
        d = diffs[("kind", kind) if design.kind_of_measure is not None else ("all", "all measures")]
        true_d = (truth.get("difference_by_kind", {}).get(kind) if design.kind_of_measure is not None
                  else (np.mean(list(truth["difference_by_measure"].values())) if truth else None))
        rows.append({"quantity": "difference", "country": f"{second} - {first}", "kind": kind,
                     **_summary(d.values), "truth": np.nan if true_d is None else float(true_d),
                     f"P({second} > {first})": float((d.values > 0).mean())})
    return pd.DataFrame(rows)

"""Every ArviZ call in carestar: summaries, convergence gates, LOO, comparison, rank and PIT plots.

Keeping ArviZ behind this one module means an ArviZ upgrade touches one file.
"""

from __future__ import annotations

import fnmatch
import logging
import warnings
from pathlib import Path
from typing import Any

import arviz as az
import arviz_plots as azp
import numpy as np
import pandas as pd
import xarray as xr

from carestar.figures import save_figure

CI_PROB = 0.9
log = logging.getLogger("carestar")


def resolve(idata: xr.DataTree, patterns: list[str] | None) -> list[str]:
    """Posterior variable names matching ``patterns`` (globs); all when None."""
    names = list(idata.posterior.data_vars)
    if patterns is None:
        return names
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def summary(idata: xr.DataTree, var_names: list[str] | None = None) -> pd.DataFrame:
    """Posterior summary with 90% equal-tailed intervals, r_hat and ESS."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = az.summary(idata, var_names=var_names, ci_prob=CI_PROB, ci_kind="eti", round_to="none")
    table.index.name = "parameter"
    return table


def is_mode_only(idata: xr.DataTree) -> bool:
    return idata.posterior.sizes.get("draw", 0) < 4


def convergence(
    idata: xr.DataTree, var_names: list[str], thresholds: dict[str, float]
) -> dict[str, Any]:
    """The convergence gates: each check's value, its threshold and whether it passes."""
    if is_mode_only(idata):
        return {"passed": True, "checks": {}, "note": "a point estimate (sampler=map or mle): no MCMC diagnostics"}
    post = idata.posterior.to_dataset()[var_names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rhat = az.rhat(post)
        ess_bulk = az.ess(post, method="bulk")
        ess_tail = az.ess(post, method="tail")
        bfmi = np.asarray(az.bfmi(idata).to_dataset()["energy"]).ravel()
    stats = idata.sample_stats
    divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
    values = {
        "max_rhat": _extreme(rhat, max),
        "min_ess_bulk": _extreme(ess_bulk, min),
        "min_ess_tail": _extreme(ess_tail, min),
        "divergences": divergences,
        "min_bfmi": float(np.nanmin(bfmi)),
    }
    checks = {
        "max_rhat": values["max_rhat"] <= thresholds["max_rhat"],
        "min_ess_bulk": values["min_ess_bulk"] >= thresholds["min_ess_bulk"],
        "min_ess_tail": values["min_ess_tail"] >= thresholds["min_ess_tail"],
        "divergences": values["divergences"] <= thresholds["max_divergences"],
        "min_bfmi": values["min_bfmi"] >= thresholds["min_bfmi"],
    }
    worst = {
        "max_rhat": _argextreme(rhat, max),
        "min_ess_bulk": _argextreme(ess_bulk, min),
        "min_ess_tail": _argextreme(ess_tail, min),
    }
    # r_hat and ESS are NaN for draws that never change (a quantity the model fixes): left
    # out of the extremes, named once; if nothing is left the value is NaN and the gate fails
    undefined = [name for name, v in rhat.data_vars.items() if not np.isfinite(np.asarray(v, float)).any()]
    if undefined:
        log.info("r_hat and ESS are undefined for %s (its draws do not vary: fixed by the model); "
                 "left out of the convergence gates", ", ".join(undefined))
    return {
        "passed": bool(all(checks.values())),
        **({"undefined": undefined} if undefined else {}),
        "checks": {
            name: {
                "value": values[name],
                "threshold": thresholds[_threshold_key(name)],
                "passed": bool(ok),
                **({"worst": worst[name]} if name in worst else {}),
            }
            for name, ok in checks.items()
        },
    }


def _threshold_key(check: str) -> str:
    return "max_divergences" if check == "divergences" else check


def _finite_extreme(v, pick) -> float:
    """max / min of the finite values of ``v``; NaN when there are none (without numpy's
    "All-NaN axis encountered" warning)."""
    a = np.asarray(v, dtype=float).ravel()
    a = a[np.isfinite(a)]
    return float(pick(a)) if a.size else float("nan")


def _extreme(ds: xr.Dataset, pick) -> float:
    values = [x for v in ds.data_vars.values() if np.isfinite(x := _finite_extreme(v, pick))]
    return float(pick(values)) if values else float("nan")


def _argextreme(ds: xr.Dataset, pick) -> str:
    best_name, best = "", None
    for name, v in ds.data_vars.items():
        value = _finite_extreme(v, pick)
        if np.isfinite(value) and (best is None or pick(value, best) == value):
            best_name, best = name, value
    return best_name


def loo(idata: xr.DataTree, pareto_k_max: float = 0.7, moment_matching=None, max_matched: int = 10
        ) -> dict[str, Any] | None:
    """PSIS-LOO: elpd, its SE, p_loo, and the Pareto k gate (``diagnostics.max_pareto_k``):
    the observations whose k exceeds it (``high_k_obs``, positions), for which the LOO
    estimate is unreliable.

    ``moment_matching``: a callable giving the model's ``carestar.moment_matching.MomentMatching``;
    when some k exceeds the gate, ArviZ's ``loo_moment_match`` (Paananen et al. 2021) moves
    the draws towards those units' leave-one-out posteriors and the gate reads the new k.
    ``moment_matched`` then lists each such unit's k before and after, and its new elpd. With
    more than ``max_matched`` such units (each costs a few passes over the draws) none is
    matched: so many means the model fits those units badly, and PSIS-LOO is the wrong tool
    for it (``moment_matching_skipped`` says how many). A model that gives no
    ``MomentMatching`` (None) leaves its k as PSIS gave it."""
    if "log_likelihood" not in idata.children or is_mode_only(idata):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = az.loo(idata, pointwise=True)
    k_before = np.asarray(result.pareto_k).ravel()
    matched, skipped, inputs = None, None, None
    n_high = int(np.sum(~(k_before <= pareto_k_max)))
    if moment_matching is not None and n_high > max_matched:
        skipped = f"{n_high} units above the gate, more than diagnostics.max_moment_matched={max_matched}"
        log.info("PSIS-LOO: %s: not moment-matched", skipped)
    elif moment_matching is not None and n_high:
        inputs = moment_matching()
    if inputs is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = az.loo_moment_match(
                idata, result, log_prob_upars_fn=inputs.log_prob, log_lik_i_upars_fn=inputs.log_lik_i,
                upars=inputs.upars, k_threshold=pareto_k_max, pointwise=True)
        k_after, elpd_i = np.asarray(result.pareto_k).ravel(), np.asarray(result.elpd_i).ravel()
        matched = [{"obs": int(i), "k_before": float(k_before[i]), "k_after": float(k_after[i]),
                    "elpd_i": float(elpd_i[i])} for i in np.flatnonzero(~(k_before <= pareto_k_max))]
    k = np.asarray(result.pareto_k).ravel()
    high = np.flatnonzero(~(k <= pareto_k_max))  # NaN k counts as unreliable
    out = {
        "elpd_loo": float(result.elpd),
        "se": float(result.se),
        "p_loo": float(result.p),
        "max_pareto_k": float(np.nanmax(k)),
        "n_pareto_k_high": int(high.size),
        "pareto_k_threshold": pareto_k_max,
        "high_k_obs": [int(i) for i in high],
        "passed": bool(high.size == 0),
    }
    if matched is not None:
        out["moment_matched"] = matched
    if skipped is not None:
        out["moment_matching_skipped"] = skipped
    return out


def moment_matched_line(loo: dict[str, Any] | None) -> str | None:
    """One sentence on the units whose Pareto k moment matching moved, for the verdict and report.md."""
    if loo and loo.get("moment_matching_skipped"):
        return f"PSIS-LOO moment matching skipped: {loo['moment_matching_skipped']}"
    if not loo or not loo.get("moment_matched"):
        return None
    units = ", ".join(f"{m.get('name', m['obs'])} {m['k_before']:.2f} -> {m['k_after']:.2f}"
                      for m in loo["moment_matched"][:20])
    more = " ..." if len(loo["moment_matched"]) > 20 else ""
    return f"PSIS-LOO moment matching (Pareto k before -> after): {units}{more}"


def gate_lines(diagnostics: dict[str, Any]) -> list[tuple[str, float, float, bool]]:
    """Every gate of a run's verdict, from its ``diagnostics.json`` content: (name, value,
    threshold, passed) for each convergence check and the Pareto k of PSIS-LOO. The printed
    verdict and report.md both list these, so the three agree."""
    lines = [(name, c["value"], c["threshold"], c["passed"])
             for name, c in diagnostics["convergence"].get("checks", {}).items()]
    if loo := diagnostics.get("loo"):
        lines.append(("max_pareto_k", loo["max_pareto_k"], loo["pareto_k_threshold"], loo["passed"]))
    return lines


def elements(da: xr.DataArray) -> list[tuple[str, xr.DataArray]]:
    """Each element of a posterior variable: its coordinate label and its (chain, draw)
    draws, in the order of the variable's values (C order)."""
    other = [d for d in da.dims if d not in ("chain", "draw")]
    if not other:
        return [(str(da.name), da)]
    flat = da.stack(__element__=other).transpose("__element__", ...)
    return [(", ".join(str(flat[d].values[i]) for d in other),
             flat.isel(__element__=i).drop_vars(["__element__", *other], errors="ignore"))
            for i in range(flat.sizes["__element__"])]


MAX_RANK_PANELS = 8


def rank_figure(idata: xr.DataTree, var_names: list[str]):
    """Rank plots of the monitored parameters (``arviz_plots.plot_rank``: each chain's
    fractional-rank ECDF minus the uniform CDF; chains that sample the same posterior stay
    near 0): the ``MAX_RANK_PANELS`` elements with the largest r_hat, worst first, each
    panel with the multi-chain uniformity test's p-value. None for a point estimate."""
    if is_mode_only(idata) or not var_names:
        return None
    post = idata.posterior.to_dataset()[var_names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rhat = az.rhat(post)
    scored = []
    for name in var_names:
        for (label, draws), r in zip(elements(post[name]), np.asarray(rhat[name]).ravel()):
            key = name if label == name else f"{name}[{label}]"
            scored.append((-np.nan_to_num(float(r), nan=np.inf), key, draws))
    scored.sort(key=lambda t: t[0])
    data = {key: draws for _, key, draws in scored[:MAX_RANK_PANELS]}
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset(data)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pc = azp.plot_rank(tree, backend="matplotlib", col_wrap=4)
    fig = pc.get_viz("figure")
    n_all = len(scored)
    fig.set_size_inches(12, 2.6 * int(np.ceil(len(data) / 4)) + 0.9)
    for ax in fig.axes:
        ax.set_xlabel("fractional rank")
        ax.set_ylabel("ECDF − uniform")
        ax.axhline(0.0, color="0.6", lw=0.6, zorder=0)
    fig.suptitle(f"Rank plots per chain: the {len(data)} parameter(s) with the largest r_hat of {n_all} "
                 "monitored\n(near 0: the chains agree; p: multi-chain uniformity test at level alpha, "
                 "the points that make it fail highlighted)", fontsize="medium")
    return fig


def loo_pit_figure(idata: xr.DataTree):
    """LOO-PIT calibration (``arviz_plots.plot_loo_pit``): the ECDF of each observation's
    leave-one-out probability integral transform minus the uniform CDF, for an observed
    variable with a pointwise log likelihood and posterior predictive draws (a calibrated
    model stays near 0). None when the run has no such variable, or is a point estimate."""
    if is_mode_only(idata) or not {"log_likelihood", "posterior_predictive", "observed_data"} <= set(idata.children):
        return None
    shared = [n for n in idata.log_likelihood.data_vars
              if n in idata.posterior_predictive.data_vars and n in idata.observed_data.data_vars
              and idata.observed_data[n].dims == idata.log_likelihood[n].dims[2:]]
    if not shared:
        return None
    name = shared[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pc = azp.plot_loo_pit(idata, var_names=[name], backend="matplotlib")
    fig = pc.get_viz("figure")
    fig.set_size_inches(7, 3.6)
    for ax in fig.axes:
        ax.set_xlabel("LOO-PIT value")
        ax.set_ylabel("ECDF − uniform CDF")
        ax.set_title(f"{name}: LOO-PIT calibration", fontsize="medium")
    fig.suptitle("Leave-one-out predictive calibration (near 0: calibrated;\np: uniformity test at level "
                 "alpha, the points that make it fail highlighted)", fontsize="medium")
    return fig


# --- comparing runs (carestar.compare) -------------------------------------------------


def loo_pointwise(idata: xr.DataTree, var_name: str | None = None, moment_matched: list | None = None):
    """PSIS-LOO with pointwise values (an ArviZ ``ELPDData``), for ``compare_loo``.

    ``moment_matched``: the run's own ``loo.moment_matched`` records (``diagnostics.json``);
    those units take the elpd and k their run's moment matching gave, and the totals are
    summed again as ``arviz_stats.loo_moment_match`` sums them, so that a comparison reads
    the LOO the run was judged by."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = az.loo(idata, pointwise=True, var_name=var_name)
    if moment_matched:
        lpd = result.elpd + result.p
        for unit in moment_matched:
            np.put(result.elpd_i.values, unit["obs"], unit["elpd_i"])
            np.put(result.pareto_k.values, unit["obs"], unit["k_after"])
        result.elpd = float(np.nansum(result.elpd_i.values))
        result.se = float(np.sqrt(result.n_data_points * np.nanvar(result.elpd_i.values, ddof=1)))
        result.p = lpd - result.elpd
    return result


def compare_loo(elpds: dict[str, Any], pareto_k_max: float = 0.7) -> pd.DataFrame:
    """LOO comparison of runs fitted to the same data, best first, with stacking weights.

    ``elpds`` maps run labels to ``loo_pointwise`` results. Columns: ``rank`` (0 is best),
    ``elpd_loo`` and its ``se``, ``elpd_diff`` from the best run and its SE ``dse``,
    ``p_worse`` (normal approximation), ``weight`` (stacking), ``p_loo``,
    ``n_pareto_k_high`` (observations with Pareto k above ``pareto_k_max``),
    ``max_pareto_k``, ArviZ's ``diag_diff`` caution, ``n_obs`` and ``n_draws``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = az.compare(elpds, method="stacking", round_to="none")
    rows = []
    for label, row in table.iterrows():
        result = elpds[label]
        k = np.asarray(result.pareto_k).ravel()
        rows.append({
            "run": label,
            "rank": int(row["rank"]),
            "elpd_loo": float(row["elpd"]),
            "se": float(row["se"]),
            "elpd_diff": float(row["elpd_diff"]),
            "dse": float(row["dse"]),
            "p_worse": float(row["p_worse"]),
            "weight": float(row["weight"]),
            "p_loo": float(row["p"]),
            "n_pareto_k_high": int((k > pareto_k_max).sum()),
            "max_pareto_k": float(np.nanmax(k)),
            "diag_diff": str(row["diag_diff"]) if pd.notna(row["diag_diff"]) else "",
            "n_obs": int(result.n_data_points),
            "n_draws": int(result.n_samples),
        })
    return pd.DataFrame(rows).set_index("run")


def loo_alone(elpd, pareto_k_max: float = 0.7) -> dict[str, Any]:
    """One run's LOO row of ``compare_loo``'s table, for a run that is listed but not ranked."""
    k = np.asarray(elpd.pareto_k).ravel()
    return {
        "elpd_loo": float(elpd.elpd), "se": float(elpd.se), "p_loo": float(elpd.p),
        "n_pareto_k_high": int((~(k <= pareto_k_max)).sum()), "max_pareto_k": float(np.nanmax(k)),
        "n_obs": int(elpd.n_data_points), "n_draws": int(elpd.n_samples),
    }


def mcse_mean(posterior: xr.Dataset) -> xr.Dataset:
    """Monte Carlo standard error of each posterior mean (every variable, every element)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return az.mcse(posterior, method="mean")


# --- simulation-based calibration (carestar.sbc) ---------------------------------------


def uniformity_p_values(pit: xr.Dataset) -> xr.Dataset:
    """ArviZ's uniformity test (``pot_c``, Tesso et al. 2026) of each parameter element's
    PIT values across the replications (dims ``chain``, ``draw``): one p-value each."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p_values, _, _ = pit.azstats.uniformity_test(dim=["chain", "draw"], method="pot_c")
    return p_values


def ecdf_difference_plot(ranks: xr.DataTree, var_name: str, path: Path, title: str,
                         coords: dict[str, Any] | None = None, prob: float = 0.95) -> Path:
    """The ECDF of one parameter's PIT values (group ``prior_sbc``, in ``[0, 1]``) minus the
    uniform CDF, per element (``arviz_plots.plot_ecdf_pit``, its ``pot_c`` p-value in each
    panel), with ``prob`` simultaneous bands for independent PIT values (Säilynoja et al.
    2022; ``arviz_stats.ecdf_utils.ecdf_pit``, 1000 simulations, seeded)."""
    from arviz_stats.ecdf_utils import ecdf_pit

    n = ranks["prior_sbc"].sizes["chain"] * ranks["prior_sbc"].sizes["draw"]
    x, _, lower, upper = ecdf_pit(np.linspace(0, 1, n), prob, 1000, rng=np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pc = az.plot_ecdf_pit(ranks, var_names=[var_name], group="prior_sbc", coords=coords,
                              envelope_prob=prob, backend="matplotlib")
    fig = pc.get_viz("figure")
    for ax in fig.axes:
        ax.fill_between(x, lower - x, upper - x, step="post", color="C0", alpha=0.2, lw=0)
    fig.suptitle(title)
    return save_figure(fig, path)

"""What a latent class run reports: tables, fit statistics (log likelihood at the mode,
AIC, BIC, relative entropy), recovery of the true classes on simulated data, report.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from carestar.report import count
from models.lca.posterior import class_membership, is_mode_only
from models.lca.predictive import answer_check

if TYPE_CHECKING:
    from models.lca.data import PreparedLCA
    from models.lca.model import LatentClassModel

EM_POINT = "maximum likelihood (StepMix EM; the posterior mode under flat priors)"


def relative_entropy(post: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Mplus relative entropy 1 - sum_i sum_k -p log p / (N log K) (1 = perfect separation)."""
    n, k = post.shape
    if k == 1:
        return 1.0
    w = np.ones(n) if weights is None else np.asarray(weights, float)
    p = np.clip(post, 1e-300, 1.0)
    ent = -(w[:, None] * post * np.log(p)).sum()
    return float(1.0 - ent / (w.sum() * np.log(k)))


def n_parameters(prepared: PreparedLCA) -> int:
    """Free parameters: membership, free item probabilities, ordinal cutpoints and locations."""
    r, K = prepared.responses, prepared.n_classes
    p = 0 if prepared.design is None else prepared.design.shape[1] - 1
    n = (K - 1) * (1 + p)
    for j, c in enumerate(r.n_categories):
        n += (c - 1) + (K - 1) if j in prepared.ordinal_items else K * (c - 1)
    return n


def fit_statistics(prepared: PreparedLCA, membership: pd.DataFrame | None = None,
                   mode: dict[str, Any] | None = None) -> dict[str, Any]:
    """Log likelihood at the mode, AIC, BIC (n = units, the sum of weights), entropy.

    ``mode`` is ``posterior.mode_loglik``'s point; None: the EM (maximum likelihood)
    point, which is the posterior mode under the default flat Dirichlet priors.
    ``n_params`` counts free parameters (``K - 1`` shares (or ``(K - 1)(1 + P)``
    coefficients) + ``K * sum_j (C_j - 1)``).
    """
    em, r = prepared.em, prepared.responses
    post = em.posterior if membership is None else membership[
        [f"p_class_{k}" for k in prepared.class_labels]].to_numpy()
    loglik, at = (em.loglik, EM_POINT) if mode is None else (mode["loglik"], mode["at"])
    k = n_parameters(prepared)
    return {
        "n_classes": prepared.n_classes,
        "n_rows": r.n_org,
        "n_units": r.n_total,
        "loglik_mode": loglik,
        "loglik_at": at,
        "n_params": k,
        "aic": -2 * loglik + 2 * k,
        "bic": -2 * loglik + k * np.log(r.n_total),
        "relative_entropy": relative_entropy(post, r.weights),
        "em_loglik": em.loglik,
        "em_starts": em.n_starts,
        "em_starts_at_best": em.n_at_best,
    }


def truth_ari(membership: pd.DataFrame, prepared: PreparedLCA) -> float | None:
    """Adjusted Rand index of the modal classes against the true classes (simulations)."""
    if prepared.truth is None:
        return None
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(prepared.truth.classes, membership["modal_class"]))


def truth_recovery(idata: xr.DataTree, prepared: PreparedLCA,
                   prob: float = 0.9) -> pd.DataFrame | None:
    """Each true class share and item probability beside its posterior ``prob`` interval.

    Classes are matched to the true ones (Hungarian, on posterior mean profiles and
    shares). Binary items list P(used = 1) only (P(0) is its complement). None unless
    the data are simulated with the same number of classes.
    """
    truth = prepared.truth
    if truth is None or len(truth.shares) != prepared.n_classes:
        return None
    post = idata["posterior"]
    p, sh = post["item_probs"], post["class_shares"]
    perm = truth.match(p.mean(("chain", "draw")).values, sh.mean(("chain", "draw")).values)
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2

    def stats(da):
        return (da.mean(("chain", "draw")).values, da.quantile(lo, ("chain", "draw")).values,
                da.quantile(hi, ("chain", "draw")).values)

    (sm, sl, sh_), (pm_, pl, ph) = stats(sh), stats(p)
    rows = []
    for t, name in enumerate(truth.names):
        k = perm[t]
        rows.append(("class_share", name, prepared.class_labels[k], "", "", truth.shares[t],
                     sm[k], sl[k], sh_[k]))
        for j, item in enumerate(prepared.responses.items):
            n_cat = prepared.responses.n_categories[j]
            cats = [1] if n_cat == 2 else range(n_cat)
            for c in cats:
                rows.append(("item_probability", name, prepared.class_labels[k], item,
                             prepared.responses.category_labels[j][c], truth.probs[t, j, c],
                             pm_[k, j, c], pl[k, j, c], ph[k, j, c]))
    pct = round(100 * prob)
    out = pd.DataFrame(rows, columns=["parameter", "true_class", "class", "item", "category",
                                      "truth", "mean", f"q{(100 - pct) // 2:02d}",
                                      f"q{100 - (100 - pct) // 2:02d}"])
    out["covered"] = (out["truth"] >= out.iloc[:, 7]) & (out["truth"] <= out.iloc[:, 8])
    return out


def tables(model: LatentClassModel, idata: xr.DataTree, prepared: PreparedLCA
           ) -> dict[str, pd.DataFrame]:
    """``class_shares``, ``item_profiles`` (posterior beside EM), ``class_membership``,
    ``fit``; ``truth_recovery`` on simulated data; ``class_coefs`` with covariates."""
    post = idata["posterior"]
    r = prepared.responses
    shares = post["class_shares"]
    t_shares = pd.DataFrame({
        "class": prepared.class_labels,
        "mean": shares.mean(("chain", "draw")).values,
        "sd": shares.std(("chain", "draw")).values,
        "q05": shares.quantile(0.05, ("chain", "draw")).values,
        "q95": shares.quantile(0.95, ("chain", "draw")).values,
        "ml_em": prepared.em.shares,
    })
    p = post["item_probs"]
    mean, sd = p.mean(("chain", "draw")).values, p.std(("chain", "draw")).values
    q05 = p.quantile(0.05, ("chain", "draw")).values
    q95 = p.quantile(0.95, ("chain", "draw")).values
    rows = []
    for k, cls in enumerate(prepared.class_labels):
        for j, item in enumerate(r.items):
            for c in range(r.n_categories[j]):
                rows.append((cls, item, c, r.category_labels[j][c], mean[k, j, c],
                             sd[k, j, c], q05[k, j, c], q95[k, j, c],
                             prepared.em.probs[k, j, c]))
    t_prof = pd.DataFrame(rows, columns=["class", "item", "category", "label", "mean", "sd",
                                         "q05", "q95", "ml_em"])
    membership = class_membership(idata, prepared)
    fit = model.fit_statistics(prepared, membership, idata)
    fit["chains_agree"] = model.chain_agreement(idata, prepared)["chains_agree"]
    versus = model.posterior_vs_em(idata)
    if versus is not None:
        fit["posterior_matches_em"] = versus["posterior_matches_em"]
        fit["posterior_loglik_mean"] = versus["posterior_loglik_mean"]
    ari = truth_ari(membership, prepared)
    if ari is not None:
        fit["ari_vs_truth"] = ari
    out = {"class_shares": t_shares, "item_profiles": t_prof,
           "class_membership": membership, "fit": pd.DataFrame([fit])}
    if not is_mode_only(idata):
        out["ppc_answers"] = answer_check(post, r, prepared.design)
    recovery = truth_recovery(idata, prepared)
    if recovery is not None:
        out["truth_recovery"] = recovery
    if "class_coefs" in post:
        cc = post["class_coefs"]
        t_coefs = (cc.mean(("chain", "draw")).to_dataframe("mean")
                   .join(cc.std(("chain", "draw")).to_dataframe("sd")).reset_index())
        t_coefs["q05"] = cc.quantile(0.05, ("chain", "draw")).values.ravel()
        t_coefs["q95"] = cc.quantile(0.95, ("chain", "draw")).values.ravel()
        # the EM coefficients have class 1 as their zero reference, as class_coefs has
        t_coefs["ml_em"] = prepared.em.coefs[1:].ravel()
        out["class_coefs"] = t_coefs
    return out


def report_section(model: LatentClassModel, idata: xr.DataTree, prepared: PreparedLCA) -> str:
    """The report.md section: shares, fit at the mode, chain agreement, truth recovery."""
    t = tables(model, idata, prepared)
    fit = t["fit"].iloc[0]
    agree = model.chain_agreement(idata, prepared)
    lines = [
        f"## Latent classes ({count(prepared.n_classes, 'class', 'classes')}, {prepared.responses.n_item} items,"
        f" {prepared.responses.n_org} rows; class 1 = lowest use)",
        "",
        *([f"data.dropna=true: {prepared.n_dropped} row(s) with a missing item or covariate"
           " dropped.", ""] if prepared.n_dropped else []),
        "| class | share (posterior mean) | 90% interval | maximum likelihood (EM) |",
        "|---|---|---|---|",
    ]
    for row in t["class_shares"].to_dict("records"):
        lines.append(f"| {row['class']} | {row['mean']:.3f} | {row['q05']:.3f}-{row['q95']:.3f}"
                     f" | {row['ml_em']:.3f} |")
    lines += [
        "",
        f"Log likelihood at the {fit['loglik_at']}: {fit['loglik_mode']:.3f}"
        f" ({fit['n_params']} parameters; AIC {fit['aic']:.2f}, BIC {fit['bic']:.2f},"
        f" n = {fit['n_units']:g}); relative entropy {fit['relative_entropy']:.3f}"
        " (1 = every organisation certain of its class).",
        "",
        f"Maximum likelihood (EM): log likelihood {prepared.em.loglik:.3f}, reached by"
        f" {prepared.em.n_at_best} of {prepared.em.n_starts} random starts.",
        "",
    ]
    if prepared.n_classes > 1 and prepared.em.n_at_best < 2:
        lines += [f"**Warning:** only one of {prepared.em.n_starts} EM starts reached the best"
                  " log likelihood: it may be a local maximum (raise `model.em_max_starts`).",
                  ""]
    versus = model.posterior_vs_em(idata)
    if versus is not None and not versus["posterior_matches_em"]:
        lines += ["**Warning: the posterior is not at the maximum likelihood (EM) solution**"
                  f" ({'; '.join(versus['reasons'])}; rule: {versus['rule']}). The EM"
                  " columns, log likelihood, AIC and BIC describe the maximum likelihood"
                  " point, not the posterior: posterior mean log likelihood"
                  f" {versus['posterior_loglik_mean']:.3f} against"
                  f" {versus['em_loglik']:.3f} at EM. Check `chains_agree`, try more EM"
                  " starts or fewer classes.", ""]
    if not is_mode_only(idata):
        lines += [
            f"Chains agree after relabelling: **{'yes' if agree['chains_agree'] else 'NO'}**"
            f" (mean lp per chain {agree['chain_mean_lp']}, largest profile difference"
            f" {agree['max_profile_difference']}).",
            "",
        ]
    if "ari_vs_truth" in fit:
        lines += [f"Simulated data: the modal classes recover the true classes with"
                  f" adjusted Rand index **{fit['ari_vs_truth']:.3f}** (1 = identical"
                  " partitions, 0 = chance).", ""]
    rec = t.get("truth_recovery")
    if rec is not None:
        lines += [f"True values inside their 90% posterior intervals:"
                  f" {int(rec['covered'].sum())} of {len(rec)}"
                  f" ({100 * rec['covered'].mean():.0f}%; `tables/truth_recovery.csv`).", ""]
    lines += [
        "Each organisation's class probabilities and modal class: `tables/class_membership.csv`.",
        "",
        "![item profiles](figures/item_profiles.png)",
    ]
    return "\n".join(lines)

r"""How the latent rating variance splits over the levels of the hierarchy (``tables/variance_shares.csv``).

A cumulative link model with group intercepts (``model.groups=[org, region]``) says, through
its latent variable, ``y*_it = eta_it + sum_g b_{g[i]} + e_it`` with ``y = k`` when
``c_k < y* <= c_{k+1}``. For each posterior draw ``s`` the latent variance left at given
predictors and year is

    V(s) = sum_g sd_g(s)^2 + V_e,    V_e = pi^2 / 3 (logit), 1 (probit), pi^2 / 6 (cloglog),

the variance of the link's standard error distribution (logistic, normal, Gumbel), and the
share of level ``g`` is ``sd_g(s)^2 / V(s)``, that of the residual ``V_e / V(s)``: the
variance partition coefficients of the latent-variable method (Goldstein, Browne & Rasbash
2002; Snijders & Bosker 2012, ch. 17). The table gives each share's posterior mean and 90%
interval (5% and 95% quantiles over the draws), and the variances themselves.

What the levels mean, on the study's panel with ``model.groups=[org, region]``:

- **between regions**: ``region_sd^2``, regions differing after the predictors;
- **between councils within regions**: ``org_sd^2``: with a region intercept in the model the
  council intercept is the council's own departure from its region (without one, it holds
  all between-council variation, and the row reads "between councils");
- **within councils over years**: ``V_e``, the link's residual: how much a council's latent
  rating varies from year to year around its own level once the year is known.

Predictors and year effects are fixed effects and are conditioned on, not shared out: the
year effects are the national drift that every council moved with, not variation of a
council around its own level, so they stay out of ``V``, as do the strategy and resource
effects (``carestar.drivers`` splits the whole latent variance, fixed effects included).
The link fixes ``V_e``, which sets the unit of the latent scale: the group SDs are measured
in it, so the shares are those of the latent scale of the model fitted (as every
latent-variable share is; a probit fit gives much the same shares as a logit one). Only intercept-only group terms can be shared out this way (a varying slope's variance
depends on its covariate), and only for the cumulative family (the one with a single latent
variable per row).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from carestar.drivers import RESIDUAL_VARIANCE

CI = (0.05, 0.95)
RESIDUAL_NAME = {"logit": "pi^2/3 (logistic)", "probit": "1 (normal)", "cloglog": "pi^2/6 (Gumbel)"}
STUDY_LABELS = {"region": "between regions", "org_type": "between council types"}


def of_posterior(post, design, link: str, family: str) -> pd.DataFrame | None:
    """The table for a fitted ordinal model's posterior and ``RegressionDesign``; None when it
    does not apply (no group term, a varying slope, a family other than the cumulative)."""
    terms = design.groups
    if family != "cumulative" or not terms or any(not t.intercept or t.slopes is not None for t in terms):
        return None
    names = [t.group.name for t in terms]
    sd = {g: post[f"{g}_sd"].isel({f"{g}_coef": 0}).stack(sample=("chain", "draw")).values for g in names}
    return table(sd, link, level_labels(names, panel=design.period is not None))


def level_labels(levels: list[str], panel: bool) -> dict[str, str]:
    """What each group level's variance is, and the residual's (key ``residual``), in words."""
    labels = {}
    outer = [g for g in levels if g in STUDY_LABELS]
    within = " and ".join({"region": "regions", "org_type": "council types"}[g] for g in outer)
    for g in levels:
        if g in STUDY_LABELS:
            labels[g] = STUDY_LABELS[g]
        elif g == "org":
            labels[g] = "between councils" + (f" within {within}" if within else "")
        else:
            labels[g] = f"between levels of {g}"
    if "org" in levels and panel:
        labels["residual"] = "within councils over years"
    elif panel:
        labels["residual"] = "within groups (the link's residual)"
    else:
        labels["residual"] = "the link's residual: councils within their groups, one rating each"
    return labels


def shares(sd_draws: dict[str, np.ndarray], link: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per draw: the variance of each level and of the residual (key ``residual``), and
    their shares of the total ``sum_g sd_g^2 + V_e``. ``sd_draws``: each level's SD draws,
    all of one length."""
    variance = {g: np.asarray(sd, float) ** 2 for g, sd in sd_draws.items()}
    n = len(next(iter(variance.values()))) if variance else 1
    variance["residual"] = np.full(n, RESIDUAL_VARIANCE[link])
    total = sum(variance.values())
    return variance, {g: v / total for g, v in variance.items()}


def table(sd_draws: dict[str, np.ndarray], link: str, labels: dict[str, str]) -> pd.DataFrame:
    """One row per level and one for the residual: share of the latent variance (mean, 90%
    interval) and the variance (mean, 90% interval), latent scale of ``link``."""
    variance, share = shares(sd_draws, link)
    rows = []
    outer_first = sorted(sd_draws, key=lambda g: (g == "org", g not in STUDY_LABELS))  # stable
    for g in [*outer_first, "residual"]:
        rows.append({
            "level": g, "variance_of": labels[g],
            "parameter": f"{g}_sd^2" if g != "residual" else RESIDUAL_NAME[link],
            "share_mean": share[g].mean(), "share_q05": np.quantile(share[g], CI[0]),
            "share_q95": np.quantile(share[g], CI[1]),
            "variance_mean": variance[g].mean(), "variance_q05": np.quantile(variance[g], CI[0]),
            "variance_q95": np.quantile(variance[g], CI[1]),
        })
    return pd.DataFrame(rows)


def markdown(t: pd.DataFrame, link: str) -> str:
    """The report's section: the table and what its rows mean."""
    residual = f"{RESIDUAL_NAME[link]} = {RESIDUAL_VARIANCE[link]:.2f}"
    lines = ["| variance | share (90% interval) | variance on the latent scale (90% interval) |",
             "|---|---|---|"]
    for r in t.itertuples():
        lines.append(f"| {r.variance_of} (`{r.parameter}`) | {r.share_mean:.2f} ({r.share_q05:.2f}, "
                     f"{r.share_q95:.2f}) | {r.variance_mean:.2f} ({r.variance_q05:.2f}, {r.variance_q95:.2f}) |")
    return (
        "### Variance shares (`tables/variance_shares.csv`)\n\n"
        "How the latent rating variance left at given predictors and year splits over the levels: each "
        f"level's SD squared, and the link's residual variance {residual} for the variation within a "
        "council from year to year. Year effects and predictors are fixed effects, conditioned on "
        "(not in the total); `carestar.variance_shares` has the definitions.\n\n" + "\n".join(lines)
    )

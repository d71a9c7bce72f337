"""Hierarchical binomial (logistic) regression of a tidy CSV through a formula.

``python run.py data=csv data.path=cbpp.csv model=binomial
model.formula="incidence | trials(size) ~ C(period) + (1|herd)"``

Math
----
For row i with ``n_i`` trials (``n_i = 1``: a 0/1 outcome, Bernoulli) and ``y_i`` successes::

    y_i ~ Binomial(n_i, p_i),      logit(p_i) = eta_i
    eta_i = alpha + x_i' beta + sum_g (b_{g[i],0} + sum_j b_{g[i],j} x_ij)

- Priors that depend neither on the predictors' units nor on their coding
  (``carestar.priors``): ``beta_j ~ Normal(0, priors.effects.sigma / s_j)`` (2.5 per SD
  ``s_j`` of column j; sampled as ``beta_per_sd`` on centred, scaled columns), with dim
  ``effect`` (treatment contrasts, R's column names: ``period2``, ``InflMedium``); the
  intercept ``~ Normal(priors.intercept.mu, priors.intercept.sigma)`` (0, 2.5) at the
  average row (``intercept_at_mean``); ``intercept`` is reported at ``x = 0``, as R does:
  ``intercept_at_mean - sum_j beta_j m_j``. A formula without an intercept keeps
  ``x = 0`` as the zero of the linear predictor.
- Group terms ``(1|g)`` / ``(1 + x|g)`` are non-centred: ``b_{g,j} = sd_j z_{g,j}``,
  ``z ~ N(0, 1)``, ``sd_j ~ HalfNormal(priors.group_sd.sigma)``; variables ``<g>_sd``
  (dim ``<g>_coef``), ``<g>_z`` and ``<g>_effect`` (dims ``<g>``, ``<g>_coef``; e.g.
  ``herd``, ``herd_coef = [Intercept]``). Varying intercepts and slopes have independent
  SDs and no correlation (lme4's ``(1 + x || g)``): enough for the small groups this
  project fits; an LKJ correlation is a later addition.
- Frequency weights ``w_i`` (``data.weights``): row i's log likelihood is
  ``w_i log Binomial(y_i | n_i, p_i)``, as if the row were written ``w_i`` times. The
  observed variable is a ``pm.CustomDist`` whose logp is the weighted one (not a
  ``pm.Potential``), so ``log_likelihood`` has one entry per row and LOO works; note that
  LOO then leaves out a whole row (all ``w_i`` copies at once), not one copy.
  Posterior predictive draws of a weighted row total its ``w_i`` copies.
- Monotonic effects ``mo(x)`` of ordered predictors add ``b D sum_{k<=x} zeta_k`` to
  ``eta`` (``carestar.monotonic``); the intercept is reported at ``x = 0``.
- The binomial log likelihood includes ``log C(n_i, y_i)`` (as R's ``dbinom`` and lme4's
  Laplace ``logLik`` do); the same data expanded to Bernoulli rows has no such constant.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from matplotlib.figure import Figure
from scipy.special import expit, gammaln

from carestar.design import RegressionDesign
from carestar.figures import CI_LABEL, ForestPanel, effects_note, legend_outside
from carestar.errors import ConfigError
from carestar.likelihood import (group_effects, linear_predictor_draws, observed, point_replicates,
                                 whole_weights)
from carestar.modelling import Model
from carestar.monotonic import monotonic_effects
from carestar.monotonic_figures import monotonic_markdown, monotonic_table, step_pattern_figure
from carestar.priors import (at_reference, check_design, checked_priors, column_scaling, effects_markdown,
                             effects_of, observation_counts, scaled_effects, slope_scales)
from carestar.tidy_csv import TidyTable

DEFAULT_PRIORS: dict[str, dict[str, float]] = {
    "intercept": {"mu": 0.0, "sigma": 2.5},
    "effects": {"sigma": 2.5},
    "group_sd": {"sigma": 1.0},
    "monotonic": {"alpha": 1.0},  # Dirichlet of each mo(x) simplex (carestar.monotonic)
}


class BinomialModel(Model):
    """Logistic regression with non-centred group terms; math in the module docstring."""

    name = "binomial"

    def __init__(self, formula: str, priors: dict[str, dict[str, float]] | None = None) -> None:
        if not isinstance(formula, str) or "~" not in formula:
            raise ConfigError(
                "model.formula must be a formula, e.g. "
                "model.formula='incidence | trials(size) ~ C(period) + (1|herd)'"
            )
        self.formula = formula
        self.priors = checked_priors(priors, DEFAULT_PRIORS, "binomial")

    # -- data -> design -------------------------------------------------------------
    def prepare(self, data: Any) -> RegressionDesign:
        if isinstance(data, RegressionDesign):
            return data
        if isinstance(data, TidyTable):
            from carestar.formula import formula_design

            design = formula_design(data, self.formula, "binomial")
            check_design(design, self.priors["effects"]["sigma"], str(data.path))
            return design
        raise ConfigError(
            f"model=binomial needs data=csv (a tidy CSV and model.formula); got {type(data).__name__}"
        )

    # -- the model ------------------------------------------------------------------
    def build(self, design: RegressionDesign) -> pm.Model:
        if design.categories:
            raise ConfigError("model=binomial got an ordinal design; use model=ordinal")
        coords = {"effect": design.effects, "obs": np.arange(design.n)}
        scaling = column_scaling(design)
        with pm.Model(coords=coords) as model:
            beta, eta = scaled_effects(design, scaling, self.priors["effects"]["sigma"])
            mono, mono_shift = monotonic_effects(design.monotonic, observation_counts(design),
                                                 self.priors["effects"]["sigma"], self.priors["monotonic"]["alpha"])
            eta = eta + mono
            if design.intercept:
                at_mean = pm.Normal(
                    "intercept_at_mean",
                    self.priors["intercept"]["mu"],
                    self.priors["intercept"]["sigma"],
                )
                pm.Deterministic("intercept", at_mean - at_reference(beta, scaling) - mono_shift)
                eta = eta + at_mean
            elif beta is not None or design.monotonic:  # no intercept to absorb the centring: x = 0 means something
                eta = eta + at_reference(beta, scaling) + mono_shift
            group_sigma = self.priors["group_sd"]["sigma"]
            for term in design.groups:
                eta = eta + group_effects(term, group_sigma / self.slope_scales(term, design))
            eta = eta + np.zeros(design.n)  # one value per row, even for y ~ 1
            if design.trials is None:
                make, params = (lambda logit_p: pm.Bernoulli.dist(logit_p=logit_p)), (eta,)
            else:
                make = lambda n, logit_p: pm.Binomial.dist(n=n, logit_p=logit_p)  # noqa: E731
                params = (np.asarray(design.trials, dtype=int), eta)
            observed(design.outcome, make, params, np.asarray(design.y), design.weights, "obs")
        return model

    def slope_scales(self, term, design: RegressionDesign) -> np.ndarray:
        """Per coefficient of a group term, what its SD prior's sigma is divided by: 1 for
        the intercept, the SD of a slope's column (an SD per SD of the predictor)."""
        return slope_scales(term, observation_counts(design))

    # -- after sampling -------------------------------------------------------------
    def pointwise(self, idata: xr.DataTree, design: RegressionDesign, seed: int
                  ) -> dict[str, xr.Dataset] | None:
        """Log likelihood per row (weights included) and posterior predictive draws for all
        draws at once with numpy, the math of ``build``:
        ``log Binomial(y | n, p) = log C(n, y) + y log p + (n - y) log(1 - p)``,
        ``log p = -log1p(exp(-eta))`` (stable for large ``|eta|``); checked against PyMC's
        draw-by-draw pass in the tests.

        A row with frequency weight ``w`` stands for ``w`` rows: its replicate is the total
        of ``w`` independent ones, ``<outcome>_total ~ Binomial(w n, p)`` (the observed
        counterpart is ``w y``). A point estimate (one draw) gets ``POINT_REPLICATES``
        replicate data sets at that point."""
        post = idata.posterior
        eta = linear_predictor_draws(post, design)
        n = np.ones(design.n) if design.trials is None else np.asarray(design.trials, float)
        loglik = row_log_likelihood(eta, design.y, n)
        weights = np.ones(design.n) if design.weights is None else np.asarray(design.weights, float)
        coords = {"chain": post["chain"].values, "draw": post["draw"].values,
                  "obs": np.arange(design.n)}
        dims = ("chain", "draw", "obs")
        rng = np.random.default_rng(seed)
        eta, pp_coords = point_replicates(eta, coords)
        if design.weights is None:
            predictive = {design.outcome: (dims, rng.binomial(n.astype(int), expit(eta)))}
        else:
            total = whole_weights(rng, design.weights) * n.astype(np.int64)
            predictive = {f"{design.outcome}_total": (dims, rng.binomial(total, expit(eta)))}
        return {
            "log_likelihood": xr.Dataset({design.outcome: (dims, weights * loglik)},
                                         coords=coords),
            "posterior_predictive": xr.Dataset(predictive, coords=pp_coords),
        }

    def likelihood_family(self, design: RegressionDesign):
        """The binomial likelihood for ``sampler=mle`` (``carestar.mle``), the intercept
        started at the logit of the observed share."""
        from carestar.mle import Family

        n = np.ones(design.n) if design.trials is None else np.asarray(design.trials, float)
        w = np.ones(design.n) if design.weights is None else np.asarray(design.weights, float)
        if not design.intercept:
            family = Family((), np.zeros(0), lambda eta, a: row_log_likelihood(eta, design.y, n),
                            lambda eta, a: row_derivatives(eta, design.y, n))
            return family, ("intercept", None)
        share = np.clip(np.dot(w, design.y) / np.dot(w, n), 1e-3, 1 - 1e-3)
        family = Family(("intercept",), np.array([np.log(share / (1 - share))]),
                        lambda eta, a: row_log_likelihood(eta + a[0], design.y, n),
                        lambda eta, a: row_derivatives(eta + a[0], design.y, n), sign=-1)
        return family, ("intercept", None)

    def effects(self) -> list[str]:
        return ["intercept", "beta", "*_sd", "mo_b", "mo_total", "mo_simplex_*"]

    def tables(self, idata: xr.DataTree, design: RegressionDesign) -> dict[str, pd.DataFrame]:
        tables = {} if _point(idata) else {"coefficients": coefficient_table(idata)}
        if (effects := effects_of(idata, design)) is not None:
            tables["effects"] = effects
        if (monotonic := monotonic_table(idata, design)) is not None:
            tables["monotonic"] = monotonic
        return tables

    def report_section(self, idata: xr.DataTree, design: RegressionDesign) -> str:
        lines = [
            "## Binomial regression",
            "",
            f"Formula `{self.formula}`; {design.n} rows"
            + (f", frequency weights summing to {design.weights.sum():g}" if design.weights is not None else "")
            + ". Coefficients on the logit scale (odds ratios = exp)"
            + (": the estimates and SEs are under Effects below." if _point(idata) else ":"),
            "",
        ]
        if not _point(idata):
            lines += ["| parameter | mean | sd | 5% | 95% |", "|---|---|---|---|---|"]
            for name, r in coefficient_table(idata).iterrows():
                lines.append(f"| {name} | {r['mean']:.3f} | {r['sd']:.3f} | {r['q5']:.3f} | {r['q95']:.3f} |")
        if (effects := effects_of(idata, design)) is not None:
            lines += ["", "Per unit of each column and per SD of it:", "", effects_markdown(effects)]
        if (monotonic := monotonic_table(idata, design)) is not None:
            lines += ["", monotonic_markdown(monotonic)]
        return "\n".join(lines) + "\n"

    def forest_panels(self, design: RegressionDesign) -> list[ForestPanel]:
        return [
            ForestPanel("Effects (odds ratio = exp)", ("beta",),
                        f"effect on the log odds\n({effects_note(design)})"),
            ForestPanel("Intercept (at x = 0)", ("intercept",), "log odds at x = 0", zero_line=False),
            ForestPanel("Group SDs", tuple(f"{t.group.name}_sd" for t in design.groups),
                        "SD of the group effects, log odds", zero_line=False),
        ]

    def figures(self, idata: xr.DataTree, design: RegressionDesign) -> dict[str, Figure]:
        figures = {}
        if "posterior_predictive" in idata.children:
            figures["ppc_proportions"] = predictive_check(idata, design)
        if (monotonic := monotonic_table(idata, design)) is not None:
            figures["monotonic_steps"] = step_pattern_figure(monotonic)
        return figures


MAX_PPC_ROWS = 60


def predictive_check(idata: xr.DataTree, design: RegressionDesign) -> Figure:
    """Observed proportion of successes against the posterior predictive median and 90%
    interval, per level of the first group term (``(1|herd)``: per herd); without group
    terms per row when there are at most ``MAX_PPC_ROWS`` rows, else in ten bins of the
    fitted probability. Frequency weights count as that many rows."""
    import matplotlib.pyplot as plt

    pp = idata.posterior_predictive
    name = design.outcome if design.outcome in pp else f"{design.outcome}_total"
    replicates = pp[name].stack(sample=("chain", "draw")).transpose("obs", "sample").values
    w = np.ones(design.n) if design.weights is None else np.asarray(design.weights, float)
    n = (np.ones(design.n) if design.trials is None else np.asarray(design.trials, float)) * w
    y = np.asarray(design.y, float) * w
    if design.groups:
        factor = design.groups[0].group
        codes, labels, by = factor.codes, list(factor.levels), f"by {factor.name}"
    elif design.n <= MAX_PPC_ROWS:
        codes, labels = np.arange(design.n), [str(i + 1) for i in range(design.n)]
        by = "by row" + (" (CSV order)" if design.rows is None else "")
    else:
        fitted = replicates.mean(axis=1) / n
        edges = np.unique(np.quantile(fitted, np.linspace(0, 1, 11)))
        codes = np.clip(np.searchsorted(edges, fitted, side="right") - 1, 0, len(edges) - 2)
        labels = [f"{edges[i]:.2f}-{edges[i + 1]:.2f}" for i in range(len(edges) - 1)]
        by = "in ten bins of the predicted proportion"
    groups = np.arange(len(labels))
    trials = np.bincount(codes, weights=n, minlength=len(labels))
    observed = np.bincount(codes, weights=y, minlength=len(labels)) / trials
    predicted = np.stack([replicates[codes == g].sum(axis=0) for g in groups]) / trials[:, None]
    lo, mid, hi = np.quantile(predicted, [0.05, 0.5, 0.95], axis=1)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.32 * len(labels) + 2.5), 3.6))
    ax.errorbar(groups, mid, yerr=[mid - lo, hi - mid], fmt="o", color="C3", ms=3, capsize=2,
                label=f"predicted: median, {CI_LABEL}")
    ax.plot(groups, observed, "D", color="black", ms=4, label="observed")
    ax.set_xticks(groups, labels, rotation=90 if len(labels) > 12 else 0, fontsize="small")
    ax.set_xlabel(by.removeprefix("by ").removeprefix("in "))
    ax.set_ylabel(f"{design.outcome}: proportion of " + ("trials" if design.trials is not None else "rows"))
    ax.set_ylim(0, max(1e-9, float(np.nanmax([hi.max(), observed.max()]))) * 1.08)
    ax.set_title(f"Posterior predictive check: {design.outcome} {by}", fontsize="medium")
    legend_outside(ax, fontsize="small")
    return fig


def _point(idata: xr.DataTree) -> bool:
    """A point estimate (sampler=map or mle): one draw, no posterior spread to tabulate."""
    return idata.posterior.sizes.get("draw", 0) * idata.posterior.sizes.get("chain", 0) == 1


def row_log_likelihood(eta: np.ndarray, y: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``log Binomial(y | n, logit^-1(eta))`` per row with numpy, ``log C(n, y)`` included:
    ``y log p + (n - y) log(1 - p)`` with ``log p = -log1p(exp(-eta))`` (stable)."""
    y = np.asarray(y, dtype=float)
    log_choose = gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1)
    return log_choose + y * -np.logaddexp(0.0, -eta) + (n - y) * -np.logaddexp(0.0, eta)


def row_derivatives(eta: np.ndarray, y: np.ndarray, n: np.ndarray):
    """``row_log_likelihood`` and its derivatives in ``eta``: ``y - n p`` and ``-n p (1 - p)``."""
    p = expit(eta)
    return row_log_likelihood(eta, y, n), np.asarray(y, float) - n * p, -n * p * (1 - p)


def coefficient_table(idata: xr.DataTree) -> pd.DataFrame:
    """Posterior mean, sd and 90% interval of the intercept, effects and group SDs."""
    post = idata["posterior"].dataset if hasattr(idata["posterior"], "dataset") else idata["posterior"]
    rows: dict[str, np.ndarray] = {}
    for name in post.data_vars:
        if not (name in ("intercept", "beta") or str(name).endswith("_sd")):
            continue
        da = post[name]
        other = [d for d in da.dims if d not in ("chain", "draw")]
        flat = da.stack(sample=("chain", "draw")).transpose(*other, "sample").values
        if not other:
            rows[str(name)] = flat
            continue
        labels = [str(v) for v in da[other[0]].values]
        for lab, vals in zip(labels, flat.reshape(len(labels), -1)):
            rows[f"{name}[{lab}]"] = vals
    return pd.DataFrame(
        {
            "mean": {k: float(np.mean(v)) for k, v in rows.items()},
            "sd": {k: float(np.std(v, ddof=1)) if v.size > 1 else 0.0 for k, v in rows.items()},
            "q5": {k: float(np.quantile(v, 0.05)) for k, v in rows.items()},
            "q95": {k: float(np.quantile(v, 0.95)) for k, v in rows.items()},
        }
    )

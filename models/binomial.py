"""Hierarchical binomial (logistic) regression of a tidy CSV through a formula.

``python run.py data=csv data.path=cbpp.csv model=binomial
model.formula="incidence | trials(size) ~ C(period) + (1|herd)"``

Math
----
For row i with ``n_i`` trials (``n_i = 1``: a 0/1 outcome, Bernoulli) and ``y_i`` successes::

    y_i ~ Binomial(n_i, p_i),      logit(p_i) = eta_i
    eta_i = alpha + x_i' beta + sum_g (b_{g[i],0} + sum_j b_{g[i],j} x_ij)

- ``alpha ~ Normal(priors.intercept.mu, priors.intercept.sigma)`` (``intercept``; absent
  if the formula removes it), ``beta ~ Normal(0, priors.effects.sigma)`` with dim
  ``effect`` (treatment contrasts, R's column names: ``period2``, ``InflMedium``).
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
  Posterior predictive draws are per row, unweighted.
- The binomial log likelihood includes ``log C(n_i, y_i)`` (as R's ``dbinom`` and lme4's
  Laplace ``logLik`` do); the same data expanded to Bernoulli rows has no such constant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from scipy.special import expit, gammaln

from carestar.design import RegressionDesign
from carestar.errors import ConfigError
from carestar.likelihood import group_effects, linear_predictor_draws, observed
from carestar.modelling import Model
from carestar.tidy_csv import TidyTable

DEFAULT_PRIORS: dict[str, dict[str, float]] = {
    "intercept": {"mu": 0.0, "sigma": 2.5},
    "effects": {"sigma": 2.5},
    "group_sd": {"sigma": 1.0},
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
        self.priors = {k: dict(v) for k, v in DEFAULT_PRIORS.items()}
        for block, values in dict(priors or {}).items():
            if block not in DEFAULT_PRIORS:
                raise ConfigError(
                    f"model.priors.{block} is not a prior of the binomial model; "
                    f"expected one of {list(DEFAULT_PRIORS)}"
                )
            for key, value in dict(values or {}).items():
                if key not in DEFAULT_PRIORS[block]:
                    raise ConfigError(
                        f"model.priors.{block}.{key} is not a parameter; expected one of "
                        f"{list(DEFAULT_PRIORS[block])}"
                    )
                if key == "sigma" and not float(value) > 0:
                    raise ConfigError(f"model.priors.{block}.sigma must be > 0, got {value}")
                self.priors[block][key] = float(value)

    # -- data -> design -------------------------------------------------------------
    def prepare(self, data: Any) -> RegressionDesign:
        if isinstance(data, RegressionDesign):
            return data
        if isinstance(data, TidyTable):
            from carestar.formula import formula_design

            return formula_design(data, self.formula, "binomial")
        raise ConfigError(
            f"model=binomial needs data=csv (a tidy CSV and model.formula); got {type(data).__name__}"
        )

    # -- the model ------------------------------------------------------------------
    def build(self, design: RegressionDesign) -> pm.Model:
        if design.categories:
            raise ConfigError("model=binomial got an ordinal design; use model=ordinal")
        coords = {"effect": design.effects, "obs": np.arange(design.n)}
        with pm.Model(coords=coords) as model:
            eta = 0.0
            if design.intercept:
                eta = pm.Normal(
                    "intercept",
                    self.priors["intercept"]["mu"],
                    self.priors["intercept"]["sigma"],
                )
            if design.effects:
                X = pm.Data("X", design.X.to_numpy(float), dims=("obs", "effect"))
                beta = pm.Normal("beta", 0.0, self.priors["effects"]["sigma"], dims="effect")
                eta = eta + X @ beta
            for term in design.groups:
                eta = eta + group_effects(term, self.priors["group_sd"]["sigma"])
            eta = eta + np.zeros(design.n)  # one value per row, even for y ~ 1
            if design.trials is None:
                make, params = (lambda logit_p: pm.Bernoulli.dist(logit_p=logit_p)), (eta,)
            else:
                make = lambda n, logit_p: pm.Binomial.dist(n=n, logit_p=logit_p)  # noqa: E731
                params = (np.asarray(design.trials, dtype=int), eta)
            observed(design.outcome, make, params, np.asarray(design.y), design.weights, "obs")
        return model

    # -- after sampling -------------------------------------------------------------
    def pointwise(self, idata: xr.DataTree, design: RegressionDesign, seed: int
                  ) -> dict[str, xr.Dataset] | None:
        """Log likelihood per row (weights included) and posterior predictive draws for all
        draws at once with numpy, the math of ``build``:
        ``log Binomial(y | n, p) = log C(n, y) + y log p + (n - y) log(1 - p)``,
        ``log p = -log1p(exp(-eta))`` (stable for large ``|eta|``); checked against PyMC's
        draw-by-draw pass in the tests."""
        post = idata.posterior
        if post.sizes.get("draw", 0) < 2:
            return None
        eta = linear_predictor_draws(post, design)
        y = np.asarray(design.y, dtype=float)
        n = np.ones(design.n) if design.trials is None else np.asarray(design.trials, float)
        log_choose = gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1)
        loglik = log_choose + y * -np.logaddexp(0.0, -eta) + (n - y) * -np.logaddexp(0.0, eta)
        weights = np.ones(design.n) if design.weights is None else np.asarray(design.weights, float)
        replicated = np.random.default_rng(seed).binomial(n.astype(int), expit(eta))
        coords = {"chain": post["chain"].values, "draw": post["draw"].values,
                  "obs": np.arange(design.n)}
        dims = ("chain", "draw", "obs")
        return {
            "log_likelihood": xr.Dataset({design.outcome: (dims, weights * loglik)},
                                         coords=coords),
            "posterior_predictive": xr.Dataset({design.outcome: (dims, replicated)},
                                               coords=coords),
        }

    def effects(self) -> list[str]:
        return ["intercept", "beta", "*_sd"]

    def tables(self, idata: xr.DataTree, design: RegressionDesign) -> dict[str, pd.DataFrame]:
        return {"coefficients": coefficient_table(idata)}

    def report_section(self, idata: xr.DataTree, design: RegressionDesign) -> str:
        table = coefficient_table(idata)
        lines = [
            "## Binomial regression",
            "",
            f"Formula `{self.formula}`; {design.n} rows"
            + (f", frequency weights summing to {design.weights.sum():g}" if design.weights is not None else "")
            + ". Coefficients on the logit scale (odds ratios = exp):",
            "",
            "| parameter | mean | sd | 3% | 97% |",
            "|---|---|---|---|---|",
        ]
        for name, r in table.iterrows():
            lines.append(f"| {name} | {r['mean']:.3f} | {r['sd']:.3f} | {r['q3']:.3f} | {r['q97']:.3f} |")
        return "\n".join(lines) + "\n"

    def figures(self, idata: xr.DataTree, design: RegressionDesign, figdir: Path) -> dict[str, Path]:
        return {}


def coefficient_table(idata: xr.DataTree) -> pd.DataFrame:
    """Posterior mean, sd and 94% interval of the intercept, effects and group SDs."""
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
            "q3": {k: float(np.quantile(v, 0.03)) for k, v in rows.items()},
            "q97": {k: float(np.quantile(v, 0.97)) for k, v in rows.items()},
        }
    )

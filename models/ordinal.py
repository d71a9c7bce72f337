"""Cumulative link (ordinal) regression of star ratings, or of any ordered outcome.

Math
----
For row i (an organisation-year, or a row of a tidy CSV) with K ordered categories::

    P(y_i <= k) = F(c_k - eta_i),          k = 1..K-1,  c_1 < ... < c_{K-1}
    eta_i = x_i' beta + sum_g b_{g[i]} + tau_{t[i]}

- ``F`` is the logistic, standard normal or complementary log-log CDF (``model.link``).
- ``beta ~ Normal(0, priors.effects.sigma)``: effects on the latent scale; a positive
  effect moves mass to higher categories (the MASS::polr convention).
- Cutpoints are induced by a Dirichlet prior on the category probabilities of a row with
  ``eta = 0``: ``pi ~ Dirichlet(priors.cutpoints.alpha)``, ``c_k = F^{-1}(pi_1 + ... + pi_k)``
  (proper, and ordered by construction).
- Group terms (the study's organisations across years; ``(1|g)`` / ``(x|g)`` in a
  formula) are non-centred: ``b_g = sd * z_g``, ``z_g ~ N(0, 1)``,
  ``sd ~ HalfNormal(priors.group_sd.sigma)``.
- Year effects (panel mode) ``tau ~ ZeroSumNormal(priors.year_effects.sigma)``: the rating
  regime drifted; the cutpoints carry the overall level.
- A rating regime that did not award the lowest categories (no 0 stars from 2006,
  ``model.lowest_stars``) sets ``c_k = -inf`` below its lowest category for those rows.
- Frequency weights (``data.weights``) multiply each row's log likelihood.

Modes: ``model.year=null`` fits the whole panel (organisation intercepts, year effects);
``model.year=2007`` fits one year (one rating per organisation: no intercepts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from carestar.design import RegressionDesign
from carestar.errors import ConfigError
from carestar.likelihood import group_effects, linear_predictor_draws, observed
from carestar.modelling import Model
from carestar.study import Study
from carestar.study_design import ratings_design
from models import ordinal_figures

LINKS = ("logit", "probit", "cloglog")


def link_cdf(link: str, x):
    """F: the inverse link, a CDF on the latent scale (tensor or numpy input)."""
    math = pt if isinstance(x, pt.TensorVariable) else np
    if link == "logit":
        return 1.0 / (1.0 + math.exp(-x))
    if link == "probit":
        erfc = pt.erfc if math is pt else _np_erfc
        return 0.5 * erfc(-x / np.sqrt(2.0))
    return 1.0 - math.exp(-math.exp(x))


def link_quantile(link: str, q):
    """F^{-1}: cutpoints induced by category probabilities; latent draws from uniforms
    (tensor or numpy input)."""
    math = pt if isinstance(q, pt.TensorVariable) else np
    if link == "logit":
        return math.log(q) - math.log1p(-q)
    if link == "probit":
        erfinv = pt.erfinv if math is pt else _np_erfinv
        return np.sqrt(2.0) * erfinv(2.0 * q - 1.0)
    return math.log(-math.log1p(-q))


def _np_erfc(x):
    from scipy.special import erfc

    return erfc(x)


def _np_erfinv(x):
    from scipy.special import erfinv

    return erfinv(x)


def regime_cutpoints(cutpoints, lowest=None):
    """Cutpoints as a rating regime applies them: ``c_k = -inf`` for every cutpoint below
    the regime's lowest category (no 0 stars from 2006: ``c_1 = -inf``), so the categories it
    never awarded get probability 0 and their mass goes to its lowest category.

    ``cutpoints`` (..., K-1); ``lowest`` an int (one regime) or an array over the leading
    (row) dims of the result, None or 0 for every category awarded.
    """
    if lowest is None or (np.isscalar(lowest) and int(lowest) == 0):
        return cutpoints
    math = pt if isinstance(cutpoints, pt.TensorVariable) else np
    lowest = np.asarray(lowest, dtype=int)
    below = math.arange(cutpoints.shape[-1]) < lowest[..., None]  # (..., K-1)
    return math.where(below, -np.inf, cutpoints)


def category_probabilities(link: str, eta, cutpoints, lowest=None):
    """P(y = k) for every row: differences of ``F(c_k - eta)`` padded with 0 and 1, under the
    rating regime whose lowest awarded category is ``lowest`` (see ``regime_cutpoints``).

    The one place the model's category probabilities are made: the likelihood
    (``observed_log_prob`` is its two-cutpoint form, tested equal), the predictive draws
    and every figure use it. ``cutpoints`` has shape (K-1,) or (rows, K-1).
    """
    cutpoints = regime_cutpoints(cutpoints, lowest)
    math = pt if isinstance(eta, pt.TensorVariable) or isinstance(cutpoints, pt.TensorVariable) else np
    cum = link_cdf(link, cutpoints - eta[..., None])
    zeros = math.zeros_like(cum[..., :1])
    padded = math.concatenate([zeros, cum, zeros + 1.0], axis=-1)
    return padded[..., 1:] - padded[..., :-1]


def observed_log_prob(link: str, eta, cutpoints, y, n_categories: int,
                      lowest: np.ndarray | None = None):
    """log P(y_n | eta_n): only the two cutpoints around each observed category.

    ``eta`` is a tensor of shape (N,) or (N, K) (K shifted copies of each row, e.g. one per
    latent class); ``cutpoints`` (C-1,); ``y`` (N,) codes 0..C-1 of ``n_categories`` C, a
    numpy array or a symbolic value; ``lowest`` (N,) the lowest category each row's
    regime could award (``c = -inf`` below it), which ``y`` never undercuts
    (``study_design.ratings_design`` refuses such rows). Equal to
    ``log category_probabilities(...)[n, y_n]`` with a gradient graph a fraction the size.
    """
    y = pt.as_tensor(y)
    n_cut = n_categories - 1
    floor = pt.as_tensor(np.zeros(1, dtype=int) if lowest is None else np.asarray(lowest, int))
    extra = eta.ndim - 1  # trailing dims of eta beyond the rows

    def rows(x):
        return pt.shape_padright(x, extra) if extra else x

    open_below = rows(pt.or_(pt.eq(y, 0), pt.le(y, floor)))
    open_above = rows(pt.eq(y, n_cut))
    upper = rows(cutpoints[pt.minimum(y, n_cut - 1)])
    lower = rows(cutpoints[pt.maximum(y - 1, 0)])
    F_upper = pt.where(open_above, 1.0, link_cdf(link, upper - eta))
    F_lower = pt.where(open_below, 0.0, link_cdf(link, lower - eta))
    return pt.log(pt.clip(F_upper - F_lower, 1e-300, 1.0))


class OrdinalModel(Model):
    """Cumulative link model; see the module docstring for the math."""

    name = "ordinal"

    def __init__(
        self,
        link: str = "logit",
        year: int | None = None,
        predictors: list[str] | None = None,
        reference: dict[str, str] | None = None,
        standardise: bool = True,
        lowest_stars: dict[int, int] | None = None,
        formula: str | None = None,
        figure_year: int = 2007,
        priors: dict[str, dict[str, float]] | None = None,
    ) -> None:
        if link not in LINKS:
            raise ConfigError(f"model.link={link!r} is not a link; expected one of {LINKS}")
        self.link = link
        self.year = year
        self.predictors = list(predictors or [])
        self.reference = dict(reference or {})
        self.standardise = standardise
        self.lowest_stars = {int(k): int(v) for k, v in (lowest_stars or {}).items()}
        self.formula = formula
        self.figure_year = figure_year
        self.priors = priors or {}

    def lowest_category(self, year) -> int:
        """The lowest category the rating regime of ``year`` awarded (``model.lowest_stars``)."""
        return self.lowest_stars.get(int(year), 0) if year is not None else 0

    def _prior(self, block: str, key: str, default: float) -> float:
        return float(self.priors.get(block, {}).get(key, default))

    # -- data -> design -------------------------------------------------------------
    def prepare(self, data: Any) -> RegressionDesign:
        if isinstance(data, Study):
            if self.formula:
                raise ConfigError(
                    "model.formula is for data=csv; on the study choose model.predictors"
                )
            return ratings_design(
                data,
                self.predictors,
                self.reference,
                year=self.year,
                lowest_stars=self.lowest_stars,
                standardise=self.standardise,
            )
        if not self.formula:
            raise ConfigError(
                'data=csv needs a formula: model.formula="outcome ~ x1 + x2 + (1|group)"'
            )
        from carestar.formula import formula_design

        return formula_design(data, self.formula, "ordinal")

    # -- the model ------------------------------------------------------------------
    def build(self, design: RegressionDesign) -> pm.Model:
        K = len(design.categories)
        coords = {
            "effect": design.effects,
            "category": list(design.categories),
            "cutpoint": [f"{a}|{b}" for a, b in zip(design.categories, design.categories[1:])],
            "obs": np.arange(design.n),
        }
        with pm.Model(coords=coords) as model:
            X = pm.Data("X", design.X.to_numpy(float), dims=("obs", "effect"))
            beta = pm.Normal(
                "beta", 0.0, self._prior("effects", "sigma", 1.0), dims="effect"
            )
            eta = X @ beta
            for term in design.groups:
                eta = eta + group_effects(term, self._prior("group_sd", "sigma", 1.0))
            if design.period is not None:
                model.add_coords({design.period.name: list(design.period.levels)})
                tau = pm.ZeroSumNormal(
                    f"{design.period.name}_effect",
                    sigma=self._prior("year_effects", "sigma", 1.0),
                    dims=design.period.name,
                )
                eta = eta + tau[design.period.codes]
            pi = pm.Dirichlet(
                "category_probs",
                a=np.full(K, self._prior("cutpoints", "alpha", 1.0)),
                dims="category",
            )
            cutpoints = pm.Deterministic(
                "cutpoints", link_quantile(self.link, pt.cumsum(pi)[:-1]), dims="cutpoint"
            )
            lowest = design.lowest if design.lowest is not None and design.lowest.any() else None

            def stars(eta, cutpoints):  # the distribution, for draws
                return pm.Categorical.dist(p=category_probabilities(self.link, eta, cutpoints, lowest))

            def log_prob(value, eta, cutpoints):  # its log probability, lean for the gradient
                return observed_log_prob(self.link, eta, cutpoints, value, K, lowest)

            observed(design.outcome, stars, (eta, cutpoints), design.y, design.weights,
                     dims="obs", logp=log_prob)
        return model

    # -- after sampling -------------------------------------------------------------
    def pointwise(self, idata: xr.DataTree, design: RegressionDesign, seed: int) -> dict[str, xr.Dataset] | None:
        """Log likelihood per row (weights included) and posterior predictive draws, for all
        draws at once with numpy: the same math as ``build`` (checked against PyMC's
        draw-by-draw computation in the tests), several times faster.

        Only the two cutpoints around each observed category enter its probability
        ``F(c_y - eta) - F(c_{y-1} - eta)`` (``c_0 = -inf``, ``c_K = +inf``), and a replicate
        is the number of cutpoints below a latent draw ``eta + F^{-1}(u)``, ``u ~ U(0, 1)``:
        ``P(y_rep <= k) = F(c_{k+1} - eta)``, the categorical distribution of ``build``."""
        post = idata.posterior
        if post.sizes.get("draw", 0) < 2 or "cutpoints" not in post:
            return None
        eta = linear_predictor_draws(post, design)  # (c, d, n)
        cut = post["cutpoints"].values  # (c, d, K-1)
        edges = np.full(cut.shape[:2] + (1,), np.inf)
        padded = np.concatenate([-edges, cut, edges], axis=-1)  # (c, d, K+1)
        lowest = np.zeros(design.n, int) if design.lowest is None else np.asarray(design.lowest, int)
        upper = padded[..., design.y + 1]
        lower = np.where(design.y <= lowest, -np.inf, padded[..., design.y])
        with np.errstate(over="ignore"):
            observed = link_cdf(self.link, upper - eta) - link_cdf(self.link, lower - eta)
        weights = np.ones(design.n) if design.weights is None else np.asarray(design.weights, float)
        latent = eta + link_quantile(self.link, np.random.default_rng(seed).random(eta.shape))
        below = sum((cut[..., k, None] < latent).astype(int) for k in range(cut.shape[-1]))
        replicated = np.maximum(below, lowest)  # a regime's missing lowest categories: c = -inf
        coords = {"chain": post["chain"].values, "draw": post["draw"].values, "obs": np.arange(design.n)}
        dims = ("chain", "draw", "obs")
        return {
            "log_likelihood": xr.Dataset({design.outcome: (dims, weights * np.log(observed))}, coords=coords),
            "posterior_predictive": xr.Dataset({design.outcome: (dims, replicated)}, coords=coords),
        }

    def effects(self) -> list[str]:
        return ["beta", "cutpoints", "*_sd", "year_effect"]

    def monitored(self, idata: xr.DataTree) -> list[str]:
        """The sampled parameters (group effects through their non-centred ``*_z``)."""
        return ["beta", "cutpoints", "category_probs", "*_sd", "*_z", "year_effect"]

    def tables(self, idata: xr.DataTree, design: RegressionDesign) -> dict[str, pd.DataFrame]:
        if not ordinal_figures.has_strategy(design):
            return {}
        return {"figure1_probabilities": ordinal_figures.strategy_probabilities(self, idata, design)}

    def figures(self, idata: xr.DataTree, design: RegressionDesign, figdir: Path) -> dict[str, Path]:
        return ordinal_figures.draw_all(self, idata, design, figdir)

    def report_section(self, idata: xr.DataTree, design: RegressionDesign) -> str:
        mode = "whole panel" if self.year is None else f"year {self.year}"
        return (
            f"Cumulative {self.link} model of `{design.outcome}` ({len(design.categories)} "
            f"ordered categories: {', '.join(design.categories)}), {mode}, {design.n} rows, "
            f"effects: {', '.join(design.effects) or 'none'}."
        )

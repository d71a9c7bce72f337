"""Ordinal regression of star ratings, or of any ordered outcome: the cumulative link model
below, or (``model.family``) the stopping ratio, continuation ratio and adjacent category
families, whose math is in ``models/ordinal_likelihood.py``: the same linear predictor, priors
and regime floor, with free (unordered) thresholds.

Math
----
For row i (an organisation-year, or a row of a tidy CSV) with K ordered categories::

    P(y_i <= k) = F(c_k - eta_i),          k = 1..K-1,  c_1 < ... < c_{K-1}
    eta_i = x_i' beta + sum_g b_{g[i]} + tau_{t[i]}

- ``F`` is the logistic, standard normal or complementary log-log CDF (``model.link``).
- Effects: ``beta_j ~ Normal(0, sigma / s_j)`` with ``s_j`` the SD of column j and
  ``sigma = priors.effects.sigma`` (2.5): per SD of each predictor, whatever its units
  (``carestar.priors``). Sampled as ``beta_per_sd`` on centred, scaled columns; ``beta`` is
  per unit of the user's column. A positive effect moves mass to higher categories (the
  MASS::polr convention).
- Cutpoints: ordered, each ``c*_k ~ StudentT(nu = 3, 0, 2.5)`` (``priors.cutpoints``:
  brms's default for the intercepts of an ordinal model) at the **average row** (every
  predictor at its mean, group and year effects at 0), so the prior does not depend on which
  level of a factor is the reference. Reported ``cutpoints`` are R's, at ``x = 0``:
  ``c_k = c*_k + sum_j beta_j m_j`` (``m_j`` the column means). (The earlier default, a
  Dirichlet on the category probabilities at ``eta = 0``, put a logistic density on every
  cutpoint and pulled small data sets' outer cutpoints and effects in: ``R ordinal``'s wine
  data by 0.3 SE.)
- Group terms (the study's levels ``model.groups``, default ``[org]``: the councils across
  years, and ``region`` / ``org_type``, ``carestar.study_design``; ``(1|g)`` / ``(x|g)`` in a
  formula) are non-centred, one intercept vector and one SD per level:
  ``b_g = sd_g * z_g``, ``z_g ~ N(0, 1)``, ``sd_g ~ HalfNormal(priors.group_sd.sigma)``
  (divided by the SD of a slope's column); dims and names by level (``region``,
  ``region_sd``, ``region_effect``). With ``[org, region]`` the council intercept is its
  departure from its region. ``tables/variance_shares.csv``: how the latent variance splits
  over the levels (``carestar.variance_shares``). PSIS-LOO stays per row (org-year).
- Year effects (panel mode) ``tau ~ ZeroSumNormal(priors.year_effects.sigma)``: the rating
  regime drifted; the cutpoints carry the overall level.
- A rating regime that did not award the lowest categories (no 0 stars from 2006,
  ``model.lowest_stars``) sets ``c_k = -inf`` below its lowest category for those rows.
- Frequency weights (``data.weights``) multiply each row's log likelihood.
- Monotonic effects ``mo(x)`` of ordered predictors add ``b D sum_{k<=x} zeta_k`` to
  ``eta`` (``carestar.monotonic``: ``b`` per step with the effects' scale-free prior,
  ``zeta ~ Dirichlet(priors.monotonic.alpha = 1)``); the reported cutpoints are at ``x = 0``.
- Category-specific effects ``cs(w)`` (a formula term): each row's own thresholds
  ``c_ik = c_k - w_i' gamma_k``, ``beta_cs`` with the effects' prior; in the cumulative
  family restricted to thresholds ordered at every row of the data
  (``carestar.category_specific``).
- Families other than the cumulative (``model.family``): ``models.ordinal_likelihood``.

Modes: ``model.year=null`` fits the whole panel (organisation intercepts, year effects);
``model.year=2007`` fits one year (one rating per organisation: no intercepts).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from matplotlib.figure import Figure

from carestar import category_specific
from carestar.design import RegressionDesign
from carestar.figures import LINK_SCALES, ForestPanel, effects_note
from carestar.errors import ConfigError
from carestar.likelihood import (group_effects, linear_predictor_draws, observed, point_replicates,
                                 replicate_weights)
from carestar.modelling import Model
from carestar.monotonic import monotonic_effects
from carestar.monotonic_figures import monotonic_markdown, monotonic_table, step_pattern_figure
from carestar.priors import (at_reference, check_design, checked_priors, column_scaling, effects_markdown,
                             effects_of, iid_cutpoints, observation_counts, scaled_effects, slope_scales)
from carestar.study import Study
from carestar.study_design import check_levels, ratings_design
from carestar.variance_shares import markdown as variance_markdown, of_posterior as variance_shares
from models import ordinal_figures
from models.ordinal_likelihood import (FAMILIES, LINKS, category_probabilities, link_quantile,
                                       observed_log_prob, replicate_categories, row_derivatives,
                                       row_log_likelihood, starting_cutpoints)

log = logging.getLogger("carestar")

FAMILY_NAMES = {"cumulative": "cumulative link", "sratio": "stopping ratio", "cratio": "continuation ratio",
                "acat": "adjacent category"}  # the report's words for model.family

DEFAULT_PRIORS: dict[str, dict[str, float]] = {  # conf/model/ordinal.yaml; carestar.priors says why
    "effects": {"sigma": 2.5},
    "group_sd": {"sigma": 1.0},
    "year_effects": {"sigma": 1.0},
    "cutpoints": {"nu": 3.0, "sigma": 2.5},
    "monotonic": {"alpha": 1.0},  # Dirichlet of each mo(x) simplex (carestar.monotonic)
}


def student_t_cutpoints(name: str, nu: float, sigma: float, start: np.ndarray, dims: str,
                        ordered_values: bool = True):
    """Cutpoints, each ``Student-t(nu, 0, sigma)``, increasing unless ``ordered_values`` is
    false (``carestar.priors.iid_cutpoints``: prior draws sorted, started at ``start``)."""
    return iid_cutpoints(name, pm.StudentT, {"nu": nu, "mu": 0.0, "sigma": sigma}, start, dims,
                         ordered_values)


def observed_cutpoints(link: str, design: RegressionDesign, family: str = "cumulative") -> np.ndarray:
    """The link quantiles of the observed cumulative category shares (weights counted): the
    cutpoints of a model without effects, where the optimiser and the samplers start (the
    other families: ``starting_cutpoints``)."""
    K = len(design.categories)
    w = np.ones(design.n) if design.weights is None else np.asarray(design.weights, float)
    shares = np.bincount(design.y, weights=w, minlength=K) / w.sum()
    if family != "cumulative":
        return starting_cutpoints(family, link, shares)
    cum = np.cumsum(shares)[:-1]
    cum = np.clip(cum, 0.01, 0.99) + 1e-4 * np.arange(K - 1)  # strictly increasing
    return link_quantile(link, cum)


class OrdinalModel(Model):
    """Cumulative link model; see the module docstring for the math."""

    name = "ordinal"

    CONFIG_CHOICES = {"family": FAMILIES, "link": LINKS}  # carestar.config_checks refuses others
    STUDY_GROUPS = ("org",)  # model.groups' default: today's organisation intercepts

    def __init__(
        self,
        family: str = "cumulative",
        link: str = "logit",
        year: int | None = None,
        predictors: list[str] | None = None,
        reference: dict[str, str] | None = None,
        standardise: bool = True,
        lowest_stars: dict[int, int] | None = None,
        formula: str | None = None,
        figure_year: int = 2007,
        priors: dict[str, dict[str, float]] | None = None,
        groups: list[str] | None = None,
    ) -> None:
        if link not in LINKS:
            raise ConfigError(f"model.link={link!r} is not a link; expected one of {LINKS}")
        if family not in FAMILIES:
            raise ConfigError(f"model.family={family!r} is not an ordinal family; expected one of {FAMILIES}")
        self.family = family
        self.link = link
        self.year = year
        self.predictors = list(predictors or [])
        self.reference = dict(reference or {})
        self.standardise = standardise
        self.lowest_stars = {int(k): int(v) for k, v in (lowest_stars or {}).items()}
        self.formula = formula
        self.figure_year = figure_year
        self.priors = checked_priors(priors, DEFAULT_PRIORS, "ordinal")
        self.groups = check_levels(self.STUDY_GROUPS if groups is None else groups)

    def lowest_category(self, year) -> int:
        """The lowest category the rating regime of ``year`` awarded (``model.lowest_stars``)."""
        return self.lowest_stars.get(int(year), 0) if year is not None else 0

    def _prior(self, block: str, key: str) -> float:
        return self.priors[block][key]

    # -- data -> design -------------------------------------------------------------
    def prepare(self, data: Any) -> RegressionDesign:
        if isinstance(data, Study):
            if self.formula:
                raise ConfigError(
                    "model.formula is for data=csv; on the study choose model.predictors"
                )
            design = ratings_design(
                data,
                self.predictors,
                self.reference,
                year=self.year,
                lowest_stars=self.lowest_stars,
                standardise=self.standardise,
                groups=self.groups,
            )
        else:
            if self.groups != self.STUDY_GROUPS:
                raise ConfigError(
                    f"model.groups={list(self.groups)} is for the study (data=synthetic or data=study); "
                    "on a CSV write the group terms in the formula, e.g. 'model.formula=\"y ~ x + (1|g)\"'")
            if not self.formula:
                raise ConfigError(
                    "data=csv needs a formula: 'model.formula=\"outcome ~ x1 + x2 + (1|group)\"'"
                )
            from carestar.formula import formula_design

            design = formula_design(data, self.formula, "ordinal")
        check_design(design, self._prior("effects", "sigma"), getattr(data, "path", None))
        if design.cs is not None:
            category_specific.scaling(design, getattr(data, "path", None))
        return design

    # -- the model ------------------------------------------------------------------
    def build(self, design: RegressionDesign) -> pm.Model:
        K = len(design.categories)
        coords = {
            "effect": design.effects,
            "category": list(design.categories),
            "cutpoint": [f"{a}|{b}" for a, b in zip(design.categories, design.categories[1:])],
            "obs": np.arange(design.n),
        }
        scaling = column_scaling(design)
        with pm.Model(coords=coords) as model:
            beta, eta = scaled_effects(design, scaling, self._prior("effects", "sigma"))
            mono, mono_shift = monotonic_effects(design.monotonic, observation_counts(design),
                                                 self._prior("effects", "sigma"), self._prior("monotonic", "alpha"))
            eta = eta + mono
            group_sigma = self._prior("group_sd", "sigma")
            for term in design.groups:
                eta = eta + group_effects(term, group_sigma / slope_scales(term, observation_counts(design)))
            if design.period is not None:
                model.add_coords({design.period.name: list(design.period.levels)})
                tau = pm.ZeroSumNormal(
                    f"{design.period.name}_effect",
                    sigma=self._prior("year_effects", "sigma"),
                    dims=design.period.name,
                )
                eta = eta + tau[design.period.codes]
            eta = eta + np.zeros(design.n)  # one value per row, even for y ~ 1
            nu, sigma = self._prior("cutpoints", "nu"), self._prior("cutpoints", "sigma")
            start = observed_cutpoints(self.link, design, self.family)
            cutpoints = student_t_cutpoints("cutpoints_at_mean", nu, sigma, start, "cutpoint",
                                            ordered_values=self.family == "cumulative")  # brms: others free
            thresholds, shift = cutpoints, 0.0
            if design.cs is not None:
                model.add_coords({"cs_column": design.cs_columns,
                                  "cs_effect": category_specific.labels(design.cs_columns, coords["cutpoint"])})
                _, thresholds, shift = category_specific.graph_row_cutpoints(
                    design.cs, category_specific.scaling(design), cutpoints, self._prior("effects", "sigma"), K - 1)
                if self.family == "cumulative":
                    category_specific.ordering_potential(thresholds)
            pm.Deterministic("cutpoints", cutpoints + at_reference(beta, scaling) + mono_shift + shift, dims="cutpoint")
            lowest = design.lowest if design.lowest is not None and design.lowest.any() else None

            def stars(eta, cutpoints):  # the distribution, for draws
                return pm.Categorical.dist(p=category_probabilities(self.link, eta, cutpoints, lowest,
                                                                    self.family, K))

            def log_prob(value, eta, cutpoints):  # its log probability, lean for the gradient
                return observed_log_prob(self.link, eta, cutpoints, value, K, lowest, self.family)

            observed(design.outcome, stars, (eta, thresholds), design.y, design.weights,
                     dims="obs", logp=log_prob)
        return model

    # -- after sampling -------------------------------------------------------------
    def pointwise(self, idata: xr.DataTree, design: RegressionDesign, seed: int) -> dict[str, xr.Dataset] | None:
        """Log likelihood per row (weights included) and posterior predictive draws, for all
        draws at once with numpy: the same math as ``build`` (checked against PyMC's
        draw-by-draw computation in the tests), several times faster.

        Only the two cutpoints around each observed category enter its probability
        ``F(c_y - eta) - F(c_{y-1} - eta)`` (``c_0 = -inf``, ``c_K = +inf``). A replicate of
        an unweighted row is the number of cutpoints below a latent draw
        ``eta + F^{-1}(u)``, ``u ~ U(0, 1)``: ``P(y_rep <= k) = F(c_{k+1} - eta)``, the
        categorical distribution of ``build``, floored at the row's regime. A row with
        frequency weight ``w`` stands for ``w`` observations: it gets ``w`` independent
        replicates, ``<outcome>_counts ~ Multinomial(w, p)`` over the categories
        (``carestar.likelihood.replicate_weights``). A point estimate (one draw) gets
        ``POINT_REPLICATES`` replicate data sets at that point."""
        post = idata.posterior
        if "cutpoints" not in post:
            return None
        eta = linear_predictor_draws(post, design)  # (c, d, n)
        cut = post["cutpoints"].values  # (c, d, K-1)
        per_row = design.cs is not None  # each row's thresholds, (c, d, n, K-1)
        if per_row:
            cut = category_specific.row_cutpoints(cut, post["beta_cs"].values, design.cs.to_numpy(float))
        lowest = np.zeros(design.n, int) if design.lowest is None else np.asarray(design.lowest, int)
        observed = row_log_likelihood(self.link, eta, cut, design.y, lowest, self.family, rows=per_row)
        weights = np.ones(design.n) if design.weights is None else np.asarray(design.weights, float)
        coords = {"chain": post["chain"].values, "draw": post["draw"].values, "obs": np.arange(design.n)}
        dims = ("chain", "draw", "obs")
        loglik = xr.Dataset({design.outcome: (dims, weights * observed)}, coords=coords)

        rng = np.random.default_rng(seed)
        eta, cut, pp_coords = point_replicates(eta, cut, coords)
        if design.weights is None and self.family == "cumulative":  # the latent variable: no (n, K) array
            latent = eta + link_quantile(self.link, rng.random(eta.shape))
            below = sum(((cut[..., k] if per_row else cut[..., k, None]) < latent).astype(int)
                        for k in range(cut.shape[-1]))
            replicated = np.maximum(below, lowest)  # a regime's missing lowest categories: c = -inf
            predictive = xr.Dataset({design.outcome: (dims, replicated)}, coords=pp_coords)
        else:
            p = category_probabilities(self.link, eta, cut if per_row else cut[..., None, :], lowest,
                                       self.family)  # (c, d, n, K)
            if design.weights is None:
                predictive = xr.Dataset({design.outcome: (dims, replicate_categories(rng, p))}, coords=pp_coords)
            else:
                counts = replicate_weights(rng, design.weights, p)
                predictive = xr.Dataset(
                    {f"{design.outcome}_counts": ((*dims, "category"), counts)},
                    coords={**pp_coords, "category": list(design.categories)},
                )
        return {"log_likelihood": loglik, "posterior_predictive": predictive}

    def likelihood_family(self, design: RegressionDesign):
        """The cumulative link likelihood for ``sampler=mle`` (``carestar.mle``): cutpoints
        started at the link quantiles of the observed cumulative shares."""
        from carestar.mle import Family

        lowest = design.lowest
        names = tuple(f"cutpoints[{a}|{b}]" for a, b in zip(design.categories, design.categories[1:]))
        unused = int(lowest.min()) if lowest is not None and len(lowest) else 0
        if unused:
            log.info("mle: %s not estimated: no row's regime awards the categories below %s",
                     ", ".join(names[:unused]), design.categories[unused])
        family = Family(names, observed_cutpoints(self.link, design, self.family),  # c: (K-1,) or each row's
                        lambda eta, c: row_log_likelihood(self.link, eta, c, design.y, lowest, self.family,
                                                          rows=np.ndim(c) == 2),
                        lambda eta, c: row_derivatives(self.link, eta, c, design.y, lowest, self.family,
                                                       rows=np.ndim(c) == 2),
                        sign=1, ordered=self.family == "cumulative", unused=unused)
        return family, ("cutpoints", "cutpoint")

    def effects(self) -> list[str]:
        return ["beta", "beta_cs", "cutpoints", "*_sd", "year_effect", "mo_b", "mo_total", "mo_simplex_*"]

    def monitored(self, idata: xr.DataTree) -> list[str]:
        """The sampled parameters (group effects through their non-centred ``*_z``)."""
        return ["beta", "beta_cs", "cutpoints", "*_sd", "*_z", "year_effect", "mo_b", "mo_simplex_*"]

    def tables(self, idata: xr.DataTree, design: RegressionDesign) -> dict[str, pd.DataFrame]:
        tables = {}
        if (effects := self._effects(idata, design)) is not None:
            tables["effects"] = effects
        if ordinal_figures.has_strategy(design):
            tables["figure1_probabilities"] = ordinal_figures.strategy_probabilities(self, idata, design)
        if (monotonic := monotonic_table(idata, design)) is not None:
            tables["monotonic"] = monotonic
        if (shares := variance_shares(idata.posterior, design, self.link, self.family)) is not None:
            tables["variance_shares"] = shares
        return tables

    @staticmethod
    def _effects(idata: xr.DataTree, design: RegressionDesign) -> pd.DataFrame | None:
        """The effects table: the ordinary effects, then each category-specific one per threshold."""
        parts = [t for t in (effects_of(idata, design), category_specific.effects_of(idata, design)) if t is not None]
        return pd.concat(parts, ignore_index=True) if parts else None

    def forest_panels(self, design: RegressionDesign) -> list[ForestPanel]:
        scale = LINK_SCALES[self.link]
        return [
            ForestPanel("Effects (a positive one moves ratings up)", ("beta",),
                        f"effect on the {scale} scale\n({effects_note(design, self.reference)})"),
            ForestPanel("Year effects (vs the mean year)", ("year_effect",), f"year effect, {scale} scale"),
            ForestPanel("Group SDs", tuple(f"{t.group.name}_sd" for t in design.groups),
                        f"SD of the group effects, {scale} scale",
                        zero_line=False),
            ForestPanel("Cutpoints (at x = 0)", ("cutpoints",), f"cutpoint on the {scale} scale",
                        zero_line=False),
        ]

    def figures(self, idata: xr.DataTree, design: RegressionDesign) -> dict[str, Figure]:
        figures = ordinal_figures.draw_all(self, idata, design)
        if (monotonic := monotonic_table(idata, design)) is not None:
            figures["monotonic_steps"] = step_pattern_figure(monotonic)
        return figures

    def report_section(self, idata: xr.DataTree, design: RegressionDesign) -> str:
        mode = (f"year {self.year}" if self.year is not None
                else "whole panel" if design.period is not None else "all rows")
        text = (
            f"Ordinal regression, family `{self.family}` ({FAMILY_NAMES[self.family]}), link "
            f"`{self.link}`, of `{design.outcome}` ({len(design.categories)} "
            f"ordered categories: {', '.join(design.categories)}), {mode}, {design.n} rows, "
            f"effects: {', '.join(design.effects + [f'mo({t.name})' for t in design.monotonic]) or 'none'}"
            + (f"; category-specific (one per threshold): {', '.join(design.cs_columns)}" if design.cs is not None
               else "") + "."
        )
        if (effects := self._effects(idata, design)) is not None:
            text += ("\n\nEffects on the latent scale (a positive one moves ratings up; `x[k|k+1]` a "
                     "category-specific effect at that threshold), per unit of each column and per SD of "
                     "it:\n\n" + effects_markdown(effects))
        if (monotonic := monotonic_table(idata, design)) is not None:
            text += "\n\n" + monotonic_markdown(monotonic)
        if design.cs is not None and self.family == "cumulative":
            text += "\n\n" + category_specific.gap_report(idata, design)
        if (shares := variance_shares(idata.posterior, design, self.link, self.family)) is not None:
            text += "\n\n" + variance_markdown(shares, self.link)
        return text

"""Default priors that depend neither on the units nor on the coding of a user's predictors.

Every effect column ``x_j`` of a regression design (a numeric predictor, a treatment dummy,
an interaction) enters the model centred and scaled, ``z_j = (x_j - m_j) / s_j``, with
``m_j`` and ``s_j`` its mean and SD over the observations fitted (a row counted as often as
its frequency weight times its binomial trials, SD with ``n - 1``), and::

    beta_per_sd_j ~ Normal(0, sigma)          sigma = priors.effects.sigma (2.5)
    beta_j = beta_per_sd_j / s_j              reported: per unit of the user's column

that is ``beta_j ~ Normal(0, sigma / s_j)``: rstanarm's autoscaled default (and bambi's),
weakly informative on the latent logit scale (a change of one SD of the predictor moving the
log odds by more than 5 has prior probability 5%), the same prior whether spending is in
pounds or thousands of pounds.

The intercept (binomial) or the cutpoints (ordinal) get their prior at the **average row**
(every ``z_j = 0``): it does not depend on which level of a factor is the reference, where a
prior at ``x = 0`` would sit at the reference cell, which may hold none of the outcome's upper
categories. What is reported is R's parametrisation, at ``x = 0``::

    intercept = intercept_at_mean - sum_j beta_j m_j
    cutpoints = cutpoints_at_mean + sum_j beta_j m_j          (P(y <= k) = F(c_k - eta))

Group-level slopes ``(x | g)`` get ``sd ~ HalfNormal(priors.group_sd.sigma / s_x)``, for the
same reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
from pymc.distributions.transforms import ordered

from carestar.design import GroupTerm, RegressionDesign
from carestar.errors import ConfigError, DataError

log = logging.getLogger("carestar")

__all__ = ["ColumnScaling", "check_design", "column_scaling", "scaled_effects", "effects_table"]


def checked_priors(priors, defaults: dict[str, dict[str, float]], model: str) -> dict[str, dict[str, float]]:
    """The defaults updated by ``model.priors``; an unknown block or parameter, or a scale
    that is not positive, is a ``ConfigError`` (a misspelt prior must not be ignored)."""
    out = {block: dict(values) for block, values in defaults.items()}
    for block, values in dict(priors or {}).items():
        if block not in defaults:
            raise ConfigError(f"model.priors.{block} is not a prior of the {model} model; "
                              f"expected one of {list(defaults)}")
        for key, value in dict(values or {}).items():
            if key not in defaults[block]:
                raise ConfigError(f"model.priors.{block}.{key} is not a parameter; expected one of "
                                  f"{list(defaults[block])}")
            if key in ("sigma", "nu", "alpha") and not float(value) > 0:
                raise ConfigError(f"model.priors.{block}.{key} must be > 0, got {value}")
            out[block][key] = float(value)
    return out


@dataclass(frozen=True)
class ColumnScaling:
    """Centre ``mean`` and scale ``sd`` of each effect column, in the design's order."""

    names: tuple[str, ...]
    mean: np.ndarray
    sd: np.ndarray

    def standardise(self, X: pd.DataFrame) -> np.ndarray:
        return (X.to_numpy(float) - self.mean) / self.sd


def _weighted_moments(values: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD (``n - 1``) of each column, each row counted ``weights`` times."""
    w = np.ones(len(values)) if weights is None else np.asarray(weights, float)
    total = w.sum()
    mean = (w[:, None] * values).sum(axis=0) / total
    var = (w[:, None] * (values - mean) ** 2).sum(axis=0) / max(total - 1.0, 1.0)
    return mean, np.sqrt(var)


def observation_counts(design: RegressionDesign) -> np.ndarray | None:
    """How many observations each row stands for: its frequency weight times its binomial
    trials (None: one each). Column means and SDs count these, so aggregated and expanded
    rows get the same priors."""
    counts = None if design.weights is None else np.asarray(design.weights, float)
    if design.trials is not None:
        trials = np.asarray(design.trials, float)
        counts = trials if counts is None else counts * trials
    return counts


LARGEST_VALUE = 1e150  # a predictor value whose square (for its SD) overflows is refused


def column_scaling(design: RegressionDesign, source: str | None = None) -> ColumnScaling:
    """The centre and scale of every effect column; a constant column, or values too large to
    square (1e300), are refused.

    A column with one value (a predictor that never varies in the rows fitted, or a level
    that never occurs) carries no information about its effect: it would be identified by
    its prior alone, so it is a ``DataError`` naming the column.
    """
    values = design.X.to_numpy(float)
    unusable = ~np.isfinite(values) | (np.abs(values) > LARGEST_VALUE)
    if unusable.any():
        column = int(np.flatnonzero(unusable.any(axis=0))[0])
        rows = np.flatnonzero(unusable[:, column])
        raise DataError(
            f"values too large to compute with: {', '.join(f'{v:g}' for v in values[rows[:5], column])}",
            file=source,
            column=design.effects[column],
            rows=design.rows["line"].to_numpy()[rows].tolist() if design.rows is not None and "line" in design.rows else None,
            expected=f"finite numbers of magnitude below {LARGEST_VALUE:g} (their squares must be finite)",
            hint="rescale the column (e.g. thousands instead of units), or fix the rows",
        )
    mean, sd = _weighted_moments(values, observation_counts(design))
    constant = [name for name, s in zip(design.effects, sd) if not s > 1e-12 * max(1.0, abs(values).max())]
    if constant:
        raise DataError(
            f"predictor column(s) {constant} take one value only in the rows fitted, so the "
            "data say nothing about their effect",
            file=source,
            column=constant[0],
            expected="a predictor that varies (a factor with at least two levels present)",
            hint="drop it from the formula, or check the rows (data.dropna may have removed the others)",
        )
    return ColumnScaling(tuple(design.effects), mean, sd)


def check_design(design: RegressionDesign, sigma: float, source: str | None = None) -> ColumnScaling:
    """Before any sampling: refuse constant predictors, say in the log how each one was
    standardised for its prior, and warn about separation (``carestar.separation``)."""
    from carestar.separation import separated_effects

    scaling = column_scaling(design, source)
    if design.effects:
        def describe(name, mean, sd):
            if name in design.scales:  # the study's resources: standardised before the model
                raw_mean, raw_sd = design.scales[name]
                return f"{name} (in SD units: raw mean {raw_mean:.4g}, sd {raw_sd:.4g})"
            return f"{name} (mean {mean:.4g}, sd {sd:.4g})"

        log.info(
            "predictors centred and scaled for their priors, beta_j ~ Normal(0, %g / sd_j) "
            "(effects reported per unit and per SD): %s", sigma,
            ", ".join(describe(*column) for column in zip(scaling.names, scaling.mean, scaling.sd)),
        )
    separated = separated_effects(design)
    if separated:
        log.warning(
            "complete or quasi-complete separation: the likelihood keeps rising as the effects of %s grow "
            "without bound, so their posterior is held on one side by the prior alone (and "
            "sampler=mle has no finite estimate); merge sparse categories or levels, or set "
            "an informative prior", ", ".join(separated),
        )
    return scaling


def scaled_effects(design: RegressionDesign, scaling: ColumnScaling, sigma: float):
    """In the current model: ``beta_per_sd ~ Normal(0, sigma)`` and the deterministic
    ``beta = beta_per_sd / sd`` (dim ``effect``). Returns ``(beta, centred)``: the effects per
    unit and their contribution ``z @ beta_per_sd`` to the linear predictor (0 without
    effects); ``beta @ mean`` is what moves the intercept or cutpoints to ``x = 0``."""
    if not design.effects:
        return None, 0.0
    Z = pm.Data("X_centred", scaling.standardise(design.X), dims=("obs", "effect"))
    per_sd = pm.Normal("beta_per_sd", 0.0, sigma, dims="effect")
    beta = pm.Deterministic("beta", per_sd / scaling.sd, dims="effect")
    return beta, Z @ per_sd


def at_reference(beta, scaling: ColumnScaling):
    """``sum_j beta_j m_j``: the linear predictor of the average row on the user's coding."""
    if beta is None:
        return 0.0
    return pt.dot(beta, scaling.mean)


def slope_scales(term: GroupTerm, weights: np.ndarray | None) -> np.ndarray:
    """Per coefficient of a group term: 1 for the intercept, the SD of each slope column."""
    scales = [1.0] if term.intercept else []
    if term.slopes is not None:
        _, sd = _weighted_moments(term.slopes.to_numpy(float), weights)
        scales += [float(s) if s > 0 else 1.0 for s in sd]
    return np.asarray(scales)


def _column_sds(design: RegressionDesign, scaling: ColumnScaling) -> tuple[np.ndarray, np.ndarray]:
    """Per effect: the factor from the model's ``beta`` to the effect per unit of the user's
    column, and that column's SD. The study's resources are standardised before the model
    sees them (``design.scales``): their ``beta`` is per SD of the raw column already."""
    to_unit, column_sd = [], []
    for j, name in enumerate(design.effects):
        raw_sd = design.scales.get(name, (0.0, None))[1]
        to_unit.append(1.0 / raw_sd if raw_sd is not None else 1.0)
        column_sd.append(raw_sd if raw_sd is not None else float(scaling.sd[j]))
    return np.asarray(to_unit), np.asarray(column_sd)


def effects_table(design: RegressionDesign, scaling: ColumnScaling, *, draws: np.ndarray | None = None,
                  estimate: np.ndarray | None = None, se: np.ndarray | None = None) -> pd.DataFrame:
    """Each effect per unit of the user's column and per SD of it: from posterior ``draws``
    of ``beta`` (samples x effects: mean, SD, 90% interval) or from a point ``estimate`` and
    its ``se`` (``sampler=mle``)."""
    to_unit, column_sd = _column_sds(design, scaling)
    table = pd.DataFrame({"effect": design.effects, "column_sd": column_sd})
    for label, factor in (("per_unit", to_unit), ("per_sd", to_unit * column_sd)):
        if draws is not None:
            x = draws * factor
            table[f"{label}_mean"] = x.mean(axis=0)
            table[f"{label}_sd"] = x.std(axis=0, ddof=1) if len(x) > 1 else 0.0
            table[f"{label}_q05"], table[f"{label}_q95"] = np.quantile(x, [0.05, 0.95], axis=0)
        else:
            table[f"{label}_estimate"] = np.asarray(estimate) * factor
            table[f"{label}_se"] = np.asarray(se) * factor
    return table


def effects_of(idata, design: RegressionDesign) -> pd.DataFrame | None:
    """``effects_table`` of a run: from its posterior draws, or from its maximum likelihood
    estimates and SEs (``sampler=mle``); None for a design without effects."""
    if not design.effects:
        return None
    scaling = column_scaling(design)
    if "maximum_likelihood" in idata.children:
        ml = idata["maximum_likelihood"].to_dataset()
        names = [f"beta[{e}]" for e in design.effects]
        return effects_table(design, scaling, estimate=ml["estimate"].sel(parameter=names).values,
                             se=ml["se"].sel(parameter=names).values)
    beta = idata.posterior["beta"].stack(sample=("chain", "draw")).transpose("sample", "effect").values
    return effects_table(design, scaling, draws=beta)


def effects_markdown(table: pd.DataFrame) -> str:
    """The effects table for ``report.md``: per unit of the column and per SD of it."""
    point = "per_unit_estimate" in table
    head = "estimate (SE)" if point else "mean [90% interval]"
    lines = [f"| effect | SD of the column | per unit: {head} | per SD: {head} |", "|---|---|---|---|"]
    for _, r in table.iterrows():
        cells = []
        for label in ("per_unit", "per_sd"):
            if point:
                cells.append(f"{r[f'{label}_estimate']:.4g} ({r[f'{label}_se']:.3g})")
            else:
                cells.append(f"{r[f'{label}_mean']:.4g} [{r[f'{label}_q05']:.4g}, {r[f'{label}_q95']:.4g}]")
        lines.append(f"| {str(r['effect']).replace('|', '\\|')} | {r['column_sd']:.4g} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def iid_cutpoints(name: str, dist: type[pm.Distribution], params: dict[str, float], start: np.ndarray,
                  dims: str | tuple[str, ...], ordered_values: bool = True):
    """Cutpoints, each ``dist(**params)`` i.i.d., started at ``start`` through the
    distribution's support point (a PyMC ``initval`` would stop ``sampling.log_density`` from
    rewriting the model). ``ordered_values``: increasing along the last axis, the density of
    the i.i.d. draws restricted to the ordered region (PyMC's ``ordered`` transform), whose
    prior draws are the sorted i.i.d. draws: order statistics have exactly that density,
    while a plain ``transform=ordered`` variable's prior draws are not sorted, so its prior
    predictive (and ``task=sbc``'s truths) would not come from its prior. Else free (the
    non-cumulative families, as brms), i.i.d. draws."""
    keys, start = list(params), np.asarray(start, float)

    def base(values):
        return dist.dist(**dict(zip(keys, values)))

    def draws(*args):
        *values, size = args
        out = dist.dist(**dict(zip(keys, values)), size=size)
        return pt.sort(out, axis=-1) if ordered_values and out.type.ndim else out

    return pm.CustomDist(
        name, *params.values(), dist=draws,
        logp=lambda value, *values: pm.logp(base(values), value),
        support_point=lambda rv, size, *values: pt.as_tensor(start),
        shape=start.shape, dims=dims, **({"transform": ordered} if ordered_values else {}),
    )

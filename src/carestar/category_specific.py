"""Category-specific effects ``cs(x)`` of the ordinal families (brms's syntax and signs).

``rating ~ temp + cs(contact)`` gives ``contact`` its own effect at each threshold. With
``x`` the ordinary columns (``beta``) and ``w`` the category-specific ones (``gamma_k``, one
vector per threshold ``k = 1..K-1``), each row gets its own thresholds::

    c_ik = c_k - w_i' gamma_k          eta_i = x_i' beta + group and year terms

and every family of ``models.ordinal_likelihood`` is used with ``c_ik`` in place of ``c_k``
(brms: ``thres[k] - mucs[k] - mu``): ``cumulative`` ``P(y <= k) = F(c_k - w'gamma_k - eta)``,
``sratio`` ``P(y = k | y >= k) = F(c_k - w'gamma_k - eta)``, ``acat`` (logit)
``log P(y = k+1) / P(y = k) = eta + w'gamma_k - c_k``. A positive ``gamma_k`` moves mass above
threshold ``k``, as a positive ``beta`` does everywhere. R ``ordinal::clm(..., nominal = ~ w)``
writes the cumulative model with threshold shifts ``theta_k(w) = theta_k + w' g_k``, so
``gamma_k = -g_k``; VGAM's ``parallel = FALSE ~ w``: ``gamma_k = b_k`` for ``acat``,
``-b_k`` for ``sratio``.

Priors: as the ordinary effects (``carestar.priors``), scale-free: each ``gamma_jk =
gamma_per_sd_jk / s_j``, ``gamma_per_sd_jk ~ Normal(0, priors.effects.sigma)`` on the centred,
scaled column ``(w_j - m_j) / s_j``; the thresholds' prior is at the average row, and the
reported ``cutpoints`` (at ``x = 0``, ``w = 0``) are ``c*_k + beta'm_x + gamma_k'm_w``.
The effects are ``beta_cs`` (dim ``cs_effect``), named per column and threshold,
``contactyes[1|2]``.

**Crossing thresholds (the cumulative family).** ``sratio``, ``cratio`` and ``acat`` are proper
models for any thresholds. In the cumulative family ``P(y = k) = F(c_ik - eta) -
F(c_i,k-1 - eta)`` is a probability only while ``c_i1 < ... < c_i,K-1``, and with ``gamma_k``
differing across ``k`` that fails for some ``w``. brms refuses ``cs()`` there; carestar
allows it, as R ``ordinal``'s ``nominal =`` does, restricted to the parameters under which
the thresholds are ordered at **every row of the data** (the ``c_ik`` are linear in ``w``,
so they are then ordered over the whole convex hull of the data's ``w``, not beyond it):

- the PyMC graph adds ``thresholds_ordered``, a potential of ``-inf`` wherever some row's
  thresholds cross, so the posterior has no crossing draw (NUTS proposals there are
  rejected, counted as divergences: a posterior that presses against the boundary fails
  the divergence gate, which says so);
- ``sampler=mle`` maximises over the same region (``carestar.mle``); an optimum on its
  boundary is not a clean maximum and is reported as not converged;
- ``smallest_gap`` measures, per draw, the smallest gap between adjacent thresholds over
  the data's rows: the report gives its posterior quantiles (how close the fit is to
  crossing).
Predictions for ``w`` outside the data's range are not checked; the fitted rows are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from carestar.design import RegressionDesign
from carestar.errors import ConfigError
from carestar.priors import ColumnScaling, column_scaling

__all__ = ["cs", "is_category_specific", "check_category_specific", "labels", "graph_row_cutpoints",
           "row_cutpoints", "smallest_gap"]


def cs(x):
    """``cs(x)`` in a formula: the column itself (formulae evaluates it; the design puts its
    columns apart, ``formula.formula_design``)."""
    return x


NAMESPACE = {"cs": cs}  # what formulae may call beyond its own functions


def _cs_call(term):
    """The ``cs(...)`` call of a top-level term that is nothing else, or None."""
    components = getattr(term, "components", None) or []
    if len(components) == 1 and type(components[0]).__name__ == "Call" and str(components[0].call.callee) == "cs":
        return components[0]
    return None


def is_category_specific(term) -> bool:
    """A formula term (formulae) of its own that is ``cs(...)``."""
    return _cs_call(term) is not None


def check_category_specific(formula: str, description, family: str) -> list[str]:
    """The names of the formula's ``cs()`` terms (formulae's term names, ``cs(contact)``),
    after refusing their misuse: in a model that is not ordinal, with several arguments or an
    arithmetic one, or of a column that is an ordinary effect too (not identified)."""
    for term in description.terms:  # cs() inside another call: np.log(cs(x))
        for component in getattr(term, "components", None) or []:
            if (not is_category_specific(term) and type(component).__name__ == "Call"
                    and re.search(r"\bcs\(", component.name)):
                raise ConfigError(f"model.formula '{formula}': the term '{component.name}' is not supported: cs() "
                                  "is a term of its own (y ~ x + cs(np.log(z))), not inside another call")
    terms = [t for t in description.terms if is_category_specific(t)]
    if not terms:
        return []
    if family != "ordinal":
        raise ConfigError(f"model.formula '{formula}': {_cs_call(terms[0]).name} is a category-specific effect, "
                          "which only the ordinal model has (one effect per threshold); use an ordinary effect")
    ordinary = {v for t in description.terms if not is_category_specific(t) and type(t).__name__ == "Term"
                for v in (getattr(t, "var_names", None) or ())}
    for term in terms:
        call = _cs_call(term)
        args = call.call.args
        if len(args) != 1 or type(args[0]).__name__ == "LazyOperator":
            raise ConfigError(f"model.formula '{formula}': {call.name}: cs() takes one column (or one "
                              "transformation of it, cs(np.log(x)), cs(C(x))); write cs(a) + cs(b)")
        shared = sorted(ordinary & set(term.var_names))
        if shared:
            raise ConfigError(f"model.formula '{formula}': '{shared[0]}' is both an ordinary effect and in "
                              f"{call.name}: a category-specific effect already includes the common one "
                              "(not identified); keep one of them")
    return [_cs_call(t).name for t in terms]


def inner_label(term_name: str, label: str) -> str:
    """formulae's column label of a ``cs()`` term without the call: ``cs(Cont)[High]`` ->
    ``Cont[High]`` (which ``formula.r_name`` makes ``ContHigh``)."""
    return term_name[3:-1] + label[len(term_name):]


def labels(columns, cutpoints) -> list[str]:
    """The ``cs_effect`` coordinates, column-major: ``contactyes[1|2]``, ``contactyes[2|3]``, ..."""
    return [f"{column}[{cut}]" for column in columns for cut in cutpoints]


def graph_row_cutpoints(W: pd.DataFrame, scaling, cutpoints_at_mean, sigma: float, n_cut: int):
    """In the current model: ``beta_cs_per_sd ~ Normal(0, sigma)`` (dim ``cs_effect``), the
    deterministic ``beta_cs`` per unit of the columns, and the rows' thresholds
    ``c*_k - z_i' gamma_per_sd_k`` (obs x cutpoint). Returns ``(beta_cs, row cutpoints, shift)``
    with ``shift = gamma_k' m`` (what moves the thresholds to ``w = 0``)."""
    Z = pm.Data("W_centred", scaling.standardise(W), dims=("obs", "cs_column"))
    per_sd = pm.Normal("beta_cs_per_sd", 0.0, sigma, dims="cs_effect")
    beta_cs = pm.Deterministic("beta_cs", per_sd / np.repeat(scaling.sd, n_cut), dims="cs_effect")
    gamma = per_sd.reshape((len(scaling.names), n_cut))
    rows = cutpoints_at_mean[None, :] - Z @ gamma
    shift = pt.dot(scaling.mean, beta_cs.reshape((len(scaling.names), n_cut)))
    return beta_cs, rows, shift


def ordering_potential(rows) -> None:
    """``thresholds_ordered``: 0 where every row's thresholds increase, ``-inf`` elsewhere
    (the cumulative family; see the module docstring)."""
    if rows.type.shape[-1] is not None and rows.type.shape[-1] < 2:
        return
    gaps = rows[:, 1:] - rows[:, :-1]
    pm.Potential("thresholds_ordered", pt.switch(pt.all(gaps > 0), 0.0, -np.inf))


def row_cutpoints(cutpoints: np.ndarray, beta_cs: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Each row's thresholds with numpy: ``cutpoints`` (..., K-1) at ``w = 0`` and ``beta_cs``
    (..., J*(K-1)) -> ``c_k - w_i' gamma_k``, (..., n, K-1)."""
    cut = np.asarray(cutpoints, float)
    n_cut = cut.shape[-1]
    gamma = np.asarray(beta_cs, float).reshape(cut.shape[:-1] + (-1, n_cut))  # (..., J, K-1)
    return cut[..., None, :] - np.einsum("nj,...jk->...nk", np.asarray(W, float), gamma)


def smallest_gap(rows: np.ndarray) -> np.ndarray:
    """The smallest gap between adjacent thresholds over the rows, (..., n, K-1) -> (...):
    negative where some row's thresholds cross."""
    if rows.shape[-1] < 2:
        return np.full(rows.shape[:-2], np.inf)
    return np.diff(rows, axis=-1).min(axis=(-2, -1))


def scaling(design: RegressionDesign, source: str | None = None) -> ColumnScaling:
    """Centre and scale of each category-specific column (``carestar.priors``' rules: a
    constant column refused)."""
    return column_scaling(replace(design, X=design.cs, scales={}), source)


@dataclass
class Thresholds:
    """The category-specific part of ``carestar.mle``'s free parameters: ``J x (K-1)`` effects
    per SD of their centred columns, ``gamma_per_sd`` (column-major, as ``labels``)."""

    design: RegressionDesign
    n_cut: int

    def __post_init__(self):
        self.scaling = scaling(self.design)
        self.Z = self.scaling.standardise(self.design.cs)
        self.size = len(self.scaling.names) * self.n_cut

    def names(self, cutpoint_names) -> list[str]:
        cuts = [n[n.index("[") + 1:-1] for n in cutpoint_names]
        return [f"beta_cs[{label}]" for label in labels(self.design.cs_columns, cuts)]

    def gamma(self, per_sd: np.ndarray) -> np.ndarray:
        return np.asarray(per_sd, float).reshape(-1, self.n_cut)

    def rows(self, at_mean: np.ndarray, per_sd: np.ndarray) -> np.ndarray:
        """Each row's thresholds (n, K-1) from those at the average row."""
        return np.asarray(at_mean, float)[None, :] - self.Z @ self.gamma(per_sd)

    def per_unit(self, per_sd: np.ndarray) -> np.ndarray:
        return (self.gamma(per_sd) / self.scaling.sd[:, None]).ravel()

    def shift(self, per_sd: np.ndarray) -> np.ndarray:
        """``gamma_k' m``: from the average row's thresholds to those at ``w = 0``."""
        return self.scaling.mean @ self.gamma(self.per_unit(per_sd))

    def per_sd(self, per_unit: np.ndarray) -> np.ndarray:
        return (self.gamma(per_unit) * self.scaling.sd[:, None]).ravel()


def effects_of(idata, design: RegressionDesign) -> pd.DataFrame | None:
    """``carestar.priors.effects_table`` of the category-specific effects (per unit of each
    column and per SD of it, one row per column and threshold), from the draws or from the
    maximum likelihood estimates; None without ``cs()`` terms."""
    from carestar.priors import effects_table

    if design.cs is None:
        return None
    cuts = list(idata.posterior["cutpoints"].coords["cutpoint"].values)
    names = labels(design.cs_columns, cuts)
    s = scaling(design)
    pseudo = replace(design, X=pd.DataFrame(columns=names, dtype=float), scales={})
    repeated = ColumnScaling(tuple(names), np.repeat(s.mean, len(cuts)), np.repeat(s.sd, len(cuts)))
    if "maximum_likelihood" in idata.children:
        ml = idata["maximum_likelihood"].to_dataset().sel(parameter=[f"beta_cs[{n}]" for n in names])
        return effects_table(pseudo, repeated, estimate=ml["estimate"].values, se=ml["se"].values)
    draws = idata.posterior["beta_cs"].stack(sample=("chain", "draw")).transpose("sample", "cs_effect").values
    return effects_table(pseudo, repeated, draws=draws)


def gap_report(idata, design: RegressionDesign) -> str:
    """For the report of a cumulative model with ``cs()`` terms: the smallest gap between
    adjacent thresholds over the data's rows (quantiles over the draws)."""
    post = idata.posterior
    rows = row_cutpoints(post["cutpoints"].values, post["beta_cs"].values, design.cs.to_numpy(float))
    gap = smallest_gap(rows).ravel()
    where = (f"5%, 50%, 95% quantiles over the draws {np.quantile(gap, 0.05):.3g}, {np.median(gap):.3g}, "
             f"{np.quantile(gap, 0.95):.3g}" if gap.size > 1 else f"{gap[0]:.3g}")
    return ("Thresholds with category-specific effects (cumulative family): the model holds only where each "
            "row's thresholds increase, so draws (and the maximum) are restricted to thresholds ordered at "
            f"every row of the data; the smallest gap between adjacent thresholds over the rows: {where}"
            f"{' (crossed in ' + str(int((gap <= 0).sum())) + ' draws)' if (gap <= 0).any() else ''}.")

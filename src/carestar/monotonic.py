"""Monotonic effects ``mo(x)`` of an ordered predictor (brms's parametrisation).

Math
----
For a predictor with levels ``0, 1, ..., D`` (whole numbers, or an ordered factor's codes)::

    mo(x_i) = D * sum_{k <= x_i} zeta_k,      zeta = (zeta_1, ..., zeta_D) a simplex
    eta_i  += b * mo(x_i)

``zeta_k`` is the share of the whole effect gained in the step from level ``k - 1`` to
``k``; ``b`` is the average effect of one step and ``b * D`` (``mo_total``) the effect of
going from the lowest level to the highest. With ``zeta`` uniform, ``mo(x) = x`` and ``b``
is an ordinary slope per unit of ``x``. (Bürkner & Charpentier 2020; brms's ``bsp`` and
``simo``.)

Priors (``carestar.priors``'s scale-free rule, ``model.priors``):

- ``b ~ Normal(0, effects.sigma / s_x)``, ``s_x`` the SD of ``x``'s levels over the
  observations fitted (weights and trials counted): the prior of a linear slope of ``x``,
  which ``b`` is when the steps are equal; so the total effect ``b * D`` has SD
  ``effects.sigma * D / s_x``. Sampled as ``mo_b_per_sd``; ``mo_b`` is per step.
- ``zeta ~ Dirichlet(monotonic.alpha, ..., monotonic.alpha)``, ``alpha = 1`` (brms's
  default ``dirichlet(1)``: every step pattern equally likely a priori).

Like every effect column, the term enters the model's linear predictor centred at the
average row (``b D (c(x_i) - m)``, ``m`` the observations' mean of ``c(x) = sum_{k<=x}
zeta_k``), so the cutpoints' (or intercept's) prior does not depend on the lowest level;
reported cutpoints and intercepts are at ``x = 0`` (the lowest level), as R reports them.

Variables: ``mo_b_per_sd``, ``mo_b``, ``mo_total`` (dim ``monotonic``, one per term) and
``mo_simplex_<x>`` (dim ``mo_step_<x>``, labelled by the level each step reaches).
``sampler=mle`` optimises ``b`` per SD and the simplex through a softmax of ``D - 1``
free values (the last fixed at 0): ``MonotonicBlock``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from carestar.errors import ConfigError, DataError

__all__ = ["MonotonicTerm", "split_monotonic", "monotonic_term", "MonotonicBlock"]

log = logging.getLogger("carestar")

_MO = re.compile(r"^mo\(\s*(?P<name>[A-Za-z_.][\w.]*)\s*\)$")


@dataclass(frozen=True)
class MonotonicTerm:
    """``mo(name)``: each row's level ``codes[i]`` in ``0..D``, ``levels`` their labels."""

    name: str
    levels: tuple[str, ...]
    codes: np.ndarray

    @property
    def D(self) -> int:
        return len(self.levels) - 1

    @property
    def steps(self) -> list[str]:
        """One label per step: the level it reaches."""
        return list(self.levels[1:])

    @property
    def simplex_name(self) -> str:
        return f"mo_simplex_{self.name}"

    @property
    def step_dim(self) -> str:
        return f"mo_step_{self.name}"


# ----------------------------------------------------------------------------- parsing


def _top_level_terms(rhs: str) -> list[str]:
    """The right-hand side split at the ``+`` signs outside parentheses."""
    terms, depth, start = [], 0, 0
    for i, ch in enumerate(rhs):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "+" and depth == 0:
            terms.append(rhs[start:i].strip())
            start = i + 1
    terms.append(rhs[start:].strip())
    return terms


def split_monotonic(formula: str) -> tuple[str, list[str]]:
    """``"y ~ x + mo(d)"`` -> (``"y ~ x"``, ``["d"]``): the ``mo()`` main terms taken out
    (formulae cannot evaluate them) and their columns; ``y ~ mo(d)`` leaves ``y ~ 1``.

    ``mo()`` anywhere else (an interaction, a group term, an expression inside it) is a
    ``ConfigError`` naming the term."""
    if not re.search(r"(?<![\w.])mo\s*\(", formula):
        return formula, []
    lhs, _, rhs = formula.partition("~")
    kept, names = [], []
    for term in _top_level_terms(rhs):
        m = _MO.match(term)
        if m:
            names.append(m.group("name"))
        elif re.search(r"(?<![\w.])mo\s*\(", term):
            raise ConfigError(
                f"model.formula '{formula}': the term '{term}' is not supported: mo() is a main "
                "effect of one column, mo(x), added with '+' (no interactions, no mo() inside group "
                "terms or expressions)"
            )
        else:
            kept.append(term)
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"model.formula '{formula}': mo({duplicated[0]}) appears twice")
    rest = [t for t in kept if t]
    return f"{lhs.strip()} ~ {' + '.join(rest) if rest else '1'}", names


def monotonic_term(name: str, values: pd.Series, *, levels: list[str] | None, file: str | None,
                   lines: np.ndarray, labels: pd.Series | None = None) -> MonotonicTerm:
    """The ``mo(name)`` term of a column: an ordered factor (``levels`` given: the data's
    ``labels`` in that order) or whole numbers ``0..D`` (``D`` the largest value); anything
    else is a ``DataError`` naming the column and rows (``lines``: CSV line numbers)."""
    lines = np.asarray(lines)
    if levels is not None:
        order = [str(v) for v in levels]
        codes = pd.Categorical(labels, categories=order).codes.astype(int)
    elif pd.api.types.is_bool_dtype(values):
        order, codes = ["false", "true"], values.to_numpy(dtype=int)
    elif pd.api.types.is_numeric_dtype(values):
        x = values.to_numpy(dtype=float)
        bad = ~np.isfinite(x) | (x < 0) | (np.mod(x, 1) != 0)
        if bad.any():
            shown = ", ".join(f"{v:g}" for v in x[bad][:5])
            raise DataError(
                f"mo({name}) needs an ordered predictor, but the column has values {shown}",
                file=file, column=name, rows=lines[bad].tolist(),
                expected="whole numbers 0, 1, ..., D (the levels of an ordered predictor)",
                hint=f"recode the rows, or list the column's levels in order in data.levels.{name}",
            )
        codes = x.astype(int)
        order = [str(v) for v in range(int(codes.max()) + 1)]
    else:
        raise DataError(
            f"mo({name}) needs an ordered predictor, but the column is text, so its order is not known",
            file=file, column=name,
            expected="whole numbers 0..D, or text levels listed in order in data.levels",
            hint=f"list them, e.g. data.levels.{name}=[{','.join(dict.fromkeys(values.astype(str)))}]"
            if values.nunique() <= 8 else f"list the levels in data.levels.{name}, lowest first",
        )
    if len(order) < 2 or np.unique(codes).size < 2:
        raise DataError(
            f"mo({name}): the predictor takes one value only in the rows fitted, so the data say "
            "nothing about its effect",
            file=file, column=name, expected="at least two levels present",
        )
    unseen = [level for k, level in enumerate(order) if not (codes == k).any()]
    if unseen:
        log.warning("mo(%s): level(s) %s never occur in the rows fitted, so the steps to and from them "
                    "are told apart by their Dirichlet prior alone (mo() counts levels from 0; list the "
                    "levels in data.levels.%s to count from the lowest one)", name, unseen, name)
    return MonotonicTerm(name, tuple(order), codes)


# ----------------------------------------------------------------------------- shares and scales


def level_shares(term: MonotonicTerm, counts: np.ndarray | None) -> np.ndarray:
    """The share of the observations (``counts``: weights times trials) at each level 0..D."""
    w = np.ones(term.codes.size) if counts is None else np.asarray(counts, float)
    return np.bincount(term.codes, weights=w, minlength=term.D + 1) / w.sum()


def level_sd(term: MonotonicTerm, counts: np.ndarray | None) -> float:
    """SD (``n - 1``) of the levels over the observations: the scale of ``b``'s prior."""
    w = np.ones(term.codes.size) if counts is None else np.asarray(counts, float)
    mean = np.dot(w, term.codes) / w.sum()
    return float(np.sqrt(np.dot(w, (term.codes - mean) ** 2) / max(w.sum() - 1.0, 1.0)))


def cumulative(simplex: np.ndarray) -> np.ndarray:
    """``c(k) = sum_{j<=k} zeta_j`` for k = 0..D (``c(0) = 0``, ``c(D) = 1``), last axis."""
    zero = np.zeros((*simplex.shape[:-1], 1))
    return np.concatenate([zero, np.cumsum(simplex, axis=-1)], axis=-1)


# ----------------------------------------------------------------------------- the PyMC graph


def monotonic_effects(terms, counts: np.ndarray | None, sigma: float, alpha: float):
    """In the current PyMC model: the priors of the module docstring and the terms'
    **centred** contribution to the linear predictor, with ``shift`` = their contribution at
    the average row (``b D m``), what moves the cutpoints (+) or intercept (-) to ``x = 0``.
    Returns ``(contribution, shift)``, ``(0.0, 0.0)`` without terms."""
    if not terms:
        return 0.0, 0.0
    import pymc as pm
    import pytensor.tensor as pt

    model = pm.modelcontext(None)
    model.add_coords({"monotonic": [t.name for t in terms]})
    scale = np.array([level_sd(t, counts) for t in terms])
    D = np.array([t.D for t in terms], float)
    per_sd = pm.Normal("mo_b_per_sd", 0.0, sigma, dims="monotonic")
    b = pm.Deterministic("mo_b", per_sd / scale, dims="monotonic")
    pm.Deterministic("mo_total", b * D, dims="monotonic")
    contribution, shift = 0.0, 0.0
    for j, term in enumerate(terms):
        model.add_coords({term.step_dim: term.steps})
        zeta = pm.Dirichlet(term.simplex_name, a=np.full(term.D, alpha), dims=term.step_dim)
        cum = pt.concatenate([pt.zeros(1), pt.cumsum(zeta)])
        mean = pt.dot(level_shares(term, counts), cum)
        contribution = contribution + b[j] * term.D * (cum[term.codes] - mean)
        shift = shift + b[j] * term.D * mean
    return contribution, shift


# ----------------------------------------------------------------------------- draws (numpy)


def contribution_draws(post, terms) -> np.ndarray | float:
    """``sum_terms b D c(x_i)`` for every (chain, draw, row), uncentred (the reported
    cutpoints and intercept are at the lowest level): what ``carestar.likelihood`` adds."""
    if not terms:
        return 0.0
    b = post["mo_b"].values  # (c, d, terms)
    total = 0.0
    for j, term in enumerate(terms):
        cum = cumulative(post[term.simplex_name].values)  # (c, d, D + 1)
        total = total + b[:, :, j, None] * term.D * cum[:, :, term.codes]
    return total


def average_contribution_draws(post, terms, counts: np.ndarray | None) -> np.ndarray | float:
    """``sum_terms b D m`` per (chain, draw): the terms at the average row (Figure 1 puts the
    other predictors at their means)."""
    if not terms:
        return 0.0
    b = post["mo_b"].values
    return sum(b[:, :, j] * term.D * (cumulative(post[term.simplex_name].values) @ level_shares(term, counts))
               for j, term in enumerate(terms))


# ----------------------------------------------------------------------------- sampler=mle


@dataclass(frozen=True)
class MonotonicBlock:
    """The terms' free parameters for ``carestar.mle``: per term, ``b`` per SD of the levels
    and ``D - 1`` softmax values (the last step's fixed at 0)."""

    terms: tuple[MonotonicTerm, ...]
    scale: np.ndarray
    shares: tuple[np.ndarray, ...]

    @classmethod
    def of(cls, terms, counts: np.ndarray | None) -> "MonotonicBlock":
        terms = tuple(terms)
        return cls(terms, np.array([level_sd(t, counts) for t in terms]),
                   tuple(level_shares(t, counts) for t in terms))

    @property
    def size(self) -> int:
        return sum(t.D for t in self.terms)

    def unpack(self, u: np.ndarray) -> dict[str, object]:
        per_sd, simplices, at = [], [], 0
        for t in self.terms:
            per_sd.append(u[at])
            logits = np.r_[u[at + 1:at + t.D], 0.0]
            e = np.exp(logits - logits.max())
            simplices.append(e / e.sum())
            at += t.D
        return {"per_sd": np.asarray(per_sd), "simplices": simplices}

    def pack(self, b=(), simplices=()) -> np.ndarray:
        """Free values from ``b`` per step and the simplices (uniform steps when not given)."""
        out = []
        for j, t in enumerate(self.terms):
            zeta = np.asarray(simplices[j], float) if len(simplices) else np.full(t.D, 1.0 / t.D)
            per_sd = float(b[j]) * self.scale[j] if len(b) else 0.0
            logits = np.log(np.clip(zeta, 1e-300, None))
            out += [per_sd, *(logits[:-1] - logits[-1])]
        return np.asarray(out, float)

    def centred_eta(self, v: dict) -> np.ndarray | float:
        eta = 0.0
        for j, t in enumerate(self.terms):
            cum = cumulative(v["simplices"][j])
            eta = eta + v["per_sd"][j] / self.scale[j] * t.D * (cum[t.codes] - cum @ self.shares[j])
        return eta

    def shift(self, v: dict) -> float:
        return float(sum(v["per_sd"][j] / self.scale[j] * t.D * (cumulative(v["simplices"][j]) @ self.shares[j])
                         for j, t in enumerate(self.terms)))

    def reported(self, v: dict) -> dict[str, np.ndarray]:
        if not self.terms:
            return {}
        b = v["per_sd"] / self.scale
        D = np.array([t.D for t in self.terms], float)
        return {"mo_b": b, "mo_total": b * D, "mo_simplex": np.concatenate(v["simplices"])}

    def names(self) -> list[str]:
        if not self.terms:
            return []
        out = [f"mo_b[{t.name}]" for t in self.terms] + [f"mo_total[{t.name}]" for t in self.terms]
        return out + [f"{t.simplex_name}[{s}]" for t in self.terms for s in t.steps]

    def posterior_variables(self, reported: dict) -> tuple[dict, dict]:
        """The estimate as one-draw posterior variables (what ``contribution_draws`` reads)."""
        if not self.terms:
            return {}, {}
        def var(values, dims):
            return (("chain", "draw", *dims), np.asarray(values, float)[None, None])
        data = {"mo_b": var(reported["mo_b"], ("monotonic",)),
                "mo_total": var(reported["mo_total"], ("monotonic",))}
        coords = {"monotonic": [t.name for t in self.terms]}
        at = 0
        for t in self.terms:
            data[t.simplex_name] = var(reported["mo_simplex"][at:at + t.D], (t.step_dim,))
            coords[t.step_dim] = t.steps
            at += t.D
        return data, coords

    def posterior_mean(self, post) -> tuple[np.ndarray, list[np.ndarray]]:
        """``(b, simplices)`` at the posterior means (for the marginal likelihood there)."""
        if not self.terms:
            return np.zeros(0), []
        b = post["mo_b"].mean(("chain", "draw")).values
        return b, [post[t.simplex_name].mean(("chain", "draw")).values for t in self.terms]

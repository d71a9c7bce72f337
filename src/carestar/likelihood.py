"""Observed variables with optional frequency weights, and the group-level terms.

Frequency weights make a table of response patterns fit like its expanded rows: row i's
log likelihood is ``w_i * log p(y_i)``. The weighted variable stays an observed random
variable (a ``pm.CustomDist`` around the unweighted distribution), so the log likelihood
group (per pattern, weighted) still works. Predictive checks draw ``w_i`` independent
replicates of row i (``replicate_weights``), as its expanded rows would get, not one
replicate counted ``w_i`` times.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from carestar.design import GroupTerm, RegressionDesign
from carestar.monotonic import contribution_draws


def observed(
    name: str,
    make_dist: Callable[..., pt.TensorVariable],
    params: tuple,
    value: np.ndarray,
    weights: np.ndarray | None,
    dims: str,
    logp: Callable[..., pt.TensorVariable] | None = None,
) -> pt.TensorVariable:
    """``make_dist(*params)`` as the likelihood of ``value``, each row counted ``weights`` times.

    ``logp(value, *params)``, when given, is the distribution's log probability in a form
    cheaper to differentiate (it must equal ``pm.logp(make_dist(*params), value)``).
    """
    row_logp = logp or (lambda v, *args: pm.logp(make_dist(*args), v))
    if weights is None:
        return pm.CustomDist(
            name,
            *params,
            dist=lambda *args: make_dist(*args[:-1]),
            logp=row_logp,
            observed=value,
            dims=dims,
        )
    w = np.asarray(weights, dtype=float)
    return pm.CustomDist(
        name,
        *params,
        w,
        dist=lambda *args: make_dist(*args[:-2]),
        logp=lambda v, *args: args[-1] * row_logp(v, *args[:-1]),
        observed=value,
        dims=dims,
    )


def group_effects(term: GroupTerm, sd_sigma: float | np.ndarray) -> pt.TensorVariable:
    """Non-centred varying intercepts and slopes of one group term, per row.

    ``b_{g,j} = sd_j * z_{g,j}``, ``z ~ N(0, 1)``, ``sd_j ~ HalfNormal(sd_sigma_j)`` (one
    value, or one per coefficient), independent across the term's coefficients j (intercept
    and slopes). Returns the row contribution ``b_{g[i],0} + sum_j b_{g[i],j} x_{ij}``.
    """
    group = term.group.name
    model = pm.modelcontext(None)
    coef_dim = f"{group}_coef"
    model.add_coords({group: list(term.group.levels), coef_dim: term.coefficients})
    sd = pm.HalfNormal(f"{group}_sd", sigma=sd_sigma, dims=coef_dim)
    z = pm.Normal(f"{group}_z", 0.0, 1.0, dims=(group, coef_dim))
    b = pm.Deterministic(f"{group}_effect", z * sd, dims=(group, coef_dim))
    return (b[term.group.codes] * term.columns()).sum(axis=-1)


def linear_predictor_draws(post, design: RegressionDesign) -> np.ndarray:
    """The linear predictor for every (chain, draw, row), from posterior draws with numpy.

    ``intercept`` (if the posterior has one) + ``X beta`` + monotonic terms + each group term's
    ``<group>_effect`` rows (``group_effects``' math) + ``<period>_effect`` (year effects):
    what ``build`` adds up, for the models' vectorised ``pointwise`` passes.
    """
    shape = (post.sizes["chain"], post.sizes["draw"], design.n)
    eta = np.zeros(shape)
    if "intercept" in post:
        eta = eta + post["intercept"].values[:, :, None]
    if design.effects:
        eta = eta + np.einsum("cdp,np->cdn", post["beta"].values, design.X.to_numpy(float))
    eta = eta + contribution_draws(post, design.monotonic)  # mo(x) terms (carestar.monotonic)
    for term in design.groups:
        b = post[f"{term.group.name}_effect"].values[:, :, term.group.codes, :]  # (c, d, n, coef)
        eta = eta + (b * term.columns()[None, None]).sum(axis=-1)
    if design.period is not None:
        eta = eta + post[f"{design.period.name}_effect"].values[:, :, design.period.codes]
    return eta


POINT_REPLICATES = 1000  # replicate data sets drawn at a point estimate (sampler=map / mle)


def point_replicates(*arrays_and_coords):
    """For a point estimate (one chain, one draw): each array repeated ``POINT_REPLICATES``
    times along ``draw``, and the coordinates to match, so that predictive checks show the
    spread of data sets drawn at the estimate rather than one noisy replicate. Posterior
    draws pass through unchanged (one replicate per draw)."""
    *arrays, coords = arrays_and_coords
    if arrays[0].shape[:2] != (1, 1):
        return (*arrays, coords)
    repeated = [np.repeat(a, POINT_REPLICATES, axis=1) for a in arrays]
    return (*repeated, {**coords, "draw": np.arange(POINT_REPLICATES)})


def whole_weights(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """Frequency weights as whole numbers of observations: as they are when whole, else
    rounded at random (``floor(w)`` plus one with probability ``w - floor(w)``), which keeps
    each row's expected count."""
    w = np.asarray(weights, float)
    base = np.floor(w)
    if np.array_equal(base, w):
        return w.astype(np.int64)
    return (base + (rng.random(w.shape) < w - base)).astype(np.int64)


def replicate_weights(rng: np.random.Generator, weights: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """The category counts of ``w_i`` independent replicates of each row: one
    ``Multinomial(w_i, p_i)`` per (chain, draw, row); ``probabilities`` (..., rows, K)."""
    p = np.clip(probabilities, 0.0, None)
    p = p / p.sum(axis=-1, keepdims=True)
    n = np.broadcast_to(whole_weights(rng, weights), p.shape[:-1])
    return rng.multinomial(n, p)

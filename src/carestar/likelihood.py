"""Observed variables with optional frequency weights, and the group-level terms.

Frequency weights make a table of response patterns fit like its expanded rows: row i's
log likelihood is ``w_i * log p(y_i)``. The weighted variable stays an observed random
variable (a ``pm.CustomDist`` around the unweighted distribution), so the log likelihood
group (per pattern, weighted) and posterior predictive draws (per pattern, unweighted)
still work.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from carestar.design import GroupTerm, RegressionDesign


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


def group_effects(term: GroupTerm, sd_sigma: float) -> pt.TensorVariable:
    """Non-centred varying intercepts and slopes of one group term, per row.

    ``b_{g,j} = sd_j * z_{g,j}``, ``z ~ N(0, 1)``, ``sd_j ~ HalfNormal(sd_sigma)``, independent
    across the term's coefficients j (intercept and slopes). Returns the row contribution
    ``b_{g[i],0} + sum_j b_{g[i],j} x_{ij}``.
    """
    group = term.group.name
    coefs = (["Intercept"] if term.intercept else []) + (
        [] if term.slopes is None else list(term.slopes.columns)
    )
    model = pm.modelcontext(None)
    coef_dim = f"{group}_coef"
    model.add_coords({group: list(term.group.levels), coef_dim: coefs})
    sd = pm.HalfNormal(f"{group}_sd", sigma=sd_sigma, dims=coef_dim)
    z = pm.Normal(f"{group}_z", 0.0, 1.0, dims=(group, coef_dim))
    b = pm.Deterministic(f"{group}_effect", z * sd, dims=(group, coef_dim))
    rows = b[term.group.codes]
    columns = ([np.ones(len(term.group.codes))] if term.intercept else []) + (
        [] if term.slopes is None else [term.slopes[c].to_numpy(float) for c in term.slopes]
    )
    return (rows * np.column_stack(columns)).sum(axis=-1)


def linear_predictor_draws(post, design: RegressionDesign) -> np.ndarray:
    """The linear predictor for every (chain, draw, row), from posterior draws with numpy.

    ``intercept`` (if the posterior has one) + ``X beta`` + each group term's
    ``<group>_effect`` rows (``group_effects``' math) + ``<period>_effect`` (year effects):
    what ``build`` adds up, for the models' vectorised ``pointwise`` passes.
    """
    shape = (post.sizes["chain"], post.sizes["draw"], design.n)
    eta = np.zeros(shape)
    if "intercept" in post:
        eta = eta + post["intercept"].values[:, :, None]
    if design.effects:
        eta = eta + np.einsum("cdp,np->cdn", post["beta"].values, design.X.to_numpy(float))
    for term in design.groups:
        b = post[f"{term.group.name}_effect"].values[:, :, term.group.codes, :]  # (c, d, n, coef)
        columns = ([np.ones(design.n)] if term.intercept else []) + (
            [] if term.slopes is None else [term.slopes[c].to_numpy(float) for c in term.slopes]
        )
        eta = eta + (b * np.column_stack(columns)[None, None]).sum(axis=-1)
    if design.period is not None:
        eta = eta + post[f"{design.period.name}_effect"].values[:, :, design.period.codes]
    return eta

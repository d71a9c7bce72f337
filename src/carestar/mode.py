"""Posterior mode (``sampler.name=map``), log likelihood at a point, AIC and BIC.

Which space is optimised, and why
---------------------------------
``fit_map`` calls ``pm.find_MAP``, which moves over the *unconstrained* value variables
(``sigma_log__``, ...) for a well-behaved optimiser, but maximises
``model.logp(jacobian=False)``: the density of the *original* parameters, without the
log-Jacobian of the transforms. So the optimum is the mode of the posterior density of the
parameters as written in the model (sigma, not log sigma), and with flat or weak priors it
is the maximum likelihood estimate (e.g. the ML ``sigma^2 = S/n`` of a normal sample, not
the ``S/(n-1)`` that the log-sigma density peaks at). The mode is invariant to how the
optimiser parametrises the search, so the unconstrained space costs nothing in meaning.

For hierarchical models the joint mode over group effects and their SD is not the ML
estimate of the marginal likelihood (lme4's); and it can sit at SD -> 0 with flat priors.
Use it there as a quick look only.

The result is a ``DataTree`` whose ``posterior`` has one chain and one draw, so tables,
summaries and the run directory treat it as a (degenerate) posterior; ``log_likelihood``
holds each observed row's log likelihood at the mode, and ``fit`` / ``optimizer_result``
come from PyMC.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr

log = logging.getLogger(__name__)

# Functions evaluated once (the log likelihood at one point) run in PyTensor's Python mode:
# compiling them with numba (PyTensor's default) took about 20 s on a cold cache, 1 s warm.
ONE_SHOT = "FAST_COMPILE"


@contextmanager
def python_only() -> Iterator[None]:
    """No compiled code at all for what runs inside: besides ``mode=ONE_SHOT``, ops with an
    inner graph (the softmax of the Dirichlet's simplex transform) would still compile
    their inner function to C, about 7 s on a cold cache for one evaluation."""
    with pytensor.config.change_flags(cxx=""):
        yield


__all__ = [
    "fit_map",
    "log_likelihood_at",
    "information_criteria",
    "n_free_parameters",
    "n_observations",
    "point_from_posterior",
    "posterior_mean_point",
]


def fit_map(model: pm.Model, seed: int | None = None, **optimizer_kwargs: Any) -> xr.DataTree:
    """Posterior mode of ``model`` as a one-chain, one-draw ``DataTree`` (see module doc)."""
    with model:
        idata = pm.find_MAP(
            random_seed=seed,
            jitter=False,
            progressbar=False,
            return_inferencedata=True,
            **optimizer_kwargs,
        )
        try:
            pm.compute_log_likelihood(idata, model=model, progressbar=False, extend_inferencedata=True)
        except Exception as exc:  # a model without observed variables has none
            log.warning("no log likelihood at the mode: %s", exc)
    res = idata["optimizer_result"].dataset if "optimizer_result" in idata.children else None
    if res is not None and "success" in res and not bool(res["success"].values):
        log.warning("the optimiser did not report convergence: %s", res.get("message", ""))
    idata.attrs["inference"] = "posterior mode (pm.find_MAP, jacobian=False)"
    return idata


def point_from_posterior(model: pm.Model, idata: xr.DataTree, chain: int = 0, draw: int = 0) -> dict:
    """The free variables' values at one draw of ``idata``'s posterior, as a point dict."""
    post = idata["posterior"]
    return {
        rv.name: np.asarray(post[rv.name].isel(chain=chain, draw=draw).values)
        for rv in model.free_RVs
    }


def posterior_mean_point(model: pm.Model, idata: xr.DataTree) -> dict:
    """The free variables' posterior means (for a one-draw mode: the mode itself)."""
    post = idata["posterior"]
    return {rv.name: np.asarray(post[rv.name].mean(("chain", "draw")).values) for rv in model.free_RVs}


def _value_point(model: pm.Model, point: dict) -> dict:
    """A point keyed by value-variable names (``sigma_log__``) from either kind of key."""
    out = {}
    for rv in model.free_RVs:
        vv = model.rvs_to_values[rv]
        if vv.name in point:
            out[vv.name] = np.asarray(point[vv.name])
        elif rv.name in point:
            value = np.asarray(point[rv.name], dtype=vv.dtype)
            tr = model.rvs_to_transforms.get(rv)
            if tr is not None:
                value = tr.forward(pt.as_tensor_variable(value), *rv.owner.inputs).eval(mode=ONE_SHOT)
            out[vv.name] = np.asarray(value, dtype=vv.dtype)
        else:
            raise KeyError(f"the point has no value for '{rv.name}' (or '{vv.name}')")
    return out


def log_likelihood_at(model: pm.Model, point: dict) -> float:
    """Sum over observed variables of their log likelihood at ``point``, weights included.

    ``point`` may give each free variable on its own scale (``sigma``) or its value
    variable (``sigma_log__``); deterministics are ignored. Priors are not included.
    """
    with python_only():
        fn = model.compile_logp(vars=model.observed_RVs, jacobian=False, sum=True, mode=ONE_SHOT)
        return float(fn(_value_point(model, point)))


def n_free_parameters(model: pm.Model) -> int:
    """Number of free scalar parameters (every element of every free variable).

    For hierarchical models this counts each group effect too (a conditional count, not
    lme4's, which counts only the variance components).
    """
    with python_only():
        ip = model.initial_point()
    return int(sum(np.size(ip[model.rvs_to_values[rv].name]) for rv in model.free_RVs))


def n_observations(model: pm.Model) -> int:
    """Number of observed values (rows; not the sum of frequency weights)."""
    return int(sum(np.size(model.rvs_to_values[rv].data) if hasattr(model.rvs_to_values[rv], "data")
                   else np.size(model.rvs_to_values[rv].eval()) for rv in model.observed_RVs))


def information_criteria(loglik: float, n_params: int, n_obs: float) -> dict[str, float]:
    """AIC ``-2 l + 2 k`` and BIC ``-2 l + k log n``.

    With frequency weights pass ``n_obs`` = the sum of the weights (the number of people,
    not of rows), as R's ``BIC`` does for ``polr`` (``nobs`` = sum of weights).
    """
    if n_obs <= 0:
        raise ValueError("n_obs must be > 0")
    return {
        "loglik": float(loglik),
        "aic": float(-2.0 * loglik + 2.0 * n_params),
        "bic": float(-2.0 * loglik + n_params * math.log(n_obs)),
        "n_params": int(n_params),
        "n_obs": float(n_obs),
    }

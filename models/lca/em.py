"""Maximum likelihood latent class fit by EM (StepMix): the chains' start and reference labels.

EM finds a local maximum from each random start. ``fit_em`` makes at least ``n_init``
starts and, up to ``max_starts``, keeps starting until the best log likelihood has been
reached by at least two starts (what poLCA's and Mplus's users are told to check by hand):
a best point reached once may be a local maximum that happens to beat the others.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from carestar.item_responses import ItemResponses
from models.lca.likelihood import responsibilities, row_loglik

LOGLIK_ABS_TOL = 1e-4  # two starts reach the same maximum: within this many nats ...
LOGLIK_REL_TOL = 1e-6  # ... or this fraction of the log likelihood, whichever is larger


@dataclass(frozen=True)
class EMFit:
    """A maximum likelihood latent class solution (StepMix EM).

    probs: (K, J, max_categories) item-response probabilities (0 beyond an item's categories)
    shares: (K,) class shares (mean class-membership probability with covariates)
    coefs: (K, 1+P) multinomial-logit coefficients, class 0 the zero reference, or None
    loglik: weighted log likelihood at this point; n_params: free parameters
    start_logliks: the log likelihood each random start reached, in the order made
    Classes are ordered by use (``class_use``; class 1 = lowest use).
    """

    probs: np.ndarray
    shares: np.ndarray
    coefs: np.ndarray | None
    loglik: float
    n_params: int
    posterior: np.ndarray = field(repr=False)
    start_logliks: tuple[float, ...] = ()

    @property
    def n_starts(self) -> int:
        return len(self.start_logliks)

    @property
    def n_at_best(self) -> int:
        """How many starts reached the best log likelihood (within the tolerance)."""
        return n_at_best(self.start_logliks)

    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.n_params

    def bic(self, n: float) -> float:
        return -2 * self.loglik + self.n_params * np.log(n)


def n_at_best(logliks) -> int:
    """Starts within ``max(LOGLIK_ABS_TOL, LOGLIK_REL_TOL * |best|)`` of the best."""
    if len(logliks) == 0:
        return 0
    ll = np.asarray(logliks, float)
    best = ll.max()
    return int((best - ll <= max(LOGLIK_ABS_TOL, LOGLIK_REL_TOL * abs(best))).sum())


def class_use(probs: np.ndarray, n_categories) -> np.ndarray:
    """(..., K) from probs (..., K, J, C): mean over items of E[code] / (C_j - 1): 0 = every
    answer in the first category (never used), 1 = every answer in the last (fully used)."""
    scores = [(probs[..., j, :c] * np.arange(c)).sum(axis=-1) / (c - 1)
              for j, c in enumerate(n_categories)]
    return np.mean(scores, axis=0)


def design_matrix(responses: ItemResponses) -> np.ndarray | None:
    """Intercept + covariates, (N, 1 + P), or None without covariates."""
    if responses.covariates is None or responses.covariates.shape[1] == 0:
        return None
    x = responses.covariates.to_numpy(float)
    return np.column_stack([np.ones(len(x)), x])


def _one_start(responses: ItemResponses, n_classes: int, design, random_state: int,
               max_iter: int) -> tuple[float, np.ndarray, np.ndarray, np.ndarray | None]:
    """One EM run from a random start: (log likelihood, probs, shares, coefs)."""
    from stepmix.stepmix import StepMix

    x = responses.codes.astype(float)
    x[responses.codes < 0] = np.nan
    cmax = responses.max_categories
    kwargs: dict[str, Any] = dict(
        n_components=n_classes,
        measurement="categorical_nan",
        measurement_params={"max_n_outcomes": cmax, "total_outcomes": sum(responses.n_categories)},
        n_init=1,
        max_iter=max_iter,
        abs_tol=1e-10,
        random_state=random_state,
        progress_bar=False,
        verbose=0,
    )
    if design is not None:
        kwargs.update(structural="covariate", n_steps=1,
                      structural_params={"method": "newton-raphson", "max_iter": 1})
    sm = StepMix(**kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if design is not None:
            sm.fit(x, design[:, 1:], sample_weight=responses.weights)
        else:
            sm.fit(x, sample_weight=responses.weights)
    params = sm.get_parameters()
    probs = np.asarray(params["measurement"]["pis"]).reshape(n_classes, responses.n_item, cmax)
    for j, c in enumerate(responses.n_categories):
        probs[:, j, c:] = 0.0
    probs /= probs.sum(axis=-1, keepdims=True)
    shares = np.asarray(sm.weights_, float)
    coefs = None
    if design is not None:
        beta = np.asarray(params["structural"]["beta"], float)  # (K, 1+P)
        coefs = beta - beta[0]
    ll = float(responses.row_weights @ row_loglik(responses, probs, shares, coefs, design))
    return ll, probs, shares, coefs


def fit_em(responses: ItemResponses, n_classes: int, *, seed: int = 0, n_init: int = 10,
           max_starts: int | None = None, max_iter: int = 2000) -> EMFit:
    """Maximum likelihood by EM with StepMix (missing answers, weights, covariates).

    At least ``n_init`` random starts; then, up to ``max_starts`` (None: ``n_init``, no
    more), one more start at a time until the best log likelihood has been reached by two
    starts (``n_at_best``). Every start's log likelihood is kept (``start_logliks``).
    Classes are ordered by increasing use (``class_use``; ties by decreasing share) so the
    labelling is reproducible and class 1 is the lowest use, as in the joint model.
    """
    n_init = max(int(n_init), 1)
    cap = n_init if max_starts is None else max(int(max_starts), n_init)
    design = design_matrix(responses)
    rs = np.random.default_rng(seed).integers(0, 2**31 - 1, size=cap)
    lls: list[float] = []
    best = None
    for i in range(cap):
        if i >= n_init and n_at_best(lls) >= 2:
            break
        fit = _one_start(responses, n_classes, design, int(rs[i]), max_iter)
        lls.append(fit[0])
        if best is None or fit[0] > best[0]:
            best = fit
    assert best is not None
    ll, probs, shares, coefs = best
    post = responsibilities(responses, probs, shares, coefs, design)
    if design is not None:
        shares = np.average(post, axis=0, weights=responses.row_weights)
    order = np.lexsort((-shares, class_use(probs, responses.n_categories)))
    probs, shares, post = probs[order], shares[order], post[:, order]
    if coefs is not None:
        coefs = coefs[order] - coefs[order][0]
    return EMFit(probs=probs, shares=shares, coefs=coefs, loglik=ll,
                 n_params=responses.n_free_parameters(n_classes), posterior=post,
                 start_logliks=tuple(lls))

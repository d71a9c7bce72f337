"""Maximum likelihood latent class fit by EM (StepMix): the chains' start and reference labels."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from carestar.item_responses import ItemResponses
from models.lca.likelihood import responsibilities, row_loglik


@dataclass(frozen=True)
class EMFit:
    """A maximum likelihood latent class solution (StepMix EM).

    probs: (K, J, max_categories) item-response probabilities (0 beyond an item's categories)
    shares: (K,) class shares (mean class-membership probability with covariates)
    coefs: (K, 1+P) multinomial-logit coefficients, class 0 the zero reference, or None
    loglik: weighted log likelihood at this point; n_params: free parameters
    """

    probs: np.ndarray
    shares: np.ndarray
    coefs: np.ndarray | None
    loglik: float
    n_params: int
    posterior: np.ndarray = field(repr=False)

    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.n_params

    def bic(self, n: float) -> float:
        return -2 * self.loglik + self.n_params * np.log(n)


def design_matrix(responses: ItemResponses) -> np.ndarray | None:
    """Intercept + covariates, (N, 1 + P), or None without covariates."""
    if responses.covariates is None or responses.covariates.shape[1] == 0:
        return None
    x = responses.covariates.to_numpy(float)
    return np.column_stack([np.ones(len(x)), x])


def fit_em(responses: ItemResponses, n_classes: int, *, seed: int = 0, n_init: int = 10,
           max_iter: int = 2000) -> EMFit:
    """Maximum likelihood by EM with StepMix (missing answers, weights, covariates).

    Classes are ordered by decreasing share so the labelling is reproducible.
    """
    from stepmix.stepmix import StepMix

    x = responses.codes.astype(float)
    x[responses.codes < 0] = np.nan
    design = design_matrix(responses)
    cmax = responses.max_categories
    kwargs: dict[str, Any] = dict(
        n_components=n_classes,
        measurement="categorical_nan",
        measurement_params={"max_n_outcomes": cmax, "total_outcomes": sum(responses.n_categories)},
        n_init=n_init,
        max_iter=max_iter,
        abs_tol=1e-10,
        random_state=seed,
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
    coefs = None
    shares = np.asarray(sm.weights_, float)
    if design is not None:
        beta = np.asarray(params["structural"]["beta"], float)  # (K, 1+P)
        coefs = beta - beta[0]
    post = responsibilities(responses, probs, shares, coefs, design)
    if design is not None:
        shares = np.average(post, axis=0, weights=responses.row_weights)
    order = np.argsort(-shares, kind="stable")
    probs, shares, post = probs[order], shares[order], post[:, order]
    if coefs is not None:
        coefs = coefs[order] - coefs[order][0]
    ll = float(responses.row_weights @ row_loglik(responses, probs, shares, coefs, design))
    return EMFit(probs=probs, shares=shares, coefs=coefs, loglik=ll,
                 n_params=responses.n_free_parameters(n_classes), posterior=post)

"""The latent class likelihood in plain numpy (the second implementation the PyMC graph is
tested against): class log probabilities, item log likelihoods, the mixture per row,
class responsibilities, the ordered-logit emission's category probabilities."""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_softmax, logsumexp

from carestar.item_responses import ItemResponses


def class_log_probs(design: np.ndarray | None, shares: np.ndarray | None = None,
                    coefs: np.ndarray | None = None, n_rows: int | None = None) -> np.ndarray:
    """(N, K) log class-membership probabilities: shares, or softmax(design @ coefs.T).

    ``coefs`` is (K, 1 + P) with the intercept first (row 0 may be the zero reference).
    """
    if coefs is not None:
        return log_softmax(design @ np.asarray(coefs).T, axis=1)
    shares = np.asarray(shares, float)
    return np.broadcast_to(np.log(shares), (n_rows, len(shares)))


def item_log_lik(one_hot: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(N, K): sum over observed items of log P(answer | class).

    ``one_hot`` (N, J, C) indicators (zero rows for missing answers), ``probs`` (K, J, C).
    """
    with np.errstate(divide="ignore"):
        logp = np.where(probs > 0, np.log(np.where(probs > 0, probs, 1.0)), -np.inf)
    # 0 * -inf must count as 0 (a category nobody in the row answered)
    contrib = np.where(one_hot[:, None] > 0, logp[None], 0.0)
    return contrib.sum(axis=(2, 3))


def row_loglik(responses: ItemResponses, probs: np.ndarray, shares=None, coefs=None,
               design=None) -> np.ndarray:
    """Per-row mixture log likelihood log p(y_i) (unweighted), length N."""
    lp = class_log_probs(design, shares, coefs, responses.n_org)
    return logsumexp(lp + item_log_lik(responses.one_hot(), probs), axis=1)


def responsibilities(responses: ItemResponses, probs, shares=None, coefs=None,
                     design=None) -> np.ndarray:
    """(N, K) posterior class probabilities given the parameters."""
    joint = class_log_probs(design, shares, coefs, responses.n_org) + item_log_lik(
        responses.one_hot(), probs
    )
    return np.exp(joint - logsumexp(joint, axis=1, keepdims=True))


def ordinal_probs(cutpoints: np.ndarray, location: np.ndarray) -> np.ndarray:
    """(K, J, C) category probabilities of the ordered logit: cutpoints (J, C-1), location (K, J)."""
    cdf = expit(cutpoints[None] - location[..., None])  # (K, J, C-1)
    ones = np.ones(cdf.shape[:-1] + (1,))
    cdf = np.concatenate([np.zeros_like(ones), cdf, ones], axis=-1)
    return np.diff(cdf, axis=-1)

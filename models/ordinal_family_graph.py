"""The log probability of each observed category in the sequential (``sratio``,
``cratio``) and adjacent-category (``acat``) families as a PyTensor graph lean to evaluate
and differentiate: the model's likelihood (``observed_log_prob`` of
``models.ordinal_likelihood``, whose docstring defines the families, hands these families
here). The math of each graph is in ``family_observed_log_prob``; each equals
``category_log_probabilities`` at y (tests/test_family_runs.py).
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Constant

from models.ordinal_likelihood import link_cdf, log_cdf, log_sf


def family_observed_log_prob(link: str, eta, cutpoints, y, n_categories: int, lowest, family: str):
    """log P(y_n | eta_n) of a sequential or adjacent-category family as a PyTensor graph
    lean to differentiate (no (N, K, K-1) array; tested equal to
    ``category_log_probabilities``). With ``x_j = s (eta - c_j)`` and ``l = lowest``:

    - sratio / cratio: the sequence starts at the floor, so
      ``P(y | y >= l) = prod_{l <= j < y} q_j * [y < K-1] (1 - q_y)`` with ``q_j`` the
      probability of going on past ``j`` (``1 - F(x_j)`` for sratio, ``F(x_j)`` for cratio):
      no normalising sum, only the thresholds on each row's path (``_sequential_on_paths``);
    - acat: ``log P~_k = sum_j log(1 - F(x_j)) + D_k``, ``D_k = sum_{j<k} d_j``,
      ``d_j = log F(x_j) - log(1 - F(x_j))`` (``= x_j`` for the logit link, so
      ``D_k = k eta - sum_{j<k} c_j``); the first sum is the same for every k and cancels
      when normalising over the awarded ``k >= l``:
      ``log P(y | y >= l) = D_y - log sum_{k >= l} exp(D_k)``, computed from the gaps
      ``D_k - D_y`` (no shift by a maximum: its reduction is the costly part of the graph).
    """
    codes = _constant_codes(y)
    K = n_categories
    if family in ("sratio", "cratio"):
        if codes is None:  # a symbolic y: every threshold's term, masked
            return _sequential_masked(link, eta, cutpoints, y, K, lowest, family)
        return _sequential_on_paths(link, eta, cutpoints, codes, K, lowest, family)
    floor = (np.zeros(1, dtype=int) if lowest is None else np.asarray(lowest, int))[:, None]
    k = pt.arange(K)
    observed = pt.eq(k, y[:, None]) if codes is None else np.arange(K) == codes[:, None]  # (N, K)

    def at_y(a):  # a[..., y] per row, (N, 1): gathered for observed codes, masked for symbolic ones
        if codes is None:
            return pt.where(observed, a, 0.0).sum(axis=-1, keepdims=True)
        return (a[codes] if a.ndim == 1 else a[np.arange(codes.size), codes])[:, None]

    if link == "logit":  # D_k - D_y = (k - y) eta - (C_k - C_y), C_k = sum_{j<k} c_j
        C = pt.cumsum(cutpoints, axis=-1)
        C = pt.concatenate([pt.zeros_like(C[..., :1]), C], axis=-1)  # (K,) or (N, K)
        gap = (k - at_y(k)) * eta[:, None] - (C - at_y(C))
    else:
        x = eta[..., None] - cutpoints  # (N, K-1)
        d = log_cdf(link, x) - log_sf(link, x)
        D = pt.concatenate([pt.zeros_like(d[..., :1]), pt.cumsum(d, axis=-1)], axis=-1)  # (N, K)
        gap = D - at_y(D)
    if codes is None:
        others = pt.and_(pt.ge(k, floor), pt.invert(observed))  # the awarded categories but y
    else:
        others = (np.arange(K) >= floor) & ~observed
    # log P(y) = -log(1 + sum_{k >= l, k != y} exp(D_k - D_y)); a gap over 700 (log P < -700) is
    # held there, as observed_log_prob's clip holds the cumulative family's log P above -690
    return -pt.log1p(pt.where(others, pt.exp(pt.minimum(gap, 700.0)), 0.0).sum(axis=-1))


def _constant_codes(y) -> np.ndarray | None:
    """``y`` as a numpy array when it is data (numpy, or the PyTensor constant PyMC makes of
    observed values), else None."""
    if isinstance(y, Constant):
        return np.asarray(y.data, dtype=int)
    return None if isinstance(y, pt.Variable) else np.asarray(y, dtype=int)


def _path_terms(y: np.ndarray, lowest, n_categories: int):
    """The thresholds on each row's path in a sequential family: ``(rows, j, on, slot)``, one
    entry per threshold ``l <= j <= min(y, K-2)`` of row ``rows`` (rows ascending), ``on``
    where the row went on past it (``j < y``), else it stopped there (``j = y``); ``slot``
    its place on the row's path (0 for its first threshold)."""
    floor = np.zeros_like(y) if lowest is None else np.broadcast_to(np.asarray(lowest, int), y.shape)
    j = np.arange(n_categories - 1)
    on = (j >= floor[:, None]) & (j < y[:, None])
    rows, cols = np.nonzero(on | (j == y[:, None]))
    return rows, cols, on[rows, cols], cols - floor[rows]


def _sequential_on_paths(link: str, eta, cutpoints, y: np.ndarray, n_categories: int, lowest, family: str):
    """sratio / cratio from the thresholds on each row's path only (``_path_terms``).

    A symmetric ``F`` (logit, probit): going on past ``j`` has probability
    ``F(eta - c_j)``, stopping there ``F(c_j - eta)``, in both families; the row's
    probability is the product of its path's, one log per row, clipped at 1e-300 as in the
    cumulative family (``observed_log_prob``). cloglog: the sum of the terms' stable logs.
    """
    rows, cols, on, slot = _path_terms(y, lowest, n_categories)
    cut = cutpoints[rows, cols] if cutpoints.ndim == 2 else cutpoints[cols]
    z = eta[rows] - cut  # eta - c_j on each path
    if link == "cloglog":
        sign = -1.0 if family == "sratio" else 1.0  # x_j = sign (eta - c_j)
        uses_F = on if family == "cratio" else ~on
        index = np.flatnonzero(uses_F), np.flatnonzero(~uses_F)
        terms = [log_cdf(link, sign * z[index[0]]), log_sf(link, sign * z[index[1]])]
        return pt.zeros_like(eta)[np.r_[rows[index[0]], rows[index[1]]]].inc(pt.concatenate(terms))
    t = np.where(on, 1.0, -1.0) * z
    q = pt.sigmoid(t) if link == "logit" else link_cdf(link, t)  # sigmoid: a finite gradient where q = 0
    P = pt.ones_like(eta)
    for s in range(n_categories - 1):  # the path's s-th threshold, in the rows that reach it
        at = np.flatnonzero(slot == s)
        P = P * pt.ones_like(eta)[rows[at]].set(q[at]) if at.size else P
    return pt.log(pt.clip(P, 1e-300, 1.0))


def _sequential_masked(link: str, eta, cutpoints, y, n_categories: int, lowest, family: str):
    """sratio / cratio with every threshold's term masked to each row's path (a symbolic ``y``)."""
    sign = -1.0 if family == "sratio" else 1.0  # x_j = sign (eta - c_j)
    x = sign * (eta[..., None] - cutpoints)  # (N, K-1)
    floor = pt.as_tensor(np.zeros(1, dtype=int) if lowest is None else np.asarray(lowest, int))[:, None]
    j = pt.arange(n_categories - 1)
    passed = pt.and_(pt.ge(j, floor), pt.lt(j, y[:, None]))
    stopped = pt.eq(j, y[:, None])
    lF, lS = log_cdf(link, x), log_sf(link, x)
    go_on, stop = (lS, lF) if family == "sratio" else (lF, lS)
    return pt.where(passed, go_on, 0.0).sum(axis=-1) + pt.where(stopped, stop, 0.0).sum(axis=-1)

"""The ordinal families' math: links, category probabilities under a rating regime, and
each row's log likelihood (PyTensor for the model's graph, numpy for the vectorised passes
and for ``sampler=mle``), with its derivatives in the linear predictor.

Families (``model.family``; brms's names and parametrisations), with thresholds
``c_1..c_{K-1}``, linear predictor ``eta`` and ``F`` the inverse link (logit, probit,
cloglog)::

    cumulative  P(y <= k)          = F(c_k - eta)                   c ordered
    sratio      P(y = k | y >= k)  = F(c_k - eta)                   (stopping ratio)
    cratio      P(y > k | y >= k)  = F(eta - c_k)                   (continuation ratio)
    acat        P(y = k) ~ prod_{j<k} F(eta - c_j) prod_{j>=k} (1 - F(eta - c_j))
                logit: log P(y = k+1) / P(y = k) = eta - c_k          (adjacent category)

In every family a positive effect moves mass to higher categories. Only the cumulative
family needs ordered thresholds; brms leaves the others free (an unordered ``c`` is a proper
model there). With the logit (or probit) link, brms's ``sratio`` and ``cratio`` are the
same model with the same parameters (``1 - F(eta - c) = F(c - eta)`` for a symmetric
``F``); they differ for cloglog. Mapping to VGAM's ``vglm(..., family(parallel = TRUE))``
(intercepts ``a_k``, coefficients ``b``): ``acat``: ``c = -a``, ``beta = b``; ``sratio``:
``c = a``, ``beta = -b``; ``cratio``: ``c = -a``, ``beta = b``.

A rating regime that did not award the lowest categories (no 0 stars from 2006) sets
``c_k = -inf`` below its lowest category (``regime_cutpoints``). In the cumulative family
the mass of the missing categories goes to the lowest awarded one; in the others it gives
exactly the distribution conditional on ``y >= lowest`` (the sequential process starts
there; adjacent-category odds among the awarded categories are unchanged).

Category-specific effects (``cs(x)``, ``carestar.category_specific``) give each row its own
thresholds: every function here takes cutpoints of shape (rows, K-1) as well (the numpy
row likelihoods and derivatives with ``rows=True``).

``category_probabilities`` is the one place the category probabilities are made; the
two-cutpoint forms of the cumulative family (``observed_log_prob``, ``row_log_likelihood``)
and the other families' log probabilities (``category_log_probabilities``) are tested equal
to it.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

FAMILIES = ("cumulative", "sratio", "cratio", "acat")
LINKS = ("logit", "probit", "cloglog")


def link_cdf(link: str, x):
    """F: the inverse link, a CDF on the latent scale (tensor or numpy input)."""
    math = pt if isinstance(x, pt.TensorVariable) else np
    if link == "logit":
        return 1.0 / (1.0 + math.exp(-x))
    if link == "probit":
        erfc = pt.erfc if math is pt else _np_erfc
        return 0.5 * erfc(-x / np.sqrt(2.0))
    return 1.0 - math.exp(-math.exp(x))


def link_quantile(link: str, q):
    """F^{-1}: cutpoints induced by category probabilities; latent draws from uniforms
    (tensor or numpy input)."""
    math = pt if isinstance(q, pt.TensorVariable) else np
    if link == "logit":
        return math.log(q) - math.log1p(-q)
    if link == "probit":
        erfinv = pt.erfinv if math is pt else _np_erfinv
        return np.sqrt(2.0) * erfinv(2.0 * q - 1.0)
    return math.log(-math.log1p(-q))


def _np_erfc(x):
    from scipy.special import erfc

    return erfc(x)


def _np_erfinv(x):
    from scipy.special import erfinv

    return erfinv(x)


def regime_cutpoints(cutpoints, lowest=None):
    """Cutpoints as a rating regime applies them: ``c_k = -inf`` for every cutpoint below
    the regime's lowest category (no 0 stars from 2006: ``c_1 = -inf``), so the categories it
    never awarded get probability 0 and their mass goes to its lowest category.

    ``cutpoints`` (..., K-1); ``lowest`` an int (one regime) or an array over the leading
    (row) dims of the result, None or 0 for every category awarded.
    """
    if lowest is None or (np.isscalar(lowest) and int(lowest) == 0):
        return cutpoints
    math = pt if isinstance(cutpoints, pt.TensorVariable) else np
    lowest = np.asarray(lowest, dtype=int)
    below = math.arange(cutpoints.shape[-1]) < lowest[..., None]  # (..., K-1)
    return math.where(below, -np.inf, cutpoints)


def category_probabilities(link: str, eta, cutpoints, lowest=None, family: str = "cumulative",
                           n_categories: int | None = None):
    """P(y = k) for every row under the rating regime whose lowest awarded category is
    ``lowest`` (see ``regime_cutpoints``): for the cumulative family, differences of
    ``F(c_k - eta)`` padded with 0 and 1; for the others ``category_log_probabilities``.

    The one place the model's category probabilities are made: the likelihood
    (``observed_log_prob`` is its two-cutpoint form, tested equal), the predictive draws
    and every figure use it. ``cutpoints`` has shape (K-1,) or (rows, K-1).
    """
    if family != "cumulative":
        math = _math(eta, cutpoints)
        return math.exp(category_log_probabilities(link, eta, cutpoints, lowest, family, n_categories))
    cutpoints = regime_cutpoints(cutpoints, lowest)
    math = _math(eta, cutpoints)
    cum = link_cdf(link, cutpoints - eta[..., None])
    zeros = math.zeros_like(cum[..., :1])
    padded = math.concatenate([zeros, cum, zeros + 1.0], axis=-1)
    return padded[..., 1:] - padded[..., :-1]


def observed_log_prob(link: str, eta, cutpoints, y, n_categories: int,
                      lowest: np.ndarray | None = None, family: str = "cumulative"):
    """log P(y_n | eta_n): only the two cutpoints around each observed category.

    ``eta`` is a tensor of shape (N,) or (N, K) (K shifted copies of each row, e.g. one per
    latent class); ``cutpoints`` (C-1,), or (N, C-1) each row's own with ``eta`` (N,)
    (category-specific effects, ``carestar.category_specific``); ``y`` (N,) codes 0..C-1 of ``n_categories`` C, a
    numpy array or a symbolic value; ``lowest`` (N,) the lowest category each row's
    regime could award (``c = -inf`` below it), which ``y`` never undercuts
    (``study_design.ratings_design`` refuses such rows). Equal to
    ``log category_probabilities(...)[n, y_n]`` with a gradient graph a fraction the size.
    The other families (``eta`` of shape (N,)): ``models.ordinal_family_graph``.
    """
    if family != "cumulative":
        from models.ordinal_family_graph import family_observed_log_prob  # it builds on this module

        return family_observed_log_prob(link, eta, cutpoints, y, n_categories, lowest, family)
    y = pt.as_tensor(y)
    n_cut = n_categories - 1
    floor = pt.as_tensor(np.zeros(1, dtype=int) if lowest is None else np.asarray(lowest, int))
    extra = eta.ndim - 1  # trailing dims of eta beyond the rows
    cutpoints = pt.as_tensor(cutpoints)

    def rows(x):
        return pt.shape_padright(x, extra) if extra else x

    open_below = rows(pt.or_(pt.eq(y, 0), pt.le(y, floor)))
    open_above = rows(pt.eq(y, n_cut))
    if cutpoints.ndim == 2:  # each row's own (category-specific effects): (N, C-1)
        index = pt.arange(y.shape[0])
        upper, lower = cutpoints[index, pt.minimum(y, n_cut - 1)], cutpoints[index, pt.maximum(y - 1, 0)]
    else:
        upper = rows(cutpoints[pt.minimum(y, n_cut - 1)])
        lower = rows(cutpoints[pt.maximum(y - 1, 0)])
    F_upper = pt.where(open_above, 1.0, link_cdf(link, upper - eta))
    F_lower = pt.where(open_below, 0.0, link_cdf(link, lower - eta))
    return pt.log(pt.clip(F_upper - F_lower, 1e-300, 1.0))


def _around(cut: np.ndarray, eta: np.ndarray, y: np.ndarray, lowest, rows: bool):
    """The cutpoints above and below each observed category (``c_0 = -inf``, ``c_K = +inf``,
    ``-inf`` below a row's regime floor), shaped as ``eta``: ``cut`` (K-1,), (..., K-1)
    matching ``eta``'s leading dims, or with ``rows`` each row's own, (..., n, K-1)."""
    if rows:
        cut = np.broadcast_to(cut, np.shape(eta) + cut.shape[-1:])
    edges = np.full(cut.shape[:-1] + (1,), np.inf)
    padded = np.concatenate([-edges, cut, edges], axis=-1)  # (..., K+1)
    floor = 0 if lowest is None else np.asarray(lowest, int)
    y = np.asarray(y)
    if rows:
        index = np.broadcast_to(y, np.shape(eta))[..., None]
        upper = np.take_along_axis(padded, index + 1, axis=-1)[..., 0]
        lower = np.take_along_axis(padded, index, axis=-1)[..., 0]
    else:
        upper, lower = padded[..., y + 1], padded[..., y]
    return upper, np.where(y <= floor, -np.inf, lower)


def row_log_likelihood(link: str, eta: np.ndarray, cutpoints: np.ndarray, y: np.ndarray,
                       lowest: np.ndarray | None = None, family: str = "cumulative",
                       rows: bool = False) -> np.ndarray:
    """log P(y_i | eta_i) with numpy, from the two cutpoints around each observed category
    (``c_0 = -inf``, ``c_K = +inf``, and ``-inf`` below a row's regime floor): the math of
    ``observed_log_prob``. ``eta`` (..., n); ``cutpoints`` (K-1,) or (..., K-1) matching
    ``eta``'s leading dims, or with ``rows`` each row's own (..., n, K-1), broadcasting
    against ``eta`` (category-specific effects)."""
    cut = np.asarray(cutpoints, float)
    if family != "cumulative":
        cut = cut if cut.ndim == 1 or rows else cut[..., None, :]
        logp = category_log_probabilities(link, eta, cut, lowest, family)
        index = np.broadcast_to(np.asarray(y)[..., None], logp.shape[:-1] + (1,))
        return np.take_along_axis(logp, index, axis=-1)[..., 0]
    upper, lower = _around(cut, eta, y, lowest, rows)
    with np.errstate(over="ignore"):
        P = link_cdf(link, upper - eta) - link_cdf(link, lower - eta)
    return np.log(np.clip(P, 1e-300, 1.0))  # clipped as in observed_log_prob


def link_pdf(link: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The density ``f = F'`` of the inverse link and its derivative ``f'`` (numpy; 0 at +-inf)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if link == "logit":
            F = link_cdf(link, x)
            f = F * (1.0 - F)
            df = f * (1.0 - 2.0 * F)
        elif link == "probit":
            f = np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi)
            df = -x * f
        else:
            f = np.exp(x - np.exp(x))
            df = f * (1.0 - np.exp(x))
    finite = np.isfinite(x)
    return np.where(finite, f, 0.0), np.where(finite, df, 0.0)


def row_derivatives(link: str, eta: np.ndarray, cutpoints: np.ndarray, y: np.ndarray,
                    lowest: np.ndarray | None = None, family: str = "cumulative", rows: bool = False):
    """``row_log_likelihood`` and its first two derivatives in ``eta``: with
    ``P = F(u) - F(l)``, ``u = c_y - eta``, ``l = c_{y-1} - eta``:
    ``dl = -(f(u) - f(l)) / P``, ``d2l = (f'(u) - f'(l)) / P - dl^2``; the other families:
    ``family_row_derivatives``. ``cutpoints`` (K-1,), or with ``rows`` (n, K-1)."""
    if family != "cumulative":
        return family_row_derivatives(link, eta, cutpoints, y, lowest, family)
    upper, lower = _around(np.asarray(cutpoints, float), eta, y, lowest, rows)
    upper, lower = upper - eta, lower - eta
    P = link_cdf(link, upper) - link_cdf(link, lower)
    fu, dfu = link_pdf(link, upper)
    fl, dfl = link_pdf(link, lower)
    first = -(fu - fl) / P
    with np.errstate(divide="ignore"):
        return np.log(P), first, (dfu - dfl) / P - first**2


# -- the sequential and adjacent-category families ------------------------------------------

def _math(*values):
    return pt if any(isinstance(v, pt.TensorVariable) for v in values) else np


def log_cdf(link: str, x):
    """log F(x), stable in both tails (tensor or numpy input)."""
    if isinstance(x, pt.TensorVariable):
        if link == "logit":
            return -pt.softplus(-x)
        if link == "probit":
            from pymc.distributions.dist_math import normal_lcdf

            return normal_lcdf(0.0, 1.0, x)
        return pt.log1mexp(-pt.exp(x))
    with np.errstate(over="ignore", divide="ignore"):
        if link == "logit":
            return -np.logaddexp(0.0, -x)
        if link == "probit":
            from scipy.special import log_ndtr

            return log_ndtr(x)
        return np.log(-np.expm1(-np.exp(x)))


def log_sf(link: str, x):
    """log(1 - F(x)), stable in both tails (tensor or numpy input)."""
    if link in ("logit", "probit"):
        return log_cdf(link, -x)
    return -(pt.exp(x) if isinstance(x, pt.TensorVariable) else np.exp(x))


def _structure(family: str, n_categories: int):
    """``(s, A, B)``: with ``x_j = s (eta - c_j)``, ``log P~(y = k) = sum_j A_kj log F(x_j) +
    B_kj log(1 - F(x_j))`` (K x K-1 masks); see the module docstring."""
    k = np.arange(n_categories)[:, None]
    j = np.arange(n_categories - 1)[None, :]
    if family == "sratio":
        return -1.0, j == k, j < k
    if family == "cratio":
        return 1.0, j < k, j == k
    if family == "acat":
        return 1.0, j < k, j >= k
    raise ValueError(f"family {family!r} is not one of {FAMILIES}")


def _floor_mask(n_categories: int, lowest):
    """(..., K) True where a category is awarded (``k >= lowest``), or None for every one."""
    if lowest is None or (np.isscalar(lowest) and int(lowest) == 0):
        return None
    lowest = np.asarray(lowest, dtype=int)
    if not lowest.any():
        return None
    return np.arange(n_categories) >= lowest[..., None]


def category_log_probabilities(link: str, eta, cutpoints, lowest=None, family: str = "sratio",
                               n_categories: int | None = None):
    """log P(y = k), shape (..., K), of a sequential (``sratio``, ``cratio``) or
    adjacent-category (``acat``) family; ``eta`` (...,), ``cutpoints`` (K-1,) or (..., K-1).

    Below a row's regime floor (``lowest``) the categories get probability 0 and the rest
    their probabilities conditional on ``y >= lowest``, which is what ``c = -inf`` below the
    floor gives in these families, computed without infinities so gradients stay finite.
    ``n_categories`` is needed only for symbolic ``cutpoints`` of a length the graph does not know.
    """
    math = _math(eta, cutpoints)
    n_cut = (cutpoints.type.shape[-1] if math is pt else np.shape(cutpoints)[-1]) or (
        n_categories - 1 if n_categories else None)
    if n_cut is None:
        raise ValueError("category_log_probabilities needs a static number of cutpoints")
    K = n_cut + 1
    sign, A, B = _structure(family, K)
    x = sign * (eta[..., None] - cutpoints)  # (..., K-1)
    lF, lS = log_cdf(link, x)[..., None, :], log_sf(link, x)[..., None, :]
    logp = math.where(A, lF, 0.0).sum(axis=-1) + math.where(B, lS, 0.0).sum(axis=-1)  # (..., K)
    mask = _floor_mask(K, lowest)
    if mask is not None:
        logp = math.where(mask, logp, -np.inf)
    if family == "acat" or mask is not None:
        logp = logp - _logsumexp(math, logp)
    return logp


def _logsumexp(math, logp):
    if math is pt:
        return pt.logsumexp(logp, axis=-1, keepdims=True)
    from scipy.special import logsumexp

    return logsumexp(logp, axis=-1, keepdims=True)


def _log_density_ratios(link: str, x: np.ndarray):
    """``f/F``, ``-f/(1-F)`` and ``f'/f`` at ``x`` (numpy), from logs so both tails stay
    finite; 0 at an infinite ``x``."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        lF, lS = log_cdf(link, x), log_sf(link, x)
        if link == "logit":
            log_f, slope = lF + lS, 1.0 - 2.0 * np.exp(lF)
        elif link == "probit":
            log_f, slope = -0.5 * x**2 - 0.5 * np.log(2 * np.pi), -x
        else:
            log_f, slope = x - np.exp(x), 1.0 - np.exp(x)
        finite = np.isfinite(x)  # a cutpoint at -inf (below every row's floor): terms constant
        return tuple(np.where(finite, v, 0.0) for v in (np.exp(log_f - lF), -np.exp(log_f - lS), slope))


def family_row_derivatives(link: str, eta: np.ndarray, cutpoints: np.ndarray, y: np.ndarray,
                           lowest=None, family: str = "sratio"):
    """``log P(y_i)`` of a non-cumulative family and its first two derivatives in ``eta``.

    ``log P~_k = sum_j A_kj log F(x_j) + B_kj log(1 - F(x_j))``, ``x_j = s (eta - c_j)``:
    ``g_k = d log P~_k / d eta = s sum_j (A_kj r_j + B_kj t_j)`` with ``r = f/F``,
    ``t = -f/(1-F)``, ``h_k = sum_j (A_kj r'_j + B_kj t'_j)``, ``r' = r f'/f - r^2`` (``t``
    likewise); normalised over the awarded categories, ``P = softmax(log P~)``:
    ``dl = g_y - E_P g``, ``d2l = h_y - E_P h - Var_P g``.
    """
    cut = np.broadcast_to(np.asarray(cutpoints, float), np.shape(eta) + (np.shape(cutpoints)[-1],))
    K = cut.shape[-1] + 1
    sign, A, B = _structure(family, K)
    x = sign * (np.asarray(eta, float)[..., None] - cut)
    r, t, slope = _log_density_ratios(link, x)
    with np.errstate(invalid="ignore"):  # r = 0 where the slope is infinite: r' = 0
        dr, dt = (np.where(v == 0, 0.0, v * slope - v**2) for v in (r, t))
    g = sign * (np.where(A, r[..., None, :], 0.0).sum(-1) + np.where(B, t[..., None, :], 0.0).sum(-1))
    h = np.where(A, dr[..., None, :], 0.0).sum(-1) + np.where(B, dt[..., None, :], 0.0).sum(-1)
    logp = category_log_probabilities(link, eta, cut, lowest, family)
    P = np.exp(logp)
    g, h = np.where(P > 0, g, 0.0), np.where(P > 0, h, 0.0)
    mean_g = (P * g).sum(-1)
    pick = lambda a: np.take_along_axis(a, np.asarray(y)[..., None], axis=-1)[..., 0]  # noqa: E731
    first = pick(g) - mean_g
    second = pick(h) - (P * h).sum(-1) - ((P * g**2).sum(-1) - mean_g**2)
    return pick(logp), first, second


def replicate_categories(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One category per row of ``p`` (..., K): the number of cumulative probabilities below
    a uniform draw."""
    cum = np.cumsum(p, axis=-1)[..., :-1]
    u = rng.random(p.shape[:-1])[..., None] * p.sum(axis=-1, keepdims=True)
    return (cum < u).sum(axis=-1)


def starting_cutpoints(family: str, link: str, shares: np.ndarray) -> np.ndarray:
    """Thresholds of a model without effects (``eta = 0``) that give the category ``shares``
    of a sequential family (``sratio``: ``c_k = F^{-1}(P(y = k | y >= k))``; ``cratio``:
    ``c_k = -F^{-1}(P(y > k | y >= k))``) or of ``acat`` with the logit link
    (``c_k = log(p_k / p_{k+1})``; a start for the other links): where optimisers and
    samplers start."""
    p = np.clip(np.asarray(shares, float), 1e-3, None)
    p = p / p.sum()
    if family == "acat":
        return np.log(p[:-1] / p[1:])
    stop = p[:-1] / np.cumsum(p[::-1])[::-1][:-1]  # P(y = k | y >= k)
    if family == "sratio":
        return link_quantile(link, stop)
    return -link_quantile(link, 1.0 - stop)

"""The cumulative link math of the ordinal model: links, category probabilities under a
rating regime, and each row's log likelihood (PyTensor for the model's graph, numpy for the
vectorised passes and for ``sampler=mle``), with its derivatives in the linear predictor.

``P(y <= k) = F(c_k - eta)``; a rating regime that did not award the lowest categories
(no 0 stars from 2006) sets ``c_k = -inf`` below its lowest category (``regime_cutpoints``).
``category_probabilities`` is the one place the category probabilities are made; the
two-cutpoint forms (``observed_log_prob``, ``row_log_likelihood``) are tested equal to it.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

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


def category_probabilities(link: str, eta, cutpoints, lowest=None):
    """P(y = k) for every row: differences of ``F(c_k - eta)`` padded with 0 and 1, under the
    rating regime whose lowest awarded category is ``lowest`` (see ``regime_cutpoints``).

    The one place the model's category probabilities are made: the likelihood
    (``observed_log_prob`` is its two-cutpoint form, tested equal), the predictive draws
    and every figure use it. ``cutpoints`` has shape (K-1,) or (rows, K-1).
    """
    cutpoints = regime_cutpoints(cutpoints, lowest)
    math = pt if isinstance(eta, pt.TensorVariable) or isinstance(cutpoints, pt.TensorVariable) else np
    cum = link_cdf(link, cutpoints - eta[..., None])
    zeros = math.zeros_like(cum[..., :1])
    padded = math.concatenate([zeros, cum, zeros + 1.0], axis=-1)
    return padded[..., 1:] - padded[..., :-1]


def observed_log_prob(link: str, eta, cutpoints, y, n_categories: int,
                      lowest: np.ndarray | None = None):
    """log P(y_n | eta_n): only the two cutpoints around each observed category.

    ``eta`` is a tensor of shape (N,) or (N, K) (K shifted copies of each row, e.g. one per
    latent class); ``cutpoints`` (C-1,); ``y`` (N,) codes 0..C-1 of ``n_categories`` C, a
    numpy array or a symbolic value; ``lowest`` (N,) the lowest category each row's
    regime could award (``c = -inf`` below it), which ``y`` never undercuts
    (``study_design.ratings_design`` refuses such rows). Equal to
    ``log category_probabilities(...)[n, y_n]`` with a gradient graph a fraction the size.
    """
    y = pt.as_tensor(y)
    n_cut = n_categories - 1
    floor = pt.as_tensor(np.zeros(1, dtype=int) if lowest is None else np.asarray(lowest, int))
    extra = eta.ndim - 1  # trailing dims of eta beyond the rows

    def rows(x):
        return pt.shape_padright(x, extra) if extra else x

    open_below = rows(pt.or_(pt.eq(y, 0), pt.le(y, floor)))
    open_above = rows(pt.eq(y, n_cut))
    upper = rows(cutpoints[pt.minimum(y, n_cut - 1)])
    lower = rows(cutpoints[pt.maximum(y - 1, 0)])
    F_upper = pt.where(open_above, 1.0, link_cdf(link, upper - eta))
    F_lower = pt.where(open_below, 0.0, link_cdf(link, lower - eta))
    return pt.log(pt.clip(F_upper - F_lower, 1e-300, 1.0))


def row_log_likelihood(link: str, eta: np.ndarray, cutpoints: np.ndarray, y: np.ndarray,
                       lowest: np.ndarray | None = None) -> np.ndarray:
    """log P(y_i | eta_i) with numpy, from the two cutpoints around each observed category
    (``c_0 = -inf``, ``c_K = +inf``, and ``-inf`` below a row's regime floor): the math of
    ``observed_log_prob``. ``eta`` (..., n); ``cutpoints`` (K-1,) or (..., K-1) matching
    ``eta``'s leading dims."""
    cut = np.asarray(cutpoints, float)
    edges = np.full(cut.shape[:-1] + (1,), np.inf)
    padded = np.concatenate([-edges, cut, edges], axis=-1)  # (..., K+1)
    floor = 0 if lowest is None else np.asarray(lowest, int)
    upper = padded[..., y + 1]
    lower = np.where(y <= floor, -np.inf, padded[..., y])
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
                    lowest: np.ndarray | None = None):
    """``row_log_likelihood`` and its first two derivatives in ``eta``: with
    ``P = F(u) - F(l)``, ``u = c_y - eta``, ``l = c_{y-1} - eta``:
    ``dl = -(f(u) - f(l)) / P``, ``d2l = (f'(u) - f'(l)) / P - dl^2``."""
    cut = np.asarray(cutpoints, float)
    padded = np.concatenate([[-np.inf], cut, [np.inf]])
    floor = 0 if lowest is None else np.asarray(lowest, int)
    upper = padded[y + 1] - eta
    lower = np.where(y <= floor, -np.inf, padded[y] - eta)
    P = link_cdf(link, upper) - link_cdf(link, lower)
    fu, dfu = link_pdf(link, upper)
    fl, dfl = link_pdf(link, lower)
    first = -(fu - fl) / P
    with np.errstate(divide="ignore"):
        return np.log(P), first, (dfu - dfl) / P - first**2

r"""The joint likelihood in plain numpy (the second implementation the PyMC graph is tested
against): ratings given the class, each organisation's items + ratings per class, and the
per-organisation LOO units of ``model.log_likelihood``.

A LOO unit is a council, and its intercept :math:`u_i = \sigma_u z_i` belongs to that
council alone, so the unit's log likelihood integrates it out (integrated LOO):

.. math::

    \log p(y_i, s_i \mid \phi) = \operatorname{logsumexp}_k \Big[\log \pi_k
        + \log p(y_i \mid k) + \log \int \prod_t P(s_{it} \mid \eta_{it} + \sigma_u x
        + \gamma_k)\, N(x \mid 0, 1)\, dx\Big]

by Gauss-Hermite quadrature (``GH_NODES`` nodes). Conditioning on the draw's :math:`z_i`
instead made PSIS-LOO unreliable for a third of the councils (Pareto k up to 1.03 on the
built-in study: each :math:`z_i` is informed by that council's own 7 ratings only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
from scipy.special import logsumexp

from models.joint.likert import LATENT_NAMES, likert_log_lik
from models.lca import item_log_lik
from models.ordinal_likelihood import category_probabilities, link_cdf

if TYPE_CHECKING:
    from models.joint.prepared import PreparedJoint

LOG_LIKELIHOODS = ("items_and_ratings", "ratings_given_items")  # model.log_likelihood
DRAW_NAMES = ("beta", "org_effect", "year_effect", "class_effects", "cutpoints",
              "class_shares", "item_probs", "org_sd")  # what the likelihood reads per draw
GH_NODES = 15  # Gauss-Hermite nodes over the organisation intercept (integrated LOO units)


def linear_predictor(v: dict[str, np.ndarray], prep: PreparedJoint) -> np.ndarray:
    """(S, N) eta of every rating row, without the class effect."""
    d = prep.design
    eta = v["beta"] @ d.X.to_numpy(float).T
    eta = eta + v["org_effect"][:, d.groups[0].group.codes, 0]
    eta = eta + v["year_effect"][:, d.period.codes]
    if prep.likert is not None:
        eta = eta + np.einsum("sok,sk->so", v["stance_scores"],
                                v["stance_effects"])[:, prep.org_of_row]
    return eta


def rating_log_lik(v: dict[str, np.ndarray], prep: PreparedJoint, link: str) -> np.ndarray:
    """(S, N, K) log P(stars_n | eta_n + gamma_k) for S draws of the named variables."""
    d = prep.design
    shifted = linear_predictor(v, prep)[..., None] + v["class_effects"][:, None, :]  # (S, N, K)
    lowest = None if d.lowest is None else np.asarray(d.lowest)[:, None]  # (N, 1): the year's regime
    p = category_probabilities(link, shifted, v["cutpoints"][:, None, None, :], lowest)  # (S, N, K, C)
    p_obs = np.take_along_axis(p, d.y[None, :, None, None].repeat(p.shape[2], 2), -1)[..., 0]
    with np.errstate(divide="ignore"):
        return np.log(np.clip(p_obs, 1e-300, 1.0))


def joint_components(v: dict[str, np.ndarray], prep: PreparedJoint, link: str,
                     one_hot: np.ndarray | None = None, split: bool = False):
    """(S, org, K): log pi_k + log p(items_i | k) + sum_t log p(stars_it | k).

    ``split=True``: the two parts, (log pi_k + log p(items_i | k), sum_t log p(stars_it | k)).
    """
    one_hot = prep.responses.one_hot() if one_hot is None else one_hot
    S = v["beta"].shape[0]
    per_org = ratings_per_org(rating_log_lik(v, prep, link), prep)  # (S, org, K)
    items = np.stack([item_log_lik(one_hot, v["item_probs"][s]) for s in range(S)])
    with np.errstate(divide="ignore"):
        log_pi = np.log(v["class_shares"])[:, None, :]
    return (log_pi + items, per_org) if split else log_pi + items + per_org


def ratings_per_org(rate: np.ndarray, prep: PreparedJoint) -> np.ndarray:
    """(S, N, K) rating rows' log likelihoods summed per organisation: (S, org, K)."""
    per_org = np.zeros((rate.shape[0], prep.responses.n_org, rate.shape[2]))
    np.add.at(per_org, (slice(None), prep.org_of_row), rate)
    return per_org


def integrated_rating_log_lik(v: dict[str, np.ndarray], prep: PreparedJoint, link: str,
                              nodes: int = GH_NODES) -> np.ndarray:
    """(S, org, K) log of each organisation's ratings given the class with its intercept
    integrated out: ``log sum_q w_q prod_t P(s_it | eta_it + org_sd x_q + gamma_k)``.

    Only the two cutpoints around each observed category are evaluated (as
    ``models.ordinal_likelihood.observed_log_prob``), and each organisation's rows are
    summed by a matrix product: this runs once per node for every draw.
    """
    d = prep.design
    n_org, n_cut = prep.responses.n_org, len(d.categories) - 1
    x, w = np.polynomial.hermite_e.hermegauss(nodes)  # weight exp(-x^2 / 2)
    log_w = np.log(w / np.sqrt(2.0 * np.pi))
    sd = np.asarray(v["org_sd"]).reshape(-1)  # (S,)
    no_intercept = {**v, "org_effect": np.zeros((sd.size, n_org, 1))}
    shifted = (linear_predictor(no_intercept, prep)[..., None]
               + v["class_effects"][:, None, :])  # (S, N, K)
    y = np.asarray(d.y, int)
    floor = np.zeros_like(y) if d.lowest is None else np.asarray(d.lowest, int)
    open_below = ((y == 0) | (y <= floor))[None, :, None]
    open_above = (y == n_cut)[None, :, None]
    cut = np.asarray(v["cutpoints"])
    upper = cut[:, np.minimum(y, n_cut - 1)][..., None]  # (S, N, 1)
    lower = cut[:, np.maximum(y - 1, 0)][..., None]
    rows_of_org = np.zeros((n_org, y.size))
    rows_of_org[prep.org_of_row, np.arange(y.size)] = 1.0
    per_node = []
    for xq in x:
        eta = shifted + (sd * xq)[:, None, None]
        p = (np.where(open_above, 1.0, link_cdf(link, upper - eta))
             - np.where(open_below, 0.0, link_cdf(link, lower - eta)))
        per_node.append(rows_of_org @ np.log(np.clip(p, 1e-300, 1.0)))  # (S, org, K)
    return logsumexp(np.stack(per_node) + log_w[:, None, None, None], axis=0)


def unit_log_likelihoods(post: xr.Dataset, prep: PreparedJoint, link: str, chunk: int = 100
                         ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per draw, (chain, draw, org): each ``LOG_LIKELIHOODS`` unit; (.., org, class) p(k | ..).

    ``items_and_ratings`` = log p(items_i, ratings_i) (plus the Likert answers' term
    with ``strategy: latent``); ``ratings_given_items`` = log p(ratings_i | items_i); both
    with the organisation's intercept integrated out (module docstring). The class
    probabilities are given the draw's intercept.
    """
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    out_ll = {name: np.empty((n_chain, n_draw, prep.responses.n_org))
              for name in LOG_LIKELIHOODS}
    out_p = np.empty((n_chain, n_draw, prep.responses.n_org, prep.n_classes))
    one_hot = prep.responses.one_hot()
    for c in range(n_chain):
        for start in range(0, n_draw, chunk):
            sl = slice(start, min(start + chunk, n_draw))
            units, out_p[c, sl] = draws_units(draw_values(post, prep, c, sl), prep, link, one_hot)
            for name in LOG_LIKELIHOODS:
                out_ll[name][c, sl] = units[name]
    return out_ll, out_p


def draw_values(post: xr.Dataset | dict, prep: PreparedJoint, chain: int, draws: slice
                ) -> dict[str, np.ndarray]:
    """{name: (S, ...)} of what the likelihood reads, for one chain's ``draws``."""
    names = DRAW_NAMES + (LATENT_NAMES if prep.likert is not None else ())
    return {name: np.asarray(post[name])[chain, draws] for name in names}


def draws_units(v: dict[str, np.ndarray], prep: PreparedJoint, link: str,
                one_hot: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(S, org) each ``LOG_LIKELIHOODS`` unit and (S, org, class) p(k | items, ratings) of
    ``unit_log_likelihoods``, for S draws of the named variables."""
    items, ratings = joint_components(v, prep, link, one_hot, split=True)
    joint = items + ratings
    membership = np.exp(joint - logsumexp(joint, axis=-1, keepdims=True))
    total = logsumexp(items + integrated_rating_log_lik(v, prep, link), axis=-1)
    units = {"ratings_given_items": total - logsumexp(items, axis=-1)}
    if prep.likert is not None:
        total = total + likert_log_lik(v, prep).sum(axis=-1)
    units["items_and_ratings"] = total
    return units, membership


def org_unit_log_likelihood(v: dict[str, np.ndarray], prep: PreparedJoint, link: str, org: int,
                            unit: str) -> np.ndarray:
    """(S,) the LOO unit ``unit`` of organisation ``org`` alone (its rows only: what PSIS
    moment matching evaluates again and again), equal to its column of ``draws_units``."""
    per_org = {"org_effect", "stance_scores"}  # the draw variables with an organisation axis
    mine = {name: value[:, [org]] if name in per_org else value for name, value in v.items()}
    return draws_units(mine, prep.only(org), link)[0][unit][:, 0]


def moment_matching(pm_model, sampled: xr.Dataset, prep: PreparedJoint, link: str, unit: str):
    """``carestar.moment_matching.MomentMatching`` for the LOO units ``unit`` (an organisation
    each), from the draws as sampled (before relabelling)."""
    from carestar.moment_matching import unconstrained_posterior

    return unconstrained_posterior(pm_model, sampled).moment_matching(
        lambda values, org: org_unit_log_likelihood(values, prep, link, org, unit))

"""Starting values for every chain: the EM solution moved just inside the simplex, and
ordered-logit cutpoints and class locations that match it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from models.lca.data import PreparedLCA

EPS = 1e-6  # keeps EM boundary probabilities inside the simplex for initial values


def interior_item_probs(probs: np.ndarray, n_categories) -> np.ndarray:
    """(K, J, C) item probabilities with each item's own categories nudged off 0 by ``EPS``."""
    out = np.array(probs, float)
    for j, c in enumerate(n_categories):
        v = out[:, j, :c] + EPS
        out[:, j, :c] = v / v.sum(axis=-1, keepdims=True)
    return out


def interior_shares(shares: np.ndarray) -> np.ndarray:
    """Class shares nudged off 0 by ``EPS`` (a Dirichlet's starting value must be interior)."""
    v = np.asarray(shares, float) + EPS
    return v / v.sum()


def ordinal_initial_values(one_hot, post, weights):
    """Cutpoints from the marginal cumulative proportions; class locations from EM classes."""
    w = (weights[:, None, None] * one_hot).sum(axis=0) + 0.5  # (J, C)
    cum = np.cumsum(w, axis=1)[:, :-1] / w.sum(axis=1, keepdims=True)
    tau = np.log(cum / (1 - cum))
    eta = []
    for k in range(post.shape[1]):
        wk = ((weights * post[:, k])[:, None, None] * one_hot).sum(axis=0) + 0.5
        ck = np.cumsum(wk, axis=1)[:, :-1] / wk.sum(axis=1, keepdims=True)
        eta.append((tau - np.log(ck / (1 - ck))).mean(axis=1))
    eta = np.array(eta)
    return tau, eta - eta.mean(axis=0, keepdims=True)


def free_item_groups(prepared: PreparedLCA) -> tuple[dict[int, list[int]], bool]:
    """Items with free category probabilities grouped by their number of categories, and
    whether one ``item_probs`` variable holds them all (one group, no ordinal emission)."""
    r = prepared.responses
    groups: dict[int, list[int]] = {}
    for j in range(r.n_item):
        if j not in prepared.ordinal_items:
            groups.setdefault(r.n_categories[j], []).append(j)
    return groups, len(groups) == 1 and not prepared.ordinal_items


def initial_values(prepared: PreparedLCA) -> dict[str, np.ndarray]:
    """The EM solution as starting values, keyed by the PyMC variables of ``build``."""
    r, em = prepared.responses, prepared.em
    probs = interior_item_probs(em.probs, r.n_categories)
    out: dict[str, np.ndarray] = {}
    K = prepared.n_classes
    if K > 1:
        if prepared.design is None:
            out["class_shares"] = interior_shares(em.shares)
        else:
            out["class_coefs"] = em.coefs[1:]
    groups, single = free_item_groups(prepared)
    for c, js in groups.items():
        out["item_probs" if single else f"item_probs_C{c}"] = probs[:, js, :c]
    if prepared.ordinal_items:
        js = list(prepared.ordinal_items)
        c = r.n_categories[js[0]]
        tau0, eta0 = ordinal_initial_values(r.one_hot()[:, js, :c], em.posterior, r.row_weights)
        out["cutpoints"] = tau0
        if K > 1:
            out["class_location"] = eta0.T  # (item_ordinal, class)
    return out

"""Label switching in the joint model: every draw on the EM labelling (as ``models.lca``),
then class 1 made the reference of the class effects again; do the chains agree."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from carestar import relabel
from models.lca import EMFit, permutations_to_em


def relabel_to_em(post: xr.Dataset, em: EMFit) -> tuple[xr.Dataset, dict[str, Any]]:
    """Every variable with a class dim relabelled to the EM labelling, then re-referenced
    (``rereference``); and how many draws moved (``relabel.n_switched``)."""
    perms = permutations_to_em(post, em)
    post = relabel.relabel_dataset(post, perms)  # every variable with a class dim
    return rereference(post), relabel.n_switched(perms)


def rereference(post: xr.Dataset) -> xr.Dataset:
    """Make class 1 the reference again after relabelling: gamma - gamma_1, cutpoints - gamma_1.

    ``P(s <= c | k) = F(c_c - eta - gamma_k)`` is unchanged when gamma and the cutpoints
    shift together; the category probabilities at the average row and class
    (``category_probs_at_mean``) do not depend on the labels.
    """
    post = post.copy()
    gamma = post["class_effects"]
    g0 = gamma.isel({"class": 0})
    post["class_effects"] = gamma - g0
    # always: a relabelling that keeps class 1 in place still permutes the free effects
    if "class_effects_free" in post:  # absent when model.blocks leaves out practice
        post["class_effects_free"] = post["class_effects_free"].copy(
            data=post["class_effects"].values[..., 1:])
    post["cutpoints"] = post["cutpoints"] - g0
    return post


def chain_agreement(idata: xr.DataTree, *, lp_tol: float, profile_tol: float) -> dict[str, Any]:
    """``relabel.chain_agreement`` of the relabelled draws, with each chain's mean class effects."""
    post = idata["posterior"]
    stats = idata["sample_stats"] if "sample_stats" in idata.children else None
    lp = (stats["lp"].values if stats is not None and "lp" in stats.data_vars
          else np.zeros(post["class_shares"].shape[:2]))
    out = relabel.chain_agreement(
        lp, post["item_probs"].values, post["class_shares"].values,
        lp_tol=lp_tol, profile_tol=profile_tol)
    gamma = post["class_effects"].values.mean(axis=1)
    out["chain_mean_class_effects"] = np.round(gamma, 3).tolist()
    return out

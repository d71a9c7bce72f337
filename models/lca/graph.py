"""The latent class model's PyMC graph (``LatentClassModel.build``): class membership
(Dirichlet shares, or a multinomial logit on covariates), item emissions (free Dirichlet
profiles, or the ordered logit of ``models.lca.emission``), the class summed out of each
organisation's weighted log likelihood in the ``responses_loglik`` Potential. The math is
in ``models.lca.model``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from carestar.errors import ConfigError
from models.lca.data import PreparedLCA
from models.lca.emission import ordered_logit_emission
from models.lca.initial_values import free_item_groups

if TYPE_CHECKING:
    from models.lca.model import LatentClassModel

ANSWERS = "answers"  # the one-hot answers (org, item, category) as pm.Data


def lca_graph(lca: LatentClassModel, prepared: PreparedLCA) -> pm.Model:
    """The pm.Model of ``lca`` (its priors) for ``prepared``."""
    r, K = prepared.responses, prepared.n_classes
    cmax = r.max_categories
    coords: dict[str, Any] = {
        "class": prepared.class_labels,
        "item": list(r.items),
        "category": list(range(cmax)),
        "org": [str(o) for o in r.orgs],
    }
    groups, single = free_item_groups(prepared)
    with pm.Model(coords=coords) as model:
        one_hot = pm.Data(ANSWERS, r.one_hot().astype(float))  # task=sbc swaps in new answers
        # class membership
        if prepared.design is None:
            if K == 1:
                shares = pm.Deterministic("class_shares", pt.ones(1), dims="class")
            else:
                shares = pm.Dirichlet(
                    "class_shares", a=np.full(K, lca.class_share_alpha), dims="class")
            log_pi = pt.log(shares)[None, :]
        else:
            model.add_coord("coef", list(prepared.coef_names))
            model.add_coord("class_free", prepared.class_labels[1:])
            x = pt.as_tensor(prepared.design)
            if K == 1:
                log_pi = pt.zeros((r.n_org, 1))
                pm.Deterministic("class_shares", pt.ones(1), dims="class")
            else:
                coefs = pm.Normal("class_coefs", 0.0, lca.covariate_sigma,
                                  dims=("class_free", "coef"))
                full = pt.concatenate([pt.zeros((1, x.shape[1])), coefs], axis=0)
                pm.Deterministic("class_coefs_full", full, dims=("class", "coef"))
                log_pi = pt.special.log_softmax(pt.dot(x, full.T), axis=1)
                pm.Deterministic("class_shares", pt.exp(log_pi).mean(axis=0), dims="class")
        # item responses
        log_item = pt.zeros((r.n_org, K))
        padded = []  # (item indices, C_g, (K, J_g, C_g) tensor)
        for c, js in groups.items():
            name = "item_probs" if single else f"item_probs_C{c}"
            if not single:
                model.add_coord(f"item_C{c}", [r.items[j] for j in js])
                model.add_coord(f"category_C{c}", list(range(c)))
            dims = ("class", "item", "category") if single else (
                "class", f"item_C{c}", f"category_C{c}")
            theta = pm.Dirichlet(
                name, a=np.full((K, len(js), c), lca.item_alpha), dims=dims)
            oh = one_hot[:, js, :c].reshape((r.n_org, -1))
            log_item = log_item + pt.dot(oh, pt.log(theta).reshape((K, -1)).T)
            padded.append((js, c, theta))
        if prepared.ordinal_items:
            js = list(prepared.ordinal_items)
            c = r.n_categories[js[0]]
            if any(r.n_categories[j] != c for j in js):
                raise ConfigError("ordinal_emission needs the ordinal items to share a scale")
            theta = ordered_logit_emission(model, [r.items[j] for j in js], c, K,
                                           cutpoint_sigma=lca.cutpoint_sigma,
                                           location_sigma=lca.location_sigma)
            oh = one_hot[:, js, :c].reshape((r.n_org, -1))
            log_item = log_item + pt.dot(oh, pt.log(theta).reshape((K, -1)).T)
            padded.append((js, c, theta))
        if not single:
            full = pt.zeros((K, r.n_item, cmax))
            for js, c, theta in padded:  # static sizes: JAX cannot slice by a shape
                full = pt.set_subtensor(full[:, js, :c], theta)
            pm.Deterministic("item_probs", full, dims=("class", "item", "category"))
        ll = pt.logsumexp(log_pi + log_item, axis=1)
        pm.Potential("responses_loglik", pt.dot(pt.as_tensor(r.row_weights), ll))
    return model

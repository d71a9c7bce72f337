"""The joint model's PyMC graph (``JointModel.build``): class shares and item profiles, the
rating's linear predictor given the class, the class summed out per organisation in the
``joint_loglik`` Potential. The math is in ``models.joint.model``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from carestar.likelihood import group_effects
from models.joint.likert import stance_block
from models.joint.prepared import PreparedJoint
from models.lca.emission import ordered_logit_emission
from models.ordinal_likelihood import link_quantile, observed_log_prob

if TYPE_CHECKING:
    from models.joint.model import JointModel

ANSWERS, STARS = "answers", "stars"  # the pm.Data of the graph


def joint_graph(joint: JointModel, prep: PreparedJoint) -> pm.Model:
    """The pm.Model of ``joint`` (its config and priors) for ``prep``."""
    d, r, K = prep.design, prep.responses, prep.n_classes
    C = len(d.categories)
    coords = {
        "effect": d.effects,
        "category": list(d.categories),
        "cutpoint": [f"{a}|{b}" for a, b in zip(d.categories, d.categories[1:])],
        "class": prep.class_labels,
        "class_free": prep.class_labels[1:],
        "item": list(r.items),
        "response": list(range(r.max_categories)),
    }
    groups = prep.category_groups()
    with pm.Model(coords=coords) as model:
        # the data as pm.Data: task=sbc gives the compiled model new answers and ratings
        one_hot = pm.Data(ANSWERS, r.one_hot().astype(float))
        stars = pm.Data(STARS, np.asarray(d.y, dtype="int64"))
        # latent classes of local practice (as models/lca.py)
        if K > 1:
            shares = pm.Dirichlet("class_shares", a=np.full(K, joint._prior(
                "class_shares", "alpha", 1.0)), dims="class")
        else:
            shares = pm.Deterministic("class_shares", pt.ones(1), dims="class")
        log_item = pt.zeros((r.n_org, K))
        padded = []
        for c, js in groups.items():
            name = prep.free_item_name(c)
            if name == "item_probs":
                dims = ("class", "item", "response")
            else:
                model.add_coord(f"item_C{c}", [r.items[j] for j in js])
                model.add_coord(f"response_C{c}", list(range(c)))
                dims = ("class", f"item_C{c}", f"response_C{c}")
            theta = pm.Dirichlet(name, a=np.full((K, len(js), c), joint._prior(
                "item_probs", "alpha", 1.0)), dims=dims)
            padded.append((js, c, theta))
        if prep.ordinal_items:  # ordered logit (models.lca.emission)
            js = list(prep.ordinal_items)
            c = r.n_categories[js[0]]
            theta = ordered_logit_emission(
                model, [r.items[j] for j in js], c, K,
                cutpoint_sigma=joint._prior("item_cutpoints", "sigma", 3.0),
                location_sigma=joint._prior("class_location", "sigma", 2.0),
                cutpoints="item_cutpoints", cutpoint_dim="item_cutpoint")
            padded.append((js, c, theta))
        for js, c, theta in padded:
            oh = one_hot[:, js, :c].reshape((r.n_org, -1))
            log_item = log_item + pt.dot(oh, pt.log(theta).reshape((K, -1)).T)
        if not prep.single_item_variable():
            full = pt.zeros((K, r.n_item, r.max_categories))
            for js, c, theta in padded:  # static sizes: JAX cannot slice by a shape
                full = pt.set_subtensor(full[:, js, :c], theta)
            pm.Deterministic("item_probs", full, dims=("class", "item", "response"))
        # ratings given the class
        X = pt.as_tensor(d.X.to_numpy(float))
        if d.effects:
            beta = pm.Normal("beta", 0.0, joint._prior("effects", "sigma", 1.0),
                             dims="effect")
        else:  # model.blocks without strategy type and resources
            beta = pm.Deterministic("beta", pt.zeros(0), dims="effect")
        eta = pt.dot(X, beta)
        eta = eta + group_effects(d.groups[0], joint._prior("group_sd", "sigma", 1.0))
        model.add_coords({"year": list(d.period.levels)})
        tau = pm.ZeroSumNormal("year_effect", sigma=joint._prior("year_effects", "sigma", 1.0),
                               dims="year")
        eta = eta + tau[d.period.codes]
        if prep.likert is not None:
            eta = eta + stance_block(
                model, prep.likert, prep.org_of_row,
                loading_sigma=joint._prior("loadings", "sigma", 2.0),
                cutpoint_sigma=joint._prior("likert_cutpoints", "sigma", 3.0),
                effect_sigma=(joint._prior("effects", "sigma", 1.0)
                              if "strategy" in joint.blocks else None))
        if "practice" in joint.blocks:
            gamma_free = pm.Normal("class_effects_free", 0.0,
                                   joint._prior("class_effects", "sigma", 1.0),
                                   dims="class_free")
            gamma = pt.concatenate([pt.zeros(1), gamma_free])
        else:
            gamma = pt.zeros(K)
        gamma = pm.Deterministic("class_effects", gamma, dims="class")
        alpha = joint._prior("cutpoints", "alpha", 1.0)
        pi = pm.Dirichlet("category_probs_at_mean", a=np.full(C, alpha), dims="category")
        at_mean = pt.dot(pt.as_tensor(d.X.to_numpy(float).mean(axis=0)), beta) + gamma.mean()
        cutpoints = pm.Deterministic(
            "cutpoints", link_quantile(joint.link, pt.cumsum(pi)[:-1]) + at_mean, dims="cutpoint")
        log_rate = observed_log_prob(joint.link, eta[:, None] + gamma[None, :], cutpoints,
                                     stars, C, d.lowest)  # (N, K)
        # sum each organisation's rating rows: (org, K)
        log_rate_org = pt.dot(np.eye(r.n_org)[:, prep.org_of_row], log_rate)
        ll = pt.logsumexp(pt.log(shares)[None, :] + log_item + log_rate_org, axis=1)
        pm.Potential("joint_loglik", ll.sum())
    return model

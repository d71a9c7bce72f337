"""Figures of the joint model: the poster's Figure 1, item profiles, drivers of the rating."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from carestar.study_design import STRATEGY_LEVELS
from models import ordinal_figures
from models.ordinal_likelihood import category_probabilities

if TYPE_CHECKING:
    from models.joint import JointModel, PreparedJoint


def strategy_probabilities(model: "JointModel", idata: xr.DataTree, prep: "PreparedJoint"
                           ) -> pd.DataFrame:
    """P(stars = k) in the figure year for a council of each strategy type, for the categories
    that year's rating regime awarded (``model.lowest_stars``), so each type's rows sum to 1.

    Population-averaged: resources at their means (0), the organisation intercept
    integrated over its normal distribution (Gauss-Hermite) and the latent class over the
    class shares, per draw: sum_k pi_k E_u[P(stars | beta_type + tau_year + gamma_k + u)].
    The same table as models/ordinal_figures.py, so the same Figure 1 draws it. With
    ``model.strategy=latent`` a type's council has the mean stance scores of the councils
    reporting that type.
    """
    post = idata["posterior"]

    def draws(name):
        return post[name].stack(sample=("chain", "draw")).transpose("sample", ...).values

    cut = draws("cutpoints")  # (S, C-1)
    gamma, shares = draws("class_effects"), draws("class_shares")  # (S, K)
    year = model.figure_year
    lowest = model.lowest_stars.get(int(year), 0)
    shift = post["year_effect"].sel(year=str(year)).stack(sample=("chain", "draw")).values
    org_sd = post["org_sd"].isel(org_coef=0).stack(sample=("chain", "draw")).values
    nodes, weights = np.polynomial.hermite_e.hermegauss(ordinal_figures.HERMITE_NODES)
    weights = weights / weights.sum()
    ref = model.reference.get("strategy_type", "defender")
    latent = "stance_effects" in post
    rows = []
    for level in STRATEGY_LEVELS:
        if latent:  # a council with the mean stance scores of the councils of this type
            members = [i for i, t in enumerate(prep.types) if t == level]
            theta = draws("stance_scores")[:, members, :].mean(axis=1)  # (S, stance)
            effect = (theta * draws("stance_effects")).sum(axis=1)
        elif level == ref or f"strategy_type[{level}]" not in post["effect"]:
            effect = np.zeros(cut.shape[0])  # reference, or strategy left out (model.blocks)
        else:
            effect = post["beta"].sel(effect=f"strategy_type[{level}]").stack(
                sample=("chain", "draw")).values
        eta = ((effect + shift)[:, None, None] + gamma[:, :, None]
               + org_sd[:, None, None] * nodes[None, None, :])  # (S, K, nodes)
        p = category_probabilities(model.link, eta, cut[:, None, None, :], lowest)  # (S, K, nodes, C)
        p = (p * weights[None, None, :, None]).sum(axis=2)
        p = (p * shares[:, :, None]).sum(axis=1)  # (S, C)
        rows += ordinal_figures.probability_rows(p, prep.design.categories, lowest, year=year,
                                                 strategy_type=level)
    return pd.DataFrame(rows)


def draw_all(model: "JointModel", idata: xr.DataTree, prep: "PreparedJoint") -> dict[str, Figure]:
    from types import SimpleNamespace

    from carestar import drivers
    from models.lca.figures import item_profiles_figure
    from models.lca.posterior import is_mode_only
    from models.lca.predictive import answer_check, answer_check_figure

    figures = {}
    table = strategy_probabilities(model, idata, prep)
    figures["figure1_strategy"] = ordinal_figures.figure1(table)
    labels = ((prep.truth or {}).get("local_practice") or {}).get("item_labels")
    view = SimpleNamespace(responses=prep.responses, n_classes=prep.n_classes,
                           class_labels=prep.class_labels, item_labels=labels)
    figures["item_profiles"] = item_profiles_figure(idata, view)
    if not is_mode_only(idata):
        figures["ppc_answers"] = answer_check_figure(answer_check(idata["posterior"], prep.responses), labels)
    dec = drivers.decompose(idata, prep.design, link=model.link, omit=model.fixed_at_zero())
    figures["drivers"] = drivers.figure(dec)
    return figures

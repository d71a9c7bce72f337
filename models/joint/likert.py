"""Strategy as latent stances (``model.strategy: latent``): the Likert answers, their
ordered-logit measurement model in PyMC and in numpy, and starting cutpoints.

The math is in ``models.joint.model`` ("Strategy as latent stances").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
from scipy.special import expit

from carestar.errors import DataError
from carestar.schemas import STANCE_ITEMS, STRATEGY_TYPES

LIKERT_LEVELS = 7
LATENT_NAMES = ("stance_scores", "stance_effects", "loadings", "likert_cutpoints")


def likert_codes(strategy: pd.DataFrame, orgs: list[str]) -> np.ndarray:
    """(org, STANCE_ITEMS) Likert answers 1-7 as codes 0..6 (-1 missing); bad values stop."""
    missing = [c for c in STANCE_ITEMS if c not in strategy.columns]
    if missing:
        raise DataError(f"model.strategy=latent needs the Likert items; missing {missing}",
                        file="strategy.csv", expected=f"columns {list(STANCE_ITEMS)}")
    table = strategy.reindex(orgs)[list(STANCE_ITEMS)].apply(pd.to_numeric, errors="coerce")
    values = table.to_numpy(float)
    bad = np.isfinite(values) & ~np.isin(values, np.arange(1, LIKERT_LEVELS + 1))
    if bad.any():
        i, j = np.nonzero(bad)
        raise DataError("Likert answers outside 1-7", file="strategy.csv",
                        column=STANCE_ITEMS[j[0]], expected="integers 1-7 or blank",
                        hint="orgs: " + ", ".join(orgs[k] for k in i[:10]))
    return np.where(np.isfinite(values), values - 1, -1).astype(int)


def likert_initial_cutpoints(likert: np.ndarray) -> np.ndarray:
    """(item, 6) logits of the marginal cumulative proportions (ordered starting values)."""
    out = []
    for j in range(likert.shape[1]):
        col = likert[:, j][likert[:, j] >= 0]
        counts = np.bincount(col, minlength=LIKERT_LEVELS) + 0.5
        cum = np.cumsum(counts)[:-1] / counts.sum()
        out.append(np.log(cum / (1 - cum)))
    return np.array(out)


def stance_of_item() -> np.ndarray:
    """Index into ``STRATEGY_TYPES`` of the stance each Likert item measures."""
    return np.array([STRATEGY_TYPES.index(i.rsplit("_", 1)[0]) for i in STANCE_ITEMS])


def stance_block(model: pm.Model, likert: np.ndarray, org_of_row: np.ndarray, *,
                 loading_sigma: float, cutpoint_sigma: float, effect_sigma: float | None):
    """Stance scores measured by the Likert items (ordered logit); their rating effects.

    Adds the variables to ``model`` (inside its context) and returns the rating rows'
    contribution ``theta_{org[n]} . delta``; ``effect_sigma=None`` fixes delta at 0 (the
    strategy block left out by ``model.blocks``).
    """
    n_cut = LIKERT_LEVELS - 1
    model.add_coords({"stance": list(STRATEGY_TYPES), "likert_item": list(STANCE_ITEMS),
                      "likert_cut": list(range(1, n_cut + 1))})
    org_dim = "org"  # added by group_effects
    theta = pm.Normal("stance_scores", 0.0, 1.0, dims=(org_dim, "stance"))
    loading = pm.HalfNormal("loadings", sigma=loading_sigma, dims="likert_item")
    cuts = pm.Normal("likert_cutpoints", 0.0, cutpoint_sigma,
                     dims=("likert_item", "likert_cut"),
                     transform=pm.distributions.transforms.ordered)
    org, item = np.nonzero(likert >= 0)
    stance = stance_of_item()
    # a Potential like the rest of the likelihood (an observed variable would make the
    # run's "log likelihood at the posterior mean" report the Likert items alone)
    answers = pm.OrderedLogistic.dist(eta=loading[item] * theta[org, stance[item]],
                                      cutpoints=cuts[item], compute_p=False)
    pm.Potential("likert_loglik", pm.logp(answers, likert[org, item]).sum())
    if effect_sigma is not None:
        delta = pm.Normal("stance_effects", 0.0, effect_sigma, dims="stance")
    else:
        delta = pm.Deterministic("stance_effects", pt.zeros(len(STRATEGY_TYPES)),
                                 dims="stance")
    return pt.dot(theta, delta)[org_of_row]


def likert_log_lik(v: dict[str, np.ndarray], prep) -> np.ndarray:
    """(S, org, item) log P(answer) of the ordered-logit measurement model (0 where missing)."""
    theta = v["stance_scores"][:, :, stance_of_item()]  # (S, org, item)
    loc = v["loadings"][:, None, :] * theta
    cdf = expit(v["likert_cutpoints"][:, None, :, :] - loc[..., None])  # (S, org, item, 6)
    zeros = np.zeros(cdf.shape[:-1] + (1,))
    p = np.diff(np.concatenate([zeros, cdf, zeros + 1.0], axis=-1), axis=-1)
    code = np.clip(prep.likert, 0, None)
    p_obs = np.take_along_axis(p, np.broadcast_to(code[None, ..., None], p.shape[:-1] + (1,)),
                               -1)[..., 0]
    with np.errstate(divide="ignore"):
        return np.where(prep.likert[None] >= 0, np.log(p_obs), 0.0)

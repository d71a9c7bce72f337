"""The synthetic study's survey answers: each organisation's strategy type and Likert
items (the ``strategy`` table) and its latent practice class and local-practice answers (the
``local_practice`` table), drawn from known parameters, with their truth.

Generating model
----------------
For each organisation ``i`` (England and Northern Ireland):

* strategy type ``s_i ~ Categorical(type_shares)``;
  latent stance scores ``theta_{i,k} = boost * [s_i = k] + N(0, 1)`` for the four stances
  ``k``; Likert item ``j`` of stance ``k`` (1-7) by an ordered logit
  ``P(Y_{ikj} <= m) = logistic(tau_{j,m} - lambda_j * theta_{i,k})``, ``m = 1..6``;
* latent practice class ``c_i ~ Categorical(class_shares)`` (low / medium / high use);
  degree-of-use item ``d`` (0-5): ``P(Y <= m) = logistic(kappa_m - (mu_c + delta_d))``;
  process item ``p`` (0/1): ``Y ~ Bernoulli(pi_{c,p})``; each response is then missing
  (row absent) with probability ``missing_rate``.

``s_i`` and ``c_i`` also drive the ratings (``carestar.synthetic_ratings``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from carestar.schemas import STANCE_ITEMS, STRATEGY_TYPES
from carestar.synthetic_params import PracticeParams, StrategyParams


# --------------------------------------------------------------------------- strategy


def ordered_logit_probabilities(location: np.ndarray, thresholds) -> np.ndarray:
    """P(Y = m), m = 0..K, for ``P(Y <= m) = logistic(thresholds[m] - location)``."""
    cdf = expit(np.asarray(thresholds)[None, :] - np.asarray(location, float)[:, None])
    cdf = np.column_stack([np.zeros(len(cdf)), cdf, np.ones(len(cdf))])
    return np.diff(cdf, axis=1)


def draw_categories(rng, probabilities: np.ndarray) -> np.ndarray:
    """One category per row of a (rows x categories) probability matrix."""
    u = rng.random(len(probabilities))[:, None]
    return (u > np.cumsum(probabilities, axis=1)[:, :-1]).sum(axis=1)


def draw_strategy(rng, orgs: np.ndarray, p: StrategyParams):
    types = np.array(STRATEGY_TYPES)
    shares = np.array([p.type_shares[t] for t in STRATEGY_TYPES])
    strategy_type = types[rng.choice(len(types), size=len(orgs), p=shares / shares.sum())]
    stance = rng.normal(size=(len(orgs), len(types)))
    stance += p.own_stance_boost * (strategy_type[:, None] == types[None, :])
    table = pd.DataFrame({"org": orgs, "strategy_type": strategy_type})
    for k, t in enumerate(STRATEGY_TYPES):
        for j, loading in enumerate(p.loadings):
            probs = ordered_logit_probabilities(loading * stance[:, k], p.thresholds)
            table[f"{t}_{j + 1}"] = pd.array(draw_categories(rng, probs) + 1, dtype="Int64")
    truth = {
        "type_shares": dict(p.type_shares),
        "own_stance_boost": p.own_stance_boost,
        "item_model": "P(item <= m) = logistic(thresholds[m-1] - loading * stance), m = 1..6",
        "loadings": {item: p.loadings[int(item[-1]) - 1] for item in STANCE_ITEMS},
        "thresholds": {item: list(p.thresholds) for item in STANCE_ITEMS},
        "stance_scores": {o: dict(zip(STRATEGY_TYPES, map(float, row)))
                          for o, row in zip(orgs, stance)},
    }
    return table, dict(zip(orgs, strategy_type)), truth


# --------------------------------------------------------------------------- local practice


def practice_item_probabilities(p: PracticeParams) -> dict[str, dict[str, dict[str, Any]]]:
    """Class-specific response probabilities: degree items P(0..5), process items P(used)."""
    degree = {
        item: {c: ordered_logit_probabilities(
            [p.class_location[c] + p.degree_item_offsets[item]], p.degree_thresholds)[0].tolist()
            for c in p.class_shares}
        for item in p.degree_items
    }
    process = {item: {c: p.process_probability[item][c] for c in p.class_shares}
               for item in p.process_items}
    return {"degree_of_use": degree, "used": process}


def draw_local_practice(rng, orgs: np.ndarray, p: PracticeParams):
    classes = list(p.class_shares)
    shares = np.array([p.class_shares[c] for c in classes])
    practice_class = np.array(classes)[rng.choice(len(classes), size=len(orgs),
                                                  p=shares / shares.sum())]
    probs = practice_item_probabilities(p)
    frames = []
    for item in p.degree_items:
        matrix = np.array([probs["degree_of_use"][item][c] for c in practice_class])
        frames.append(pd.DataFrame({"org": orgs, "item": item,
                                    "degree_of_use": draw_categories(rng, matrix), "used": None}))
    for item in p.process_items:
        pi = np.array([probs["used"][item][c] for c in practice_class])
        frames.append(pd.DataFrame({"org": orgs, "item": item, "degree_of_use": None,
                                    "used": (rng.random(len(orgs)) < pi).astype(int)}))
    table = pd.concat(frames, ignore_index=True)
    kept = rng.random(len(table)) >= p.missing_rate
    table = table[kept].sort_values(["org", "item"], ignore_index=True)
    for column in ("degree_of_use", "used"):
        table[column] = pd.array(table[column].tolist(), dtype="Int64")
    truth = {
        "classes": classes,
        "class_shares": dict(p.class_shares),
        "class_of_org": dict(zip(orgs, practice_class.tolist())),
        "item_probabilities": probs,
        "item_labels": {**p.degree_items, **p.process_items},
        "missing_rate": p.missing_rate,
        "missing_responses": int((~kept).sum()),
    }
    return table, dict(zip(orgs, practice_class)), truth

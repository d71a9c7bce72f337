"""The posterior predictive check of the answers (models/lca/predictive.py), fast: on data
simulated from known parameters, a "posterior" at the truth reproduces the answers and a
wrong one does not."""

from __future__ import annotations

import numpy as np
import xarray as xr
from test_figures import check_layout

from models.lca.predictive import answer_check, answer_check_figure
from models.lca.simulate import simulate

SHARES = np.array([0.5, 0.3, 0.2])
PROBS = np.array([[[0.8, 0.15, 0.05]] * 6, [[0.2, 0.6, 0.2]] * 6, [[0.05, 0.15, 0.8]] * 6])


def _posterior(shares, probs, draws=100):
    return xr.Dataset({
        "class_shares": (("chain", "draw", "class"), np.broadcast_to(shares, (2, draws, 3)).copy()),
        "item_probs": (("chain", "draw", "class", "item", "category"), np.broadcast_to(probs, (2, draws, 3, 6, 3)).copy()),
    })


def test_the_truth_reproduces_the_answers_and_a_wrong_model_does_not():
    responses, _ = simulate(600, SHARES, PROBS, seed=3, missing=0.1)
    right = answer_check(_posterior(SHARES, PROBS), responses, seed=1)
    assert len(right) == 6 * 3 and np.allclose(right.groupby("item")["observed"].sum(), 1.0)
    assert right["inside"].mean() >= 0.75  # ~90% expected; 18 shares
    assert (right["q05"] <= right["median"]).all() and (right["median"] <= right["q95"]).all()
    one_class = np.broadcast_to(PROBS[0], (3, 6, 3))  # every class answers like the first
    wrong = answer_check(_posterior(SHARES, one_class), responses, seed=1)
    assert wrong["inside"].mean() <= 0.2


def test_covariates_and_weights_enter_the_replicates():
    """With class_coefs_full and a design, the class probabilities are the softmax per row;
    frequency weights count as repeated rows."""
    from dataclasses import replace

    responses, _ = simulate(300, SHARES, PROBS, seed=4)
    design = np.column_stack([np.ones(300), np.linspace(-2, 2, 300)])
    coefs = np.zeros((3, 2))  # equal classes whatever x
    post = _posterior(SHARES, PROBS).assign(
        class_coefs_full=(("chain", "draw", "class", "coef"), np.zeros((2, 100, 3, 2)) + coefs))
    table = answer_check(post, responses, design, seed=2)
    equal = answer_check(_posterior(np.full(3, 1 / 3), PROBS), responses, seed=2)
    assert np.allclose(table["median"], equal["median"], atol=0.03)
    weighted = replace(responses, weights=np.where(np.arange(300) < 150, 3.0, 1.0))
    expected = np.average(responses.codes[:, 0] == 0, weights=weighted.weights)
    assert answer_check(_posterior(SHARES, PROBS), weighted)["observed"].iloc[0] == expected


def test_the_figure():
    responses, _ = simulate(200, SHARES, PROBS, seed=5)
    table = answer_check(_posterior(SHARES, PROBS), responses)
    fig = answer_check_figure(table, {"item01": "Uses outcome measures"})
    check_layout("ppc_answers", fig)
    assert len(fig.axes) == 6 and fig.axes[0].get_title(loc="left") == "Uses outcome measures"
    assert "90% interval" in fig.get_suptitle() and fig.legends

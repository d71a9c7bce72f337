"""LCA against published poLCA results (tests/data/reference/REFERENCES.md sections 2-3).

The log likelihood at the posterior mode (the EM point; with the default flat Dirichlet
priors it is the ML point) is compared with poLCA's, and the 2-class values profile with
the published one; then the mode is cross-checked with StepMix on a simulated study and the
PyMC graph's log likelihood is evaluated at that mode.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from carestar import relabel
from carestar.item_responses import ItemResponses
from models.lca import LatentClassModel, fit_em, row_loglik, simulate

DATA = Path(__file__).parent / "data" / "reference"
CHEAT_ITEMS = ["LIEEXAM", "LIEPAPER", "FRAUD", "COPYEXAM"]


def _values() -> ItemResponses:
    return ItemResponses.from_frame(pd.read_csv(DATA / "values.csv"), list("ABCD"),
                                    weights="count", source="values.csv")


@pytest.mark.parametrize(("k", "published"), [(1, -543.6498), (2, -504.4677)])
def test_values_loglik(k, published):
    em = fit_em(_values(), k, seed=1, n_init=10)
    assert abs(em.loglik - published) < 0.05
    assert em.n_params == 4 + 5 * (k - 1)


def test_values_two_class_profile():
    em = fit_em(_values(), 2, seed=1, n_init=10)
    # published P(item = 2 | class): [particularistic, universalistic], shares first
    ref = np.array([[0.7207525, 0.7135876, 0.3296187, 0.3540158, 0.1323720],
                    [0.2792475, 0.9931929, 0.9397633, 0.9265298, 0.7691305]])
    ours = np.column_stack([em.shares, em.probs[:, :, 1]])
    perm = relabel.match_classes(ours, ref)
    assert np.abs(ours[perm] - ref).max() < 0.03
    assert abs(em.bic(216) - 1057.313) < 0.1


def test_values_mode_through_the_pymc_graph():
    """The PyMC model's likelihood term at the EM mode is the published log likelihood."""
    m = LatentClassModel(n_classes=2, em_starts=10, seed=1)
    prep = m.prepare(_values())
    model = m.build(prep)
    point = {}
    for rv in model.free_RVs:
        tr = model.rvs_to_transforms[rv]
        point[model.rvs_to_values[rv].name] = tr.forward(m.initvals(prep)[rv.name]).eval()
    ll = model.compile_logp(vars=model.potentials, jacobian=False)(point)
    assert abs(ll - (-504.4677)) < 0.05


def test_cheating_two_classes():
    frame = pd.read_csv(DATA / "cheating.csv")
    r = ItemResponses.from_frame(frame, CHEAT_ITEMS, source="cheating.csv")
    em = fit_em(r, 2, seed=1, n_init=10)
    assert r.n_org == 319
    assert abs(em.loglik - (-440.0271)) < 0.05
    assert abs(em.aic() - 898.0542) < 0.1


def test_mode_agrees_with_stepmix_on_a_simulated_study():
    from stepmix.stepmix import StepMix

    rng = np.random.default_rng(21)
    truth = rng.dirichlet(np.full(3, 0.5), size=(3, 12))
    r, _ = simulate(150, [0.5, 0.3, 0.2], truth, seed=22)
    m = LatentClassModel(n_classes=3, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prep = m.prepare(r)
        sm = StepMix(n_components=3, measurement="categorical", n_init=10, random_state=123,
                     max_iter=2000, abs_tol=1e-10, progress_bar=False, verbose=0).fit(r.codes)
    sm_probs = np.asarray(sm.get_parameters()["measurement"]["pis"]).reshape(3, 12, 3)
    sm_shares = np.asarray(sm.weights_)
    ref = np.column_stack([sm_shares, sm_probs.reshape(3, -1)])
    ours = np.column_stack([prep.em.shares, prep.em.probs.reshape(3, -1)])
    perm = relabel.match_classes(ours, ref)
    assert np.abs(ours[perm] - ref).max() < 0.02
    ll_sm = float(row_loglik(r, sm_probs, sm_shares).sum())
    assert abs(prep.em.loglik - ll_sm) < 0.05

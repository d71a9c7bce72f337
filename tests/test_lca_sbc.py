"""task=sbc for the latent class model (models/lca/sbc.py, carestar/sbc_problem.py): the
model's own generator, canonical labels by use, prior draws of ordered cutpoints that are
ordered; a planted prior mismatch fails and the model passes (slow)."""

from __future__ import annotations

import json

import numpy as np
import pymc as pm
import pytest
import xarray as xr
from test_sbc import ROOT, entry, run  # noqa: F401  (the run.py entry fixture)

from carestar.errors import EXIT_GATES_FAILED, ConfigError
from carestar.sbc_problem import data_seed
from models.lca import LatentClassModel
from models.lca.sbc import by_use
from models.lca.simulate import simulate

CARCINOMA = ROOT / "tests" / "data" / "reference" / "carcinoma.csv"
# poLCA's carcinoma data: 118 slides, 7 yes/no ratings, 2 classes; a fit in about 2 s. Five EM
# starts, not 20: on prior draws whose two classes are alike each start's EM creeps to its
# tolerance (up to 3 s a start, 50 s a replication at 20 starts: the EM, not NUTS, was most of
# this test's 11 minutes); the starts only place the chains, and the test is about the ranks.
SMALL = ["task=sbc", "model=lca", "data=csv", f"data.path={CARCINOMA}", "model.n_classes=2",
         "model.em_starts=5", "sbc.max_failed_share=0.5", "sbc.n=25"]


def _posterior(rng, chains=2, draws=5, K=3, J=4, C=3):
    probs = rng.dirichlet(np.ones(C), size=(chains, draws, K, J))
    shares = rng.dirichlet(np.ones(K), size=(chains, draws))
    location = rng.normal(size=(chains, draws, J, K))
    return xr.Dataset({"item_probs": (("chain", "draw", "class", "item", "category"), probs),
                       "class_shares": (("chain", "draw", "class"), shares),
                       "class_location": (("chain", "draw", "item_ordinal", "class"), location),
                       "cutpoints": (("chain", "draw", "item_ordinal", "cutpoint"), rng.normal(size=(chains, draws, J, 2)))})


def test_canonical_labels_do_not_depend_on_how_the_classes_were_labelled():
    rng = np.random.default_rng(0)
    post = _posterior(rng)
    perms = np.stack([[rng.permutation(3) for _ in range(5)] for _ in range(2)])
    from carestar import relabel

    switched = relabel.relabel_dataset(post, perms)
    a, b = by_use(post, (3, 3, 3, 3)), by_use(switched, (3, 3, 3, 3))
    for name in post.data_vars:
        np.testing.assert_allclose(a[name].values, b[name].values)
    use = (a["item_probs"].values * np.arange(3)).sum(-1).mean(-1) / 2  # (chain, draw, class)
    assert (np.diff(use, axis=-1) > 0).all()  # class 1 = lowest use
    np.testing.assert_allclose(a["cutpoints"].values, post["cutpoints"].values)  # no class dim


def test_prior_draws_of_the_ordinal_emission_are_ordered_and_its_probabilities_valid():
    """A plain transform=ordered Normal's prior draws are not sorted: the cutpoints are drawn
    sorted (the order statistics of i.i.d. normals have the ordered prior's density)."""
    probs = np.array([[[0.6, 0.3, 0.1, 0.0]] * 4, [[0.1, 0.2, 0.3, 0.4]] * 4])
    responses, _ = simulate(120, [0.5, 0.5], probs, seed=2)
    model = LatentClassModel(n_classes=2, ordinal_emission=True, em_starts=2)
    graph = model.build(model.prepare(responses))
    with pytest.warns(UserWarning, match="Potentials"):  # the likelihood is left out: prior draws
        prior = pm.sample_prior_predictive(draws=300, model=graph, random_seed=1).prior
    assert (np.diff(prior["cutpoints"].values, axis=-1) > 0).all()
    theta = prior["item_probs"].values
    assert (theta >= 0).all() and np.allclose(theta.sum(-1), 1.0)


def test_the_generator_keeps_missing_answers_missing_and_uses_its_own_stream():
    probs = np.array([[[0.9, 0.1]] * 5, [[0.2, 0.8]] * 5])
    responses, _ = simulate(200, [0.3, 0.7], probs, seed=4, missing=0.2)
    model = LatentClassModel(n_classes=2, em_starts=2)
    gen = model.sbc_generator(model.prepare(responses))
    theta = xr.Dataset({"class_shares": ("class", [0.3, 0.7]),
                        "item_probs": (("class", "item", "category"), probs)})
    a, b = gen.simulate(theta, data_seed(1, 0)), gen.simulate(theta, data_seed(1, 0))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, gen.simulate(theta, data_seed(1, 1)))
    np.testing.assert_array_equal(a.sum(-1), responses.observed)  # one answer where answered, none elsewhere
    share_yes = a[..., 1].sum() / a.sum()
    assert abs(share_yes - (0.3 * 0.1 + 0.7 * 0.8)) < 0.05
    start = gen.initvals(a)
    assert set(start) == {"class_shares", "item_probs"} and start["item_probs"].shape == (2, 5, 2)


def test_covariates_and_weights_are_refused():
    probs = np.array([[[0.9, 0.1]] * 5, [[0.2, 0.8]] * 5])
    responses, _ = simulate(60, [0.5, 0.5], probs, seed=5)
    model = LatentClassModel(n_classes=2, em_starts=2)
    from dataclasses import replace

    weighted = replace(responses, weights=np.full(60, 2.0))
    with pytest.raises(ConfigError, match="frequency weights"):
        model.sbc_generator(model.prepare(weighted))
    import pandas as pd

    with_x = replace(responses, covariates=pd.DataFrame({"x": np.linspace(0, 1, 60)}))
    with pytest.raises(ConfigError, match="covariates of class membership are not supported"):
        model.sbc_generator(model.prepare(with_x))


@pytest.mark.slow
def test_planted_prior_mismatch_fails_and_the_latent_class_model_passes(entry, monkeypatch, tmp_path):  # noqa: F811
    """Answers simulated with item probabilities from Dirichlet(0.2) (near 0 or 1) and fitted
    with the model's Dirichlet(1): the ranks pile up and SBC fails; the model itself passes."""
    bug = tmp_path / "bug"
    assert run(entry, monkeypatch, *SMALL, "sbc.simulator={item_alpha: 0.2}", f"hydra.run.dir={bug}") == EXIT_GATES_FAILED
    verdict = json.loads((bug / "sbc.json").read_text())
    assert not verdict["passed"] and verdict["rejected"], verdict["summary"]
    assert {r["parameter"] for r in verdict["rejected"]} <= {"item_probs", "class_shares"}

    ok = tmp_path / "ok"
    assert run(entry, monkeypatch, *SMALL, f"hydra.run.dir={ok}") == 0
    verdict = json.loads((ok / "sbc.json").read_text())
    assert verdict["passed"] and not verdict["rejected"] and verdict["n"] == 25, verdict["summary"]
    ranks = xr.open_datatree(ok / "ranks.nc", engine="netcdf4")["prior_sbc"]
    assert set(ranks.data_vars) == {"class_shares", "item_probs"} and ranks.sizes["draw"] == 25
    assert int(ranks["item_probs"].max()) <= verdict["L"]
    assert (ok / "figures" / "ecdf_item_probs.png").is_file()

"""task=sbc for the joint model (models/joint/sbc.py): its generator simulates data of the
study's shape that the model can be fitted to, and the canonical labels do not depend on
how the classes were labelled. No fit here (the recorded run is experiments/sbc)."""

from __future__ import annotations

import warnings

import numpy as np
import pymc as pm
import pytest
import xarray as xr
from conftest import compose_config
from hydra.utils import instantiate

from carestar import relabel
from carestar.errors import ConfigError
from carestar.sbc_problem import data_seed
from models.joint.relabelling import rereference


@pytest.fixture(scope="module")
def joint_generator():
    cfg = compose_config("model=joint")
    model = instantiate(cfg.model)
    prep = model.prepare(instantiate(cfg.data))
    gen = model.sbc_generator(prep)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the Potential is left out: prior draws
        prior = pm.sample_prior_predictive(draws=20, model=gen.graph, random_seed=3).prior.to_dataset()
    names = model.monitored(xr.DataTree.from_dict({"posterior": prior}))  # as task=sbc ranks them
    return model, prep, gen, prior, names


def test_simulated_studies_have_the_configured_shape_regimes_and_missing_answers(joint_generator):
    model, prep, gen, prior, names = joint_generator
    data = gen.simulate(prior.isel(chain=0, draw=0), data_seed(1, 0))
    assert set(data) == set(gen.data_names) == {"answers", "stars"}
    np.testing.assert_array_equal(data["answers"].sum(-1), prep.responses.observed)
    stars, d = data["stars"], prep.design
    assert stars.shape == d.y.shape and stars.min() >= 0 and stars.max() < len(d.categories)
    assert (stars >= np.asarray(d.lowest)).all()  # no 0 stars where the regime gave none
    again = gen.simulate(prior.isel(chain=0, draw=0), data_seed(1, 0))
    assert all(np.array_equal(data[k], again[k]) for k in data)
    other = gen.simulate(prior.isel(chain=0, draw=1), data_seed(1, 1))
    assert not np.array_equal(data["stars"], other["stars"])
    start = gen.initvals(data)
    assert start["class_shares"].shape == (prep.n_classes,) and np.allclose(start["class_effects_free"], 0)
    assert set(names) >= {"class_shares", "class_effects_free", "beta", "cutpoints", "org_sd"}


def test_a_larger_class_effect_gives_more_stars(joint_generator):
    """The simulator's sign convention is the model's: P(s <= c) = F(c - eta - gamma)."""
    model, prep, gen, prior, names = joint_generator
    theta = prior.isel(chain=0, draw=0).copy()
    means = []
    for gamma in (-3.0, 3.0):
        theta["class_effects"] = theta["class_effects"].copy(data=np.full(prep.n_classes, gamma))
        means.append(gen.simulate(theta, data_seed(2, 0))["stars"].mean())
    assert means[1] > means[0] + 0.5


def test_canonical_labels_do_not_depend_on_how_the_classes_were_labelled(joint_generator):
    model, prep, gen, prior, names = joint_generator
    rng = np.random.default_rng(0)
    perms = np.stack([[rng.permutation(prep.n_classes) for _ in range(prior.sizes["draw"])]])
    switched = rereference(relabel.relabel_dataset(prior, perms))
    a, b = gen.canonical(prior), gen.canonical(switched)
    for name in names:
        np.testing.assert_allclose(a[name].values, b[name].values, atol=1e-9, err_msg=name)
    assert np.allclose(a["class_effects"].isel({"class": 0}), 0.0)


def test_latent_stances_are_refused():
    cfg = compose_config("model=joint", "model.strategy=latent")
    model = instantiate(cfg.model)
    with pytest.raises(ConfigError, match="latent strategy stances"):
        model.sbc_generator(model.prepare(instantiate(cfg.data)))


def test_prior_draws_are_put_in_the_fits_labelling_before_data_are_simulated(joint_generator):
    """The fit's class 1 is the lowest use (EM's order) with effect 0; a truth must be too,
    or it comes from another prior than the fit's (experiments/sbc: the high-use class's
    effect ranked too low)."""
    from models.lca.em import class_use

    model, prep, gen, prior, names = joint_generator
    fitted = gen.as_fitted(prior)
    use = class_use(fitted["item_probs"].values, prep.responses.n_categories)
    assert (np.diff(use, axis=-1) >= 0).all()  # classes in order of use in every draw
    assert not (np.diff(class_use(prior["item_probs"].values, prep.responses.n_categories), axis=-1) >= 0).all()
    np.testing.assert_array_equal(fitted["class_effects"].values, prior["class_effects"].values)
    canonical = gen.canonical(fitted)  # already canonical: nothing moves
    for name in names:
        np.testing.assert_allclose(canonical[name].values, fitted[name].values, atol=1e-12, err_msg=name)
    # the class shares moved with their item parameters
    order = np.argsort(class_use(prior["item_probs"].values, prep.responses.n_categories), axis=-1)
    np.testing.assert_allclose(fitted["class_shares"].values,
                               np.take_along_axis(prior["class_shares"].values, order, axis=-1))

"""Joint model (models/joint.py): prepare, build, the likelihood against numpy, relabelling."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from helpers_study import synthetic_study
from scipy.special import logsumexp

from carestar.errors import ConfigError
from models.joint import (
    JointModel,
    class_use,
    joint_components,
    rereference,
    three_step_design,
    truth_class_effects,
)
from models.ordinal import category_probabilities

NAMES = ("beta", "org_effect", "year_effect", "class_effects", "cutpoints", "class_shares",
         "item_probs")


@pytest.fixture(scope="module")
def prepared():
    model = JointModel(seed=1, em_starts=2)
    return model, model.prepare(synthetic_study(1))


def _random_point(pm_model, rng):
    point = pm_model.initial_point()
    return {k: v + rng.normal(0, 0.5, size=np.shape(v)) for k, v in point.items()}


def test_prepare_aligns_items_and_ratings(prepared):
    model, prep = prepared
    study = synthetic_study(1)
    assert prep.responses.n_org == 150 == len(set(study.ratings["org"]))
    assert prep.orgs == list(prep.design.groups[0].group.levels)
    rows_org = np.array(prep.orgs)[prep.org_of_row]
    assert (rows_org == prep.design.rows["org"].astype(str).to_numpy()).all()
    assert not any(c.startswith("local_") for c in prep.design.effects)
    use = class_use(prep.em.probs, prep.responses.n_categories)
    assert (np.diff(use) > 0).all(), f"EM classes not ordered by use: {use}"


def test_logp_matches_numpy(prepared):
    """The PyMC Potential equals sum_i logsumexp_k of the numpy components at random points."""
    model, prep = prepared
    pm_model = model.build(prep)
    rng = np.random.default_rng(3)
    # Deterministics and Potentials are graphs of the random variables: evaluate them at
    # the value variables, or compile_fn would draw the random variables instead
    outs = pm_model.replace_rvs_by_values([pm_model[n] for n in (*NAMES, "joint_loglik")])
    fn = pm_model.compile_fn(outs, inputs=pm_model.value_vars, on_unused_input="ignore")
    for _ in range(3):
        point = _random_point(pm_model, rng)
        *vals, potential = fn(point)
        v = {n: np.asarray(x)[None] for n, x in zip(NAMES, vals)}
        expected = logsumexp(joint_components(v, prep, "logit"), axis=-1).sum()
        assert np.isclose(float(potential), expected, rtol=1e-9), (float(potential), expected)


def test_named_dims_and_initvals(prepared):
    model, prep = prepared
    pm_model = model.build(prep)
    dims = pm_model.named_vars_to_dims
    assert dims["class_effects"] == ("class",)
    assert dims["item_probs"] == ("class", "item", "response")
    assert dims["category_probs"] == ("category",)
    iv = model.initvals(prep)
    assert set(iv) <= {v.name for v in pm_model.free_RVs}
    assert np.allclose(iv["item_probs_C6"].sum(-1), 1)


def test_rereference_keeps_likelihood(prepared):
    """Shifting gamma and the cutpoints by gamma_1 leaves every rating probability unchanged."""
    rng = np.random.default_rng(0)
    gamma = np.array([0.5, 0.1, 1.2])
    cut = np.sort(rng.normal(size=3))
    post = xr.Dataset({
        "class_effects": (("chain", "draw", "class"), gamma[None, None]),
        "class_effects_free": (("chain", "draw", "class_free"), gamma[None, None, 1:]),
        "cutpoints": (("chain", "draw", "cutpoint"), cut[None, None]),
        "category_probs": (("chain", "draw", "category"), np.full((1, 1, 4), 0.25)),
    })
    new = rereference(post, "logit")
    assert new["class_effects"].values[0, 0, 0] == 0
    eta = 0.3
    before = category_probabilities("logit", np.array(eta + gamma), cut)
    after = category_probabilities("logit", np.array(eta + new["class_effects"].values[0, 0]),
                                   new["cutpoints"].values[0, 0])
    assert np.allclose(before, after)
    at_zero = category_probabilities("logit", np.zeros(1), new["cutpoints"].values[0, 0])[0]
    assert np.allclose(new["category_probs"].values[0, 0], at_zero)


def test_truth_ordered_by_use():
    truth = synthetic_study(1).truth
    assert np.allclose(truth_class_effects(truth, 3), [0.0, 0.4, 0.8])
    assert truth_class_effects(truth, 2) is None


def test_three_step_design_adds_class_indicators(prepared):
    _, prep = prepared
    classes = prep.em.posterior.argmax(axis=1)
    d = three_step_design(prep, classes)
    assert list(d.X.columns[-2:]) == ["class[2]", "class[3]"]
    row_class = classes[prep.org_of_row]
    assert (d.X["class[3]"].to_numpy() == (row_class == 2)).all()


@pytest.mark.parametrize("kwargs, match", [
    ({"strategy": "latent"}, "not built yet"),
    ({"strategy": "stance"}, "model.strategy"),
    ({"link": "cauchit"}, "model.link"),
    ({"n_classes": 1}, "n_classes"),
    ({"resources": ["local_measures_use"]}, "latent classes"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        JointModel(**kwargs)


def test_bad_prior():
    with pytest.raises(ConfigError, match="priors.class_effects.sigma"):
        JointModel(priors={"class_effects": {"sigma": -1}})._prior("class_effects", "sigma", 1)

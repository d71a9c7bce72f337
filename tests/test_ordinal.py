"""The ordinal model's pieces, checked without sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from carestar.design import Factor, GroupTerm, RegressionDesign
from carestar.errors import ConfigError
import pytensor.tensor as pt

from models.ordinal import OrdinalModel
from models.ordinal_likelihood import category_probabilities, observed_log_prob

CUTS = np.array([-1.0, 0.3, 2.0])


@pytest.mark.parametrize(
    ("link", "cdf"),
    [("logit", stats.logistic.cdf), ("probit", stats.norm.cdf), ("cloglog", lambda x: 1 - np.exp(-np.exp(x)))],
)
def test_category_probabilities_are_cdf_differences(link, cdf):
    eta = np.array([-2.0, 0.0, 1.5])
    p = category_probabilities(link, eta, CUTS)
    cum = cdf(CUTS[None, :] - eta[:, None])
    expected = np.diff(np.concatenate([np.zeros((3, 1)), cum, np.ones((3, 1))], axis=1), axis=1)
    np.testing.assert_allclose(p, expected, atol=1e-12)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_lowest_category_floor_merges_the_bottom_categories():
    eta = np.array([0.0, 0.0])
    rows = np.where(np.array([[False, False, False], [True, False, False]]), -np.inf, CUTS)
    p = category_probabilities("logit", eta, rows)
    assert p[1, 0] == 0.0
    assert p[1, 1] == pytest.approx(p[0, 0] + p[0, 1])


@pytest.mark.parametrize("link", ["logit", "probit", "cloglog"])
def test_observed_log_prob_gathers_the_observed_category(link):
    """The two-cutpoint form equals log of the full category probabilities at y, per shift."""
    y = np.array([0, 1, 2, 3, 1, 2, 3])
    lowest = np.array([0, 0, 0, 0, 1, 1, 2])  # rows 4-6: regimes without the bottom levels
    eta = np.array([-2.0, 0.0, 1.5, 0.3, -0.7, 2.2, 0.1])
    shift = np.array([0.0, 0.4, -1.1])  # e.g. three latent classes
    got = observed_log_prob(link, pt.as_tensor(eta[:, None] + shift[None, :]),
                            pt.as_tensor(CUTS), y, 4, lowest).eval()
    rows = np.where(np.arange(3)[None, :] < lowest[:, None], -np.inf, CUTS)  # (N, C-1)
    for k, s in enumerate(shift):
        p = category_probabilities(link, eta + s, rows)
        np.testing.assert_allclose(got[:, k], np.log(p[np.arange(len(y)), y]), rtol=1e-10)


def _design(weights=None, lowest=None) -> RegressionDesign:
    y = np.array([0, 1, 2, 3, 2, 1])
    X = pd.DataFrame({"x": [-1.0, 0.0, 1.0, 2.0, 0.5, -0.5]})
    org = Factor("org", ("a", "b", "c"), np.array([0, 0, 1, 1, 2, 2]))
    year = Factor("year", ("2005", "2006"), np.array([0, 1, 0, 1, 0, 1]))
    return RegressionDesign(
        outcome="stars", y=y, X=X, categories=("0", "1", "2", "3"),
        groups=(GroupTerm(org),), period=year, weights=weights, lowest=lowest,
    )


def _numpy_loglik(point, design, link="logit"):
    """The same likelihood written independently with scipy."""
    cuts = point["cutpoints"]  # at x = 0 (the model's prior sits at the average row)
    eta = design.X.to_numpy() @ point["beta"] + point["org_effect"][design.groups[0].group.codes, 0]
    eta = eta + point["year_effect"][design.period.codes]
    cum = stats.logistic.cdf(cuts[None, :] - eta[:, None])
    if design.lowest is not None:
        cum[np.arange(3)[None, :] < design.lowest[:, None]] = 0.0
    p = np.diff(np.concatenate([np.zeros((len(eta), 1)), cum, np.ones((len(eta), 1))], axis=1), axis=1)
    w = np.ones(len(eta)) if design.weights is None else design.weights
    return float((w * np.log(p[np.arange(len(eta)), design.y])).sum())


@pytest.mark.parametrize("weights", [None, np.array([1.0, 2.0, 3.0, 1.0, 1.0, 4.0])])
def test_model_log_likelihood_matches_an_independent_implementation(weights):
    design = _design(weights=weights, lowest=np.array([0, 1, 0, 1, 0, 1]))
    model = OrdinalModel().build(design)
    rng = np.random.default_rng(3)
    ip = model.initial_point()
    point = {k: v + rng.normal(0, 0.3, size=np.shape(v)) for k, v in ip.items()}
    outs = model.unobserved_value_vars
    values = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore")(point)
    named = {v.name: value for v, value in zip(outs, values)}
    loglik = model.compile_fn(model.observedlogp, inputs=model.value_vars, on_unused_input="ignore")(point)
    assert float(loglik) == pytest.approx(_numpy_loglik(named, design), rel=1e-9)


def test_weights_count_like_repeated_rows():
    weighted = _design(weights=np.array([2.0, 1, 1, 1, 1, 1]))
    base = _design()
    expanded = RegressionDesign(
        outcome="stars", y=np.r_[base.y, base.y[:1]], X=pd.concat([base.X, base.X.iloc[:1]], ignore_index=True),
        categories=base.categories,
        groups=(GroupTerm(Factor("org", ("a", "b", "c"), np.r_[base.groups[0].group.codes, 0])),),
        period=Factor("year", ("2005", "2006"), np.r_[base.period.codes, 0]),
    )
    m1, m2 = OrdinalModel().build(weighted), OrdinalModel().build(expanded)
    point = m1.initial_point()
    f1 = m1.compile_fn(m1.observedlogp, inputs=m1.value_vars, on_unused_input="ignore")
    f2 = m2.compile_fn(m2.observedlogp, inputs=m2.value_vars, on_unused_input="ignore")
    assert float(f1(point)) == pytest.approx(float(f2(point)))


def test_named_dims():
    model = OrdinalModel().build(_design())
    assert model.named_vars_to_dims["beta"] == ("effect",)
    assert model.named_vars_to_dims["cutpoints"] == ("cutpoint",)
    assert model.named_vars_to_dims["org_z"] == ("org", "org_coef")
    assert model.named_vars_to_dims["year_effect"] == ("year",)
    assert list(model.coords["cutpoint"]) == ["0|1", "1|2", "2|3"]


def test_unknown_link_is_a_config_error():
    with pytest.raises(ConfigError, match="model.link='logistic'.*logit"):
        OrdinalModel(link="logistic")


@pytest.mark.parametrize("weights", [None, np.array([1.0, 2.0, 3.0, 1.0, 1.0, 4.0])])
def test_vectorised_log_likelihood_matches_pymc_draw_by_draw(weights):
    """The model's own pointwise pass (numpy, all draws at once) against PyMC's."""
    import pymc as pm
    import xarray as xr

    design = _design(weights=weights, lowest=np.array([0, 1, 0, 1, 0, 1]))
    ordinal = OrdinalModel()
    model = ordinal.build(design)
    with model:
        prior = pm.sample_prior_predictive(draws=30, random_seed=5)
    idata = xr.DataTree.from_dict({"posterior": prior["prior"].to_dataset()})  # 1 chain x 30 draws
    ours = ordinal.pointwise(idata, design, seed=1)
    with model:
        pm.compute_log_likelihood(idata, progressbar=False)
    np.testing.assert_allclose(
        ours["log_likelihood"]["stars"].values, idata.log_likelihood["stars"].values, rtol=1e-8
    )
    predictive = ours["posterior_predictive"]
    if weights is None:
        replicated = predictive["stars"].values
        assert replicated.min() >= 0 and replicated.max() <= 3
        # rows whose regime awards no 0 stars never replicate a 0
        assert (replicated[..., design.lowest == 1] >= 1).all()
    else:  # w replicates per row: category counts that add up to the row's weight
        counts = predictive["stars_counts"].transpose("chain", "draw", "obs", "category").values
        assert (counts.sum(axis=-1) == weights).all()
        assert (counts[..., design.lowest == 1, 0] == 0).all()


@pytest.mark.parametrize("link", ["logit", "probit", "cloglog"])
def test_replicates_follow_the_category_probabilities(link):
    """Replicates drawn through the latent scale have the categorical distribution of
    ``build``, regime floors included: frequencies within about 4 Monte Carlo SE."""
    import xarray as xr

    design = _design(lowest=np.array([0, 1, 0, 1, 0, 2]))
    draws = 20_000
    constant = {
        "beta": ([0.8], ("effect",)),
        "org_effect": ([[0.3], [-0.5], [0.1]], ("org", "org_coef")),
        "year_effect": ([0.2, -0.2], ("year",)),
        "cutpoints": (CUTS, ("cutpoint",)),
    }
    posterior = xr.Dataset({
        name: (("chain", "draw", *dims), np.broadcast_to(np.asarray(v, float), (1, draws, *np.shape(v))))
        for name, (v, dims) in constant.items()
    }, coords={"chain": [0], "draw": np.arange(draws)})
    replicated = OrdinalModel(link=link).pointwise(
        xr.DataTree.from_dict({"posterior": posterior}), design, seed=2
    )["posterior_predictive"]["stars"].values[0]  # (draws, rows)
    eta = 0.8 * design.X["x"].to_numpy() + np.array([0.3, 0.3, -0.5, -0.5, 0.1, 0.1]) + np.array([0.2, -0.2] * 3)
    rows = np.where(np.arange(3)[None, :] < design.lowest[:, None], -np.inf, CUTS)
    expected = category_probabilities(link, eta, rows)  # (rows, 4)
    observed = np.stack([(replicated == k).mean(axis=0) for k in range(4)], axis=1)
    np.testing.assert_allclose(observed, expected, atol=0.015)
    assert (observed[design.lowest == 2, :2] == 0).all()


def test_only_chosen_predictors_must_be_complete():
    """An organisation without yes/no process answers stops a fit that uses them, not others."""
    import dataclasses

    from helpers_study import synthetic_study

    from carestar.errors import DataError
    from carestar.study_design import ratings_design

    study = synthetic_study(1)
    practice = study.local_practice
    org = study.ratings["org"].iloc[0]
    drop = (practice["org"] == org) & practice["used"].notna()
    broken = dataclasses.replace(study, local_practice=practice[~drop])
    ratings_design(broken, ["strategy_type", "local_measures_use"], {}, year=2007)
    with pytest.raises(DataError, match=rf"local_practice.csv.*processes_used(?s:.*){org}/2007"):
        ratings_design(broken, ["strategy_type", "processes_used"], {}, year=2007)

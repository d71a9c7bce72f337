"""carestar.mode: posterior mode = MLE under flat priors (closed forms), loglik, AIC/BIC."""

from __future__ import annotations

import math

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from carestar.mode import (
    fit_map,
    information_criteria,
    log_likelihood_at,
    n_free_parameters,
    n_observations,
)

X = np.random.default_rng(1).normal(2.0, 3.0, 40)


@pytest.fixture(scope="module")
def normal_fit():
    with pm.Model() as model:
        mu = pm.Flat("mu")
        sigma = pm.HalfFlat("sigma")
        pm.Normal("x", mu, sigma, observed=X)
    return model, fit_map(model, seed=1)


def test_mode_is_mle_on_the_original_scale(normal_fit):
    """Flat prior on sigma: the mode is the MLE sigma^2 = S/n (no log-sigma Jacobian,
    which would give S/(n-1))."""
    _, idata = normal_fit
    post = idata["posterior"]
    assert post.sizes["chain"] == 1 and post.sizes["draw"] == 1
    assert post["mu"].values.item() == pytest.approx(X.mean(), abs=1e-5)
    assert post["sigma"].values.item() == pytest.approx(X.std(ddof=0), rel=1e-5)


def test_loglik_at_mode_matches_closed_form(normal_fit):
    model, idata = normal_fit
    ll = log_likelihood_at(model, {"mu": X.mean(), "sigma": X.std()})
    assert ll == pytest.approx(stats.norm.logpdf(X, X.mean(), X.std()).sum(), rel=1e-10)
    assert idata["log_likelihood"]["x"].sum().item() == pytest.approx(ll, rel=1e-8)
    # value-variable keys work too
    assert log_likelihood_at(model, {"mu": X.mean(), "sigma_log__": math.log(X.std())}) == (
        pytest.approx(ll)
    )


def test_weighted_binomial_mle():
    """Weighted Bernoulli rows: MLE p = sum(w y) / sum(w); loglik counts each row w times."""
    from carestar.likelihood import observed

    y, w = np.array([1, 0]), np.array([7.0, 13.0])
    with pm.Model(coords={"obs": [0, 1]}) as model:
        a = pm.Flat("a")
        observed("y", lambda lp: pm.Bernoulli.dist(logit_p=lp), (a + np.zeros(2),), y, w, "obs")
    idata = fit_map(model, seed=0)
    p = 7 / 20
    assert idata["posterior"]["a"].values.item() == pytest.approx(math.log(p / (1 - p)), abs=1e-5)
    ll = log_likelihood_at(model, {"a": math.log(p / (1 - p))})
    assert ll == pytest.approx(7 * math.log(p) + 13 * math.log(1 - p), rel=1e-10)


def test_information_criteria():
    ic = information_criteria(-1739.5746, 8, 1681)
    assert ic["aic"] == pytest.approx(3495.149, abs=1e-3)  # MASS::polr housing AIC
    assert ic["bic"] == pytest.approx(3479.1492 + 8 * math.log(1681), abs=1e-3)
    assert ic["n_obs"] == 1681 and ic["n_params"] == 8
    with pm.Model() as model:
        pm.Normal("b", shape=3)
        pm.Normal("y", 0, 1, observed=np.zeros(5))
    assert n_free_parameters(model) == 3
    assert n_observations(model) == 5

"""The sampler front end: every sampler returns the same kind of DataTree, seeded."""

from __future__ import annotations

import importlib.util

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from carestar.errors import ConfigError
from carestar.sampling import check_sampler, sample

Y = np.array([0.3, -0.2, 1.1, 0.4, 0.9, 0.0, 0.5, 1.4])


def tiny_model() -> pm.Model:
    with pm.Model(coords={"obs": np.arange(len(Y))}) as model:
        mu = pm.Normal("mu", 0.0, 10.0)
        sigma = pm.HalfNormal("sigma", 2.0)
        pm.Normal("y", mu, sigma, observed=Y, dims="obs")
    return model


def config(nuts_sampler: str) -> dict:
    return {"name": nuts_sampler, "nuts_sampler": nuts_sampler, "draws": 200, "tune": 200,
            "chains": 2, "cores": 1, "target_accept": 0.8, "progressbar": False}


SAMPLERS = [
    "pymc",
    "nutpie",
    pytest.param("numpyro", marks=pytest.mark.skipif(
        importlib.util.find_spec("numpyro") is None, reason="numpyro extra not installed")),
]


@pytest.mark.slow
@pytest.mark.parametrize("nuts_sampler", SAMPLERS)
def test_every_sampler_returns_the_same_groups_and_a_sensible_posterior(nuts_sampler):
    idata = sample(tiny_model(), config(nuts_sampler), seed=7)
    for group in ("posterior", "sample_stats", "log_likelihood", "posterior_predictive", "observed_data"):
        assert group in idata.children, group
    post = idata.posterior
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 200
    # conjugate-ish check: the posterior mean of mu is near the sample mean (SE ~ 0.2)
    assert abs(float(post["mu"].mean()) - Y.mean()) < 0.25
    assert idata.log_likelihood["y"].shape[-1] == len(Y)
    # sample_stats.lp: the model's log density at each draw, whichever sampler drew it
    mu, sd = post["mu"].values, post["sigma"].values
    expected = (stats.norm.logpdf(mu, 0, 10) + stats.halfnorm.logpdf(sd, scale=2)
                + stats.norm.logpdf(Y, mu[..., None], sd[..., None]).sum(-1))
    np.testing.assert_allclose(idata.sample_stats["lp"].values, expected, rtol=1e-8)


def two_modes() -> pm.Model:
    """log p(x) = log(0.99 N(x | -4, 0.3) + 0.01 N(x | 4, 0.3)): modes 4.6 nats apart,
    which no chain crosses."""
    with pm.Model() as model:
        x = pm.Flat("x")
        pm.Potential("mixture", pm.math.logsumexp(pm.math.stack([
            np.log(0.99) + pm.logp(pm.Normal.dist(-4.0, 0.3), x),
            np.log(0.01) + pm.logp(pm.Normal.dist(4.0, 0.3), x)])))
    return model


@pytest.mark.slow
@pytest.mark.parametrize("nuts_sampler", ["pymc", "nutpie"])
def test_chains_in_different_modes_disagree_by_their_log_density(nuts_sampler):
    """Two chains started in the two modes: the chain-agreement check catches them by
    ``sample_stats.lp`` alone (their "profiles" are made equal)."""
    from carestar.relabel import chain_agreement

    model = two_modes()
    cfg = {**config(nuts_sampler), "draws": 100, "tune": 100, "chains": 1}
    lp = np.concatenate([sample(model, cfg, seed=3, initvals={"x": start})
                         .sample_stats["lp"].values for start in (-4.0, 4.0)])
    same = np.zeros(lp.shape + (1, 1))
    out = chain_agreement(lp, same)
    assert not out["chains_agree"] and abs(out["lp_spread"] - np.log(99)) < 0.5, out
    assert chain_agreement(lp[[0, 0]], same)["chains_agree"]


@pytest.mark.slow
def test_same_seed_same_draws_with_pymc():
    a = sample(tiny_model(), config("pymc"), seed=11)
    b = sample(tiny_model(), config("pymc"), seed=11)
    c = sample(tiny_model(), config("pymc"), seed=12)
    np.testing.assert_array_equal(a.posterior["mu"].values, b.posterior["mu"].values)
    assert not np.array_equal(a.posterior["mu"].values, c.posterior["mu"].values)


def test_map_gives_one_draw_at_the_mode():
    idata = sample(tiny_model(), {"name": "map", "posterior_predictive": False}, seed=1)
    assert idata.posterior.sizes["draw"] == 1
    # with a vague prior on mu the mode is close to the sample mean
    assert float(idata.posterior["mu"].item()) == pytest.approx(Y.mean(), abs=0.02)


def test_unknown_nuts_sampler_is_refused_before_any_work():
    with pytest.raises(ConfigError, match="nuts_sampler='stan'.*expected one of"):
        check_sampler({"name": "mine", "nuts_sampler": "stan"})


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("numpyro") is None, reason="numpyro extra not installed")
@pytest.mark.parametrize("chain_method", ["vectorized", "parallel"])
def test_numpyro_chain_methods_each_give_a_sensible_posterior(chain_method):
    """``vectorized`` is what a GPU gets (carestar.jax_devices); it runs on CPUs too."""
    cfg = {**config("numpyro"), "cores": 2, "chain_method": chain_method}
    idata = sample(tiny_model(), cfg, seed=7)
    post = idata.posterior
    assert post.sizes["chain"] == 2
    assert abs(float(post["mu"].mean()) - Y.mean()) < 0.25
    # numpy, not JAX, arrays: every later step reads them (carestar.sampling.as_numpy)
    for group in ("posterior", "sample_stats"):
        for name, var in idata[group].data_vars.items():
            assert type(var.data) is np.ndarray, (group, name, type(var.data))
    assert "sampling_time" in post.attrs


@pytest.mark.slow
def test_nutpie_low_rank_adaptation_is_passed_on():
    """``sampler.adaptation=low_rank``: nutpie's low-rank mass matrix (it records the
    matrix's eigenvalues, which its diagonal adaptation does not)."""
    cfg = {**config("nutpie"), "adaptation": "low_rank"}
    idata = sample(tiny_model(), cfg, seed=7)
    assert abs(float(idata.posterior["mu"].mean()) - Y.mean()) < 0.25
    assert any("eig" in name for name in idata.sample_stats.data_vars), list(idata.sample_stats.data_vars)

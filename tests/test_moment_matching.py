"""PSIS-LOO moment matching (carestar/moment_matching.py, diagnostics.loo): on a conjugate
normal model, whose exact leave-one-out predictive density is known, an outlier's Pareto k
fails the gate and moment matching recovers its exact elpd; and the joint model's unit log
likelihood at the unconstrained draws is the one its LOO reads (slow)."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest
import xarray as xr
from scipy import stats

from carestar import diagnostics as diag
from carestar.moment_matching import unconstrained_posterior

Y = np.array([-1.2, -0.6, -0.3, 0.0, 0.1, 0.4, 0.7, 1.1, 0.2, 9.0])  # the last an outlier
PRIOR_SD = 10.0


def _exact_loo(i: int) -> float:
    """log p(y_i | y_-i) of mu ~ N(0, PRIOR_SD^2), y ~ N(mu, 1)."""
    rest = np.delete(Y, i)
    precision = 1 / PRIOR_SD**2 + rest.size
    return float(stats.norm.logpdf(Y[i], rest.sum() / precision, np.sqrt(1 + 1 / precision)))


@pytest.fixture(scope="module")
def conjugate():
    """The model (likelihood in a Potential, an unrelated positive parameter tau so that a
    transform and its Jacobian take part) and exact posterior draws, 4 x 1000."""
    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, PRIOR_SD)
        pm.HalfNormal("tau", 1.0)
        pm.Potential("loglik", pm.logp(pm.Normal.dist(mu, 1.0), Y).sum())
    precision = 1 / PRIOR_SD**2 + Y.size
    rng = np.random.default_rng(3)
    mu_draws = rng.normal(Y.sum() / precision, 1 / np.sqrt(precision), size=(4, 1000))
    tau_draws = np.abs(rng.normal(size=(4, 1000)))
    coords = {"chain": range(4), "draw": range(1000)}
    posterior = xr.Dataset({"mu": (("chain", "draw"), mu_draws),
                            "tau": (("chain", "draw"), tau_draws)}, coords=coords)
    loglik = stats.norm.logpdf(Y[None, None, :], mu_draws[..., None], 1.0)
    idata = xr.DataTree.from_dict({
        "posterior": posterior,
        "log_likelihood": xr.Dataset({"y": (("chain", "draw", "obs"), loglik)}, coords=coords)})
    return model, posterior, idata


def test_draws_and_density_on_the_unconstrained_scale(conjugate):
    model, posterior, _ = conjugate
    up = unconstrained_posterior(model, posterior)
    assert list(up.upars["upar"].values) == ["mu", "tau_log__"]
    np.testing.assert_allclose(up.upars.sel(upar="tau_log__"), np.log(posterior["tau"]))
    values = up.constrained(up.upars)
    np.testing.assert_allclose(values["tau"], posterior["tau"])
    mu, tau = posterior["mu"].values, posterior["tau"].values
    by_hand = (stats.norm.logpdf(mu, 0, PRIOR_SD) + stats.halfnorm.logpdf(tau) + np.log(tau)
               + stats.norm.logpdf(Y[None, None, :], mu[..., None], 1).sum(-1))  # log|d tau / d log tau|
    np.testing.assert_allclose(up.log_prob(up.upars).values, by_hand, atol=1e-6)  # PyMC rounds a constant at 3e-8


def test_moment_matching_recovers_the_exact_loo_of_an_outlier(conjugate):
    model, posterior, idata = conjugate
    plain = diag.loo(idata, 0.7)
    assert plain["high_k_obs"] == [Y.size - 1]  # PSIS alone cannot estimate the outlier
    up = unconstrained_posterior(model, posterior)
    mm = up.moment_matching(lambda v, i: stats.norm.logpdf(Y[i], v["mu"], 1.0))
    matched = diag.loo(idata, 0.7, lambda: mm)
    assert matched["passed"] and matched["moment_matched"][0]["k_before"] > 0.7
    exact = sum(_exact_loo(i) for i in range(Y.size))
    # the other nine units keep their PSIS estimates (Monte Carlo error ~0.01 each)
    assert abs(matched["elpd_loo"] - exact) < 0.05
    assert abs(plain["elpd_loo"] - exact) > abs(matched["elpd_loo"] - exact)


def test_no_moment_matching_when_every_k_passes(conjugate):
    _, _, idata = conjugate
    kept = idata.copy()
    kept["log_likelihood"] = idata["log_likelihood"].to_dataset().isel(obs=slice(0, 9))

    def never():
        raise AssertionError("moment matching asked for with every k below the gate")

    loo = diag.loo(kept, 0.7, never)
    assert loo["passed"] and "moment_matched" not in loo


@pytest.mark.slow
@pytest.mark.xdist_group("joint_fit")
def test_joint_units_at_the_unconstrained_draws_are_its_loo_units(joint_fit):
    """What moment matching evaluates for a council is the council's LOO unit: at the draws
    themselves it equals the stored ``log_likelihood`` column."""
    model, prep, idata = joint_fit
    sampled = idata["posterior"].to_dataset()  # relabelled: the unit is label-free
    mm = model.loo_moment_matching(model.build(prep), sampled, prep)
    stored = idata["log_likelihood"][model.log_likelihood]
    for org in (0, 29, prep.responses.n_org - 1):
        np.testing.assert_allclose(mm.log_lik_i(mm.upars, org).values,
                                   stored.isel(org=org).values, rtol=1e-9, atol=1e-9)


def test_the_verdict_names_each_matched_unit_with_its_k_before_and_after(conjugate):
    from carestar.tasks import label_unreliable

    model, posterior, idata = conjugate
    mm = unconstrained_posterior(model, posterior).moment_matching(
        lambda v, i: stats.norm.logpdf(Y[i], v["mu"], 1.0))
    loo = label_unreliable(diag.loo(idata, 0.7, lambda: mm), [f"y{i}" for i in range(Y.size)])
    matched = loo["moment_matched"][0]
    assert "unreliable" not in loo
    assert diag.moment_matched_line(loo) == (f"PSIS-LOO moment matching (Pareto k before -> after): "
                                             f"y9 {matched['k_before']:.2f} -> {matched['k_after']:.2f}")
    assert diag.moment_matched_line(diag.loo(idata, 0.7)) is None


def test_more_failing_units_than_max_moment_matched_are_left_unmatched(conjugate):
    _, _, idata = conjugate

    def never():
        raise AssertionError("moment matching asked for beyond diagnostics.max_moment_matched")

    loo = diag.loo(idata, 0.7, never, max_matched=0)
    assert not loo["passed"] and loo["high_k_obs"] == [Y.size - 1]
    assert loo["moment_matching_skipped"].startswith("1 units above the gate, more than")
    assert diag.moment_matched_line(loo).startswith("PSIS-LOO moment matching skipped: 1 units")


def test_a_comparison_reads_the_loo_the_run_was_judged_by(conjugate):
    """task=compare recomputes PSIS-LOO from the stored draws: the run's matched units
    (diagnostics.json) replace theirs, so its totals and k are the run's own."""
    model, posterior, idata = conjugate
    mm = unconstrained_posterior(model, posterior).moment_matching(
        lambda v, i: stats.norm.logpdf(Y[i], v["mu"], 1.0))
    judged = diag.loo(idata, 0.7, lambda: mm)
    compared = diag.loo_pointwise(idata, None, judged["moment_matched"])
    assert compared.elpd == pytest.approx(judged["elpd_loo"], abs=1e-9)
    assert compared.se == pytest.approx(judged["se"], abs=1e-9)
    assert compared.p == pytest.approx(judged["p_loo"], abs=1e-9)
    assert float(compared.pareto_k.max()) == pytest.approx(judged["max_pareto_k"])
    plain = diag.loo_pointwise(idata)
    assert float(plain.pareto_k.max()) > 0.7  # the stored draws alone still fail


def test_a_model_without_moment_matching_keeps_its_psis_k(conjugate):
    _, _, idata = conjugate
    loo = diag.loo(idata, 0.7, lambda: None)
    assert not loo["passed"] and "moment_matched" not in loo

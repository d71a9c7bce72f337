"""models.binomial: the pm.Model it builds (dims, priors, weights) and its MLE on cbpp."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
import pytest

from carestar.errors import ConfigError
from carestar.mle import Problem, fit
from carestar.mode import fit_map, log_likelihood_at
from carestar.tidy_csv import load_csv
from models.binomial import BinomialModel

REF = Path(__file__).parent / "data" / "reference"
FORMULA = "incidence | trials(size) ~ C(period) + (1|herd)"
GLM = {"intercept": -1.269023, "beta": np.array([-1.170763, -1.301405, -1.782279])}
BINOMIAL_CONSTANT = 185.47566  # sum(lchoose(size, incidence)), REFERENCES.md section 4


@pytest.fixture(scope="module")
def cbpp():
    return load_csv(REF / "cbpp.csv")


def bernoulli_rows(tmp_path, weighted: bool) -> Path:
    """cbpp as one row per animal (842 rows), or as two weighted rows per herd-period."""
    cb = pd.read_csv(REF / "cbpp.csv")
    rows = []
    for r in cb.itertuples():
        for y, k in ((1, r.incidence), (0, r.size - r.incidence)):
            if weighted:
                rows.append({"herd": r.herd, "period": r.period, "y": y, "w": k})
            else:
                rows += [{"herd": r.herd, "period": r.period, "y": y}] * k
    p = tmp_path / ("weighted.csv" if weighted else "expanded.csv")
    pd.DataFrame(rows).to_csv(p, index=False)
    return p


def test_build_dims_and_names(cbpp):
    m = BinomialModel(FORMULA)
    model = m.build(m.prepare(cbpp))
    names = {v.name for v in model.free_RVs} | {v.name for v in model.deterministics}
    assert {"intercept", "beta", "herd_sd", "herd_z", "herd_effect"} <= names
    assert list(model.coords["effect"]) == ["period2", "period3", "period4"]
    assert len(model.coords["herd"]) == 15
    assert model.named_vars_to_dims["herd_effect"] == ("herd", "herd_coef")
    assert model.named_vars_to_dims["incidence"] == ("obs",)
    assert m.effects() == ["intercept", "beta", "*_sd", "mo_b", "mo_total", "mo_simplex_*"]


def test_priors_as_data():
    m = BinomialModel("y ~ x", priors={"effects": {"sigma": 1.0}})
    assert m.priors["effects"]["sigma"] == 1.0 and m.priors["intercept"]["sigma"] == 2.5
    with pytest.raises(ConfigError, match="not a prior"):
        BinomialModel("y ~ x", priors={"slopes": {"sigma": 1.0}})
    with pytest.raises(ConfigError, match="> 0"):
        BinomialModel("y ~ x", priors={"effects": {"sigma": -1}})


def glm_problem(m: BinomialModel, table) -> Problem:
    design = m.prepare(table)
    return Problem(design, m.likelihood_family(design)[0], nodes=25)


def test_glm_loglik_matches_r_and_mle_and_mode_find_it(cbpp):
    """glm(cbind(incidence, size - incidence) ~ period): logLik -99.02920 with the constant,
    at R's estimates; sampler=mle finds them, and so does the posterior mode under wide priors."""
    m = BinomialModel(
        "incidence | trials(size) ~ C(period)",
        priors={"intercept": {"sigma": 100.0}, "effects": {"sigma": 100.0}},
    )
    problem = glm_problem(m, cbpp)
    assert problem.loglik(problem.free(GLM["beta"], [GLM["intercept"]])) == pytest.approx(-99.02920, abs=1e-4)
    ml = fit(problem.design, problem.family)
    assert ml.loglik == pytest.approx(-99.02920, abs=1e-5)
    np.testing.assert_allclose(ml.table["estimate"].to_numpy(), [*GLM["beta"], GLM["intercept"]], atol=1e-5)
    post = fit_map(m.build(problem.design), seed=1)["posterior"]
    assert post["intercept"].values.item() == pytest.approx(GLM["intercept"], abs=2e-3)
    assert np.allclose(post["beta"].values.ravel(), GLM["beta"], atol=2e-3)


def test_bernoulli_and_weighted_rows_match_aggregated(cbpp, tmp_path):
    """Same parameters: expanded Bernoulli = weighted Bernoulli = binomial - constant, in the
    numpy likelihood (carestar.mle) and in the PyMC model's (whose centring and scaling of
    the columns count the weights, so one point means the same parameters in both)."""
    point = {"beta": GLM["beta"], "location": [GLM["intercept"]]}
    ll, pymc_ll = {}, {}
    free = {"beta_per_sd": np.array([-0.5, -0.6, -0.7]), "intercept_at_mean": np.array(-2.0)}
    for key, path, w in [
        ("expanded", bernoulli_rows(tmp_path, weighted=False), None),
        ("weighted", bernoulli_rows(tmp_path, weighted=True), "w"),
    ]:
        m = BinomialModel("y ~ C(period)")
        problem = glm_problem(m, load_csv(path, weights=w))
        assert problem.design.trials is None
        ll[key] = problem.loglik(problem.free(**point))
        pymc_ll[key] = log_likelihood_at(m.build(problem.design), free)
    problem = glm_problem(BinomialModel("incidence | trials(size) ~ C(period)"), cbpp)
    ll["aggregated"] = problem.loglik(problem.free(**point))
    assert ll["expanded"] == pytest.approx(ll["weighted"], abs=1e-8)
    assert ll["aggregated"] - ll["expanded"] == pytest.approx(BINOMIAL_CONSTANT, abs=1e-4)
    assert pymc_ll["expanded"] == pytest.approx(pymc_ll["weighted"], rel=1e-10)


def test_weighted_log_likelihood_group_per_row(tmp_path):
    """Weights live in the observed CustomDist, so log_likelihood has one value per row."""
    m = BinomialModel("y ~ C(period) + (1|herd)")
    design = m.prepare(load_csv(bernoulli_rows(tmp_path, weighted=True), weights="w"))
    model = m.build(design)
    with model:
        idata = pm.sample_prior_predictive(draws=5, random_seed=1)
        idata["posterior"] = idata["prior"]
        pm.compute_log_likelihood(idata, progressbar=False)
    ll = idata["log_likelihood"]["y"]
    assert ll.sizes["obs"] == design.n
    assert idata["prior_predictive"]["y"].sizes["obs"] == design.n


def test_hydra_config(cbpp):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(Path(__file__).parents[1] / "conf" / "model" / "binomial.yaml")
    cfg.formula = FORMULA
    m = instantiate(cfg)
    assert isinstance(m, BinomialModel) and m.priors["group_sd"]["sigma"] == 1.0
    tab = m.tables
    assert callable(tab)


def test_rejects_other_data():
    with pytest.raises(ConfigError, match="data=csv"):
        BinomialModel(FORMULA).prepare(object())


@pytest.mark.parametrize("trials, weights", [(True, None), (True, np.array([1.0, 3.0] * 28)),
                                             (False, None)])
def test_vectorised_log_likelihood_matches_pymc_draw_by_draw(cbpp, trials, weights):
    """The model's own pointwise pass (numpy, all draws at once) against PyMC's, for
    binomial rows, weighted rows and Bernoulli rows (the binomial constant included)."""
    import dataclasses

    import xarray as xr

    from carestar.formula import formula_design

    design = formula_design(cbpp, FORMULA, "binomial")
    if not trials:
        design = dataclasses.replace(design, y=(np.asarray(design.y) > 0).astype(int), trials=None)
    if weights is not None:
        design = dataclasses.replace(design, weights=weights)
    model_def = BinomialModel(FORMULA)
    model = model_def.build(design)
    with model:
        prior = pm.sample_prior_predictive(draws=25, random_seed=7)
    idata = xr.DataTree.from_dict({"posterior": prior["prior"].to_dataset()})
    ours = model_def.pointwise(idata, design, seed=2)
    with model:
        pm.compute_log_likelihood(idata, progressbar=False)
    name = design.outcome
    np.testing.assert_allclose(ours["log_likelihood"][name].values,
                               idata.log_likelihood[name].values, rtol=1e-8)
    n = np.ones(design.n) if design.trials is None else np.asarray(design.trials)
    if weights is None:
        replicated = ours["posterior_predictive"][name].values
    else:  # the total of a row's w copies
        replicated = ours["posterior_predictive"][f"{name}_total"].values
        n = n * weights
    assert (replicated >= 0).all() and (replicated <= n).all()

"""``sampler=mle`` reproduces R: MASS::polr, ordinal::clm / clmm and lme4::glmer.

Reference values: tests/data/reference/REFERENCES.md (housing: section 1; cbpp: section 4;
wine: section 5, computed with R 4.2.2 and ordinal 2022.11-16). Tolerances as the issue
states them: log likelihood within 1e-3, estimates and SEs within 1% of the published ones
(the estimates here agree to about 1e-5, far inside that).

These are optimisations in numpy (no PyMC compilation): about a second each.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from carestar.mle import Problem, fit
from carestar.mode import ONE_SHOT, python_only
from carestar.tidy_csv import load_csv
from models.binomial import BinomialModel
from models.ordinal import OrdinalModel

REF = Path(__file__).parent / "data" / "reference"
HOUSING_LEVELS = {"Sat": ["Low", "Medium", "High"], "Infl": ["Low", "Medium", "High"],
                  "Type": ["Tower", "Apartment", "Atrium", "Terrace"], "Cont": ["Low", "High"]}
# REFERENCES.md 1a/1b: estimate, SE ([L] full precision)
POLR = {
    "logit": {"loglik": -1739.57465, "estimates": {
        "beta[InflMedium]": (0.5663937, 0.1046528), "beta[InflHigh]": (1.2888191, 0.1271561),
        "beta[TypeApartment]": (-0.5723501, 0.1192380), "beta[TypeAtrium]": (-0.3661866, 0.1551733),
        "beta[TypeTerrace]": (-1.0910149, 0.1514860), "beta[ContHigh]": (0.3602841, 0.0955358),
        "cutpoints[Low|Medium]": (-0.4961353, 0.1248472), "cutpoints[Medium|High]": (0.6907083, 0.1254719)}},
    "probit": {"loglik": -1739.844421, "estimates": {
        "beta[InflMedium]": (0.3464227, 0.06413706), "beta[InflHigh]": (0.7829142, 0.07642620),
        "beta[TypeApartment]": (-0.3475368, 0.07229092), "beta[TypeAtrium]": (-0.2178876, 0.09476606),
        "beta[TypeTerrace]": (-0.6641736, 0.09180003), "beta[ContHigh]": (0.2223858, 0.05812267),
        "cutpoints[Low|Medium]": (-0.2998286, 0.0761537), "cutpoints[Medium|High]": (0.4267220, 0.0764043)}},
}
# REFERENCES.md 4: glmer(..., nAGQ = 25) [P] estimates, [L] SEs; exact marginal log likelihood
GLMER_NAGQ25 = {"loglik": -91.98337, "estimates": {
    "intercept": (-1.39922533406847, 0.2335114), "beta[period2]": (-0.991407294757321, 0.3067682),
    "beta[period3]": (-1.12782184600404, 0.3267672), "beta[period4]": (-1.57946627431248, 0.4275957)},
    "herd_sd": 0.6475199}
LME4_LAPLACE_X = {"beta[period2]": -0.992334712470269, "beta[period3]": -1.12867541092127,
                  "beta[period4]": -1.58037389566025, "intercept": -1.39853505102576}  # lme4.0 [X]
# REFERENCES.md 5 (wine): clm and clmm [L]
CLM = {"loglik": -86.49192337, "aic": 184.9838467, "bic": 198.6438434, "estimates": {
    "beta[tempwarm]": (2.5031020, 0.5286801), "beta[contactyes]": (1.5277977, 0.4766226),
    "cutpoints[1|2]": (-1.3443834, 0.5171020), "cutpoints[2|3]": (1.2508088, 0.4378802),
    "cutpoints[3|4]": (3.4668869, 0.5977604), "cutpoints[4|5]": (5.0064042, 0.7309063)}}
CLMM_AGQ10 = {"loglik": -81.53246071, "aic": 177.0649214, "judge_sd": 1.134783, "estimates": {
    "beta[tempwarm]": (3.0618910, 0.5950763), "beta[contactyes]": (1.8334334, 0.5121712),
    "cutpoints[1|2]": (-1.6234875, 0.6833863), "cutpoints[2|3]": (1.5127960, 0.6044374),
    "cutpoints[3|4]": (4.2270535, 0.8089782), "cutpoints[4|5]": (6.0861523, 0.9719398)}}
CLMM_LAPLACE = {"loglik": -81.56540929, "beta[tempwarm]": 3.062996626, "beta[contactyes]": 1.834884922,
                "judge_sd": 1.131133}


def mle_of(model, table, nodes: int = 25):
    design = model.prepare(table)
    return fit(design, model.likelihood_family(design)[0], nodes=nodes)


def assert_matches(result, reference: dict, rel: float = 0.01) -> None:
    for name, (estimate, se) in reference["estimates"].items():
        row = result.table.loc[name]
        print(f"{name}: {row['estimate']:.6f} ({row['se']:.6f}) vs R {estimate:.6f} ({se:.6f})")
        assert row["estimate"] == pytest.approx(estimate, rel=rel, abs=1e-6), name
        assert row["se"] == pytest.approx(se, rel=rel), name
    assert result.loglik == pytest.approx(reference["loglik"], abs=1e-3)
    assert result.converged


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_housing_reproduces_polr(link):
    table = load_csv(REF / "housing.csv", weights="Freq", levels=HOUSING_LEVELS)
    result = mle_of(OrdinalModel(link=link, formula="Sat ~ Infl + Type + Cont"), table)
    assert_matches(result, POLR[link])
    stats = result.statistics()
    assert stats["n_params"] == 8 and stats["n_obs"] == 1681
    assert stats["aic"] == pytest.approx(-2 * POLR[link]["loglik"] + 16, abs=2e-3)  # polr's AIC 3495.149 (logit)
    assert stats["kind"] == "the likelihood (no group effects)"


def test_cbpp_reproduces_glmer_with_adaptive_quadrature():
    """glmer(..., nAGQ = 25): fixed effects, their SEs, the herd SD and the exact marginal
    log likelihood (-91.98337); AIC counts 4 fixed effects and 1 variance (lme4: 5)."""
    result = mle_of(BinomialModel("incidence | trials(size) ~ C(period) + (1|herd)"), load_csv(REF / "cbpp.csv"))
    assert_matches(result, GLMER_NAGQ25)
    assert result.table.loc["herd_sd[Intercept]", "estimate"] == pytest.approx(GLMER_NAGQ25["herd_sd"], rel=1e-4)
    stats = result.statistics()
    assert stats["n_params"] == 5 and stats["kind"].startswith("marginal")
    assert "adaptive Gauss-Hermite" in stats["kind"]


def test_cbpp_laplace_matches_the_laplace_programs():
    """quadrature_nodes=1 is the Laplace approximation: the estimates of lme4.0 ([X]) within
    1e-4, the spread of the three Laplace programs (lme4.0, glmmADMB, glmmML) in lme4's test
    file (period4: -1.580374, -1.580312, -1.580310; here -1.580314)."""
    result = mle_of(BinomialModel("incidence | trials(size) ~ C(period) + (1|herd)"), load_csv(REF / "cbpp.csv"),
                    nodes=1)
    for name, value in LME4_LAPLACE_X.items():
        assert result.table.loc[name, "estimate"] == pytest.approx(value, abs=1e-4), name
    assert "Laplace" in result.statistics()["kind"]


def test_wine_reproduces_clm_and_clmm():
    wine = load_csv(REF / "wine.csv")
    clm = mle_of(OrdinalModel(formula="rating ~ temp + contact"), wine)
    assert_matches(clm, CLM)
    assert clm.statistics()["aic"] == pytest.approx(CLM["aic"], abs=1e-3)
    assert clm.statistics()["bic"] == pytest.approx(CLM["bic"], abs=1e-3)
    clmm = mle_of(OrdinalModel(formula="rating ~ temp + contact + (1|judge)"), wine, nodes=10)
    assert_matches(clmm, CLMM_AGQ10)
    assert clmm.statistics()["aic"] == pytest.approx(CLMM_AGQ10["aic"], abs=1e-3)
    assert clmm.table.loc["judge_sd[Intercept]", "estimate"] == pytest.approx(CLMM_AGQ10["judge_sd"], rel=1e-4)
    laplace = mle_of(OrdinalModel(formula="rating ~ temp + contact + (1|judge)"), wine, nodes=1)
    assert laplace.loglik == pytest.approx(CLMM_LAPLACE["loglik"], abs=1e-4)
    for name in ("beta[tempwarm]", "beta[contactyes]"):
        assert laplace.table.loc[name, "estimate"] == pytest.approx(CLMM_LAPLACE[name], rel=1e-3)


def test_estimates_do_not_depend_on_the_units_of_a_predictor(tmp_path):
    """A predictor in pounds or in thousands of pounds: the same fit, effects per unit 1000
    times apart; with a mean of 50,000 the optimiser is not thrown (internal centring)."""
    rng = np.random.default_rng(4)
    x = rng.normal(50_000, 8_000, 300)
    y = np.digitize(2e-4 * (x - 50_000) + rng.logistic(size=300), [-1.0, 0.5, 2.0])
    pd.DataFrame({"y": y, "pounds": x, "thousands": x / 1000}).to_csv(tmp_path / "d.csv", index=False)
    table = load_csv(tmp_path / "d.csv")
    a = mle_of(OrdinalModel(formula="y ~ pounds"), table)
    b = mle_of(OrdinalModel(formula="y ~ thousands"), table)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-6)
    assert a.table.loc["beta[pounds]", "estimate"] * 1000 == pytest.approx(b.table.loc["beta[thousands]", "estimate"], rel=1e-5)
    assert a.table.loc["beta[pounds]", "estimate"] == pytest.approx(2e-4, rel=0.3)


@pytest.mark.parametrize("family", ["cumulative", "sratio", "acat"])
def test_the_pymc_model_and_the_numpy_likelihood_agree(family):
    """The likelihood maximised here is the one the samplers see: at a random point, the PyMC
    model's observed log likelihood equals ``Problem.loglik`` without group effects (each
    ordinal family: models/ordinal_likelihood.py)."""
    table = load_csv(REF / "housing.csv", weights="Freq", levels=HOUSING_LEVELS)
    model = OrdinalModel(family=family, formula="Sat ~ Infl + Type + Cont")
    design = model.prepare(table)
    pm_model = model.build(design)
    rng = np.random.default_rng(2)
    point = {k: v + rng.normal(0, 0.2, np.shape(v)) for k, v in pm_model.initial_point().items()}
    names = [v.name for v in pm_model.unobserved_value_vars]
    with python_only():  # evaluated once: no compilation
        values = dict(zip(names, pm_model.compile_fn(pm_model.unobserved_value_vars, inputs=pm_model.value_vars,
                                                      on_unused_input="ignore", mode=ONE_SHOT)(point)))
        pymc_ll = float(pm_model.compile_fn(pm_model.observedlogp, inputs=pm_model.value_vars,
                                            on_unused_input="ignore", mode=ONE_SHOT)(point))
    problem = Problem(design, model.likelihood_family(design)[0], nodes=25)
    assert problem.loglik(problem.free(values["beta"], values["cutpoints"])) == pytest.approx(pymc_ll, rel=1e-10)


@pytest.mark.slow
def test_run_writes_estimates_ses_and_labelled_log_likelihood(tmp_path):
    """``python run.py sampler=mle`` on cbpp: summary.csv holds estimates and SEs,
    diagnostics.json and report.md the marginal log likelihood, labelled."""
    from conftest import run_cli

    run_dir = tmp_path / "run"
    result = run_cli("sampler=mle", "model=binomial", "data=csv", f"data.path={REF / 'cbpp.csv'}",
                     'model.formula="incidence | trials(size) ~ C(period) + (1|herd)"', f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = pd.read_csv(run_dir / "summary.csv", index_col="parameter")
    assert {"estimate", "se", "z", "ci95_lb", "ci95_ub"} <= set(summary.columns)
    assert summary.loc["beta[period2]", "se"] == pytest.approx(0.3067682, rel=0.01)
    loglik = json.loads((run_dir / "diagnostics.json").read_text())["log_likelihood"]
    assert loglik["loglik"] == pytest.approx(-91.98337, abs=1e-3) and loglik["kind"].startswith("marginal")
    report = (run_dir / "report.md").read_text()
    assert "-91.9834" in report and "marginal: group effects (Intercept|herd)" in report
    assert "maximum likelihood, no prior" in report
    assert "marginal" in result.stdout


def test_a_cutpoint_no_rating_regime_uses_is_not_estimated():
    """In 2007 no council could get 0 stars: the likelihood never uses the cutpoint 0|1, so
    the MLE neither estimates nor counts it (10 parameters, not 11), and converges."""
    from helpers_study import synthetic_study

    model = OrdinalModel(year=2007, predictors=["strategy_type", "spend_per_head", "deprivation"],
                         lowest_stars={2006: 1, 2007: 1, 2008: 1})
    result = mle_of(model, synthetic_study(1))
    assert "cutpoints[0|1]" not in result.table.index and "cutpoints[1|2]" in result.table.index
    assert result.statistics()["n_params"] == 3 + 2 + 2 and result.converged
    assert np.isfinite(result.table["se"]).all()

"""Category-specific effects ``cs(x)`` (carestar.category_specific): the formula's columns,
misuse refused, each row's thresholds in the likelihood, the maximum on housing against R
``ordinal::clm(Sat ~ Infl + Type, nominal = ~ Cont)`` and VGAM's ``parallel = FALSE ~ Cont``
(tests/data/reference/REFERENCES.md, housing families; signs: clm's threshold shifts and
VGAM's sratio coefficients are minus carestar's), the cumulative family's ordering
restriction, and one sampled run through ``run.py``.

Tolerances as issue 14 states them: log likelihood within 1e-3, estimates within 1% of an SE;
SEs within 1% (clm: observed information, as carestar) or 2% (VGAM's sratio: expected
information, tests/test_ordinal_families.py says why)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_mle import HOUSING_LEVELS, mle_of

from carestar.category_specific import row_cutpoints, smallest_gap
from carestar.errors import ConfigError
from carestar.formula import formula_design
from carestar.mle import Problem
from carestar.mode import ONE_SHOT, python_only
from carestar.tidy_csv import load_csv
from models.ordinal import OrdinalModel
from models.ordinal_likelihood import row_derivatives, row_log_likelihood

REF = Path(__file__).parent / "data" / "reference"
FORMULA = "Sat ~ Infl + Type + cs(Cont)"
CLM_NOMINAL = {  # estimate, SE; carestar's beta_cs = -clm's ContHigh threshold shift
    "loglik": -1738.35237320,
    "cutpoints[Low|Medium]": (-0.4493780, 0.1278535), "cutpoints[Medium|High]": (0.6479858, 0.1279000),
    "beta_cs[ContHigh[Low|Medium]]": (0.4439697, 0.1094693), "beta_cs[ContHigh[Medium|High]]": (0.2860875, 0.1063264),
    "beta[InflMedium]": (0.5694662, 0.1047585), "beta[InflHigh]": (1.2883609, 0.1270937),
    "beta[TypeApartment]": (-0.5705885, 0.1191602), "beta[TypeAtrium]": (-0.3643032, 0.1551693),
    "beta[TypeTerrace]": (-1.0979954, 0.1516181),
}
VGAM_CS = {  # Sat ~ Infl + Type + Cont, parallel = FALSE ~ Cont: logLik, ContHigh per step (SE), sign, SE tolerance
    "acat": (-1739.10791210, [(0.3885348, 0.1302327), (0.0940795, 0.1270499)], 1, 0.01),
    "sratio": (-1739.88617450, [(-0.4144494, 0.1085599), (-0.1023584, 0.1297416)], -1, 0.02),
}


@pytest.fixture(scope="module")
def housing():
    return load_csv(REF / "housing.csv", weights="Freq", levels=HOUSING_LEVELS)


def test_the_formula_puts_cs_columns_apart_named_as_r_does(housing):
    design = formula_design(housing, "Sat ~ Infl + cs(Type) + cs(Cont)", "ordinal")
    assert design.effects == ["InflMedium", "InflHigh"]
    assert design.cs_columns == ["TypeApartment", "TypeAtrium", "TypeTerrace", "ContHigh"]
    assert design.cs["ContHigh"].tolist() == (housing.frame["Cont"] == "High").astype(float).tolist()


@pytest.mark.parametrize(("formula", "family", "needles"), [
    ("Sat ~ Infl + cs(Cont)", "binomial", ["cs(Cont)", "only the ordinal model"]),
    ("Sat ~ Cont + cs(Cont)", "ordinal", ["'Cont' is both an ordinary effect", "not identified"]),
    ("Sat ~ Infl + cs(Cont + Type)", "ordinal", ["cs() takes one column", "cs(a) + cs(b)"]),
    ("Sat ~ Infl + cs(Cont):Type", "ordinal", ["'cs(Cont)'", "a term of its own"]),
    ("Sat ~ Infl + (cs(Cont)|Type)", "ordinal", ["'cs(Cont)'", "not inside an interaction, a call or a group term"]),
    ("Sat ~ Infl + np.log(cs(Freq))", "ordinal", ["'np.log(cs(Freq))'", "not inside another call"]),
])
def test_cs_misuse_is_refused_before_any_work(housing, formula, family, needles):
    with pytest.raises(ConfigError) as error:
        formula_design(housing, formula, family)
    for needle in needles:
        assert needle in str(error.value)


@pytest.mark.parametrize("family", ["cumulative", "sratio", "acat"])
def test_each_rows_thresholds_give_the_one_row_likelihood(family):
    """``rows=True`` (thresholds per row, broadcast over draws) equals the shared-threshold
    functions called one row at a time; so do the derivatives the MLE uses."""
    rng = np.random.default_rng(4)
    eta, y = rng.normal(0, 1, (3, 6)), np.array([0, 1, 2, 3, 1, 2])
    cut = np.sort(rng.normal(0, 1.5, (6, 3)), axis=-1)  # each row's own
    together = row_log_likelihood("logit", eta, cut, y, family=family, rows=True)
    one_by_one = np.array([[row_log_likelihood("logit", eta[d, i:i + 1], cut[i], y[i:i + 1], family=family)[0]
                            for i in range(6)] for d in range(3)])
    assert np.allclose(together, one_by_one, atol=1e-12)
    l, d1, d2 = row_derivatives("logit", eta[0], cut, y, family=family, rows=True)
    h = 1e-5
    up, down = (row_log_likelihood("logit", eta[0] + s, cut, y, family=family, rows=True) for s in (h, -h))
    assert np.allclose(l, together[0]) and np.allclose(d1, (up - down) / (2 * h), atol=1e-6)
    assert np.allclose(d2, (up - 2 * l + down) / h**2, atol=1e-3)


def test_housing_maximum_matches_clm_nominal(housing):
    result = mle_of(OrdinalModel(formula=FORMULA), housing)
    assert result.converged
    assert result.loglik == pytest.approx(CLM_NOMINAL["loglik"], abs=1e-3)
    for name, reference in CLM_NOMINAL.items():
        if name != "loglik":
            estimate, se = reference
            row = result.table.loc[name]
            assert abs(row["estimate"] - estimate) < 0.01 * se, name
            assert row["se"] == pytest.approx(se, rel=0.01), name
    assert result.statistics()["n_params"] == 9  # clm: 5 location, 2 thresholds, 2 shifts


@pytest.mark.parametrize("family", ["acat", "sratio"])
def test_housing_maximum_matches_vgam_nonparallel(housing, family):
    loglik, steps, sign, se_rel = VGAM_CS[family]
    result = mle_of(OrdinalModel(family=family, formula="Sat ~ Infl + Type + cs(Cont)"), housing)
    assert result.converged and result.loglik == pytest.approx(loglik, abs=1e-3)
    for label, (estimate, se) in zip(["Low|Medium", "Medium|High"], steps):
        row = result.table.loc[f"beta_cs[ContHigh[{label}]]"]
        assert abs(row["estimate"] - sign * estimate) < 0.01 * se, label
        assert row["se"] == pytest.approx(se, rel=se_rel), label


def _graph_values(pm_model, point):
    names = [v.name for v in pm_model.unobserved_value_vars]
    with python_only():  # evaluated once: no compilation
        values = dict(zip(names, pm_model.compile_fn(pm_model.unobserved_value_vars, inputs=pm_model.value_vars,
                                                      on_unused_input="ignore", mode=ONE_SHOT)(point)))
        observed, potential = (float(pm_model.compile_fn(term, inputs=pm_model.value_vars, on_unused_input="ignore",
                                                         mode=ONE_SHOT)(point))
                               for term in (pm_model.observedlogp, pm_model.potentiallogp))
    return values, observed, potential


@pytest.mark.parametrize("family", ["cumulative", "acat", "sratio"])
def test_graph_numpy_and_mle_likelihoods_agree_and_crossing_is_outside_the_cumulative_model(housing, family):
    """At a random point the PyMC model's log likelihood, the numpy pass (LOO, PPC) and the
    MLE's agree; at a point where some row's thresholds cross, the cumulative model's
    potential and the MLE's log likelihood are -inf (no restriction in the other families)."""
    model = OrdinalModel(family=family, formula=FORMULA)
    design = model.prepare(housing)
    pm_model = model.build(design)
    rng = np.random.default_rng(2)
    point = {k: v + rng.normal(0, 0.2, np.shape(v)) for k, v in pm_model.initial_point().items()}
    values, observed, potential = _graph_values(pm_model, point)
    problem = Problem(design, model.likelihood_family(design)[0], nodes=25)
    u = problem.free(values["beta"], values["cutpoints"], beta_cs=values["beta_cs"])
    assert problem.loglik(u) == pytest.approx(observed, rel=1e-10) and potential == 0.0
    rows = row_cutpoints(values["cutpoints"], values["beta_cs"], design.cs.to_numpy(float))
    eta = design.X.to_numpy(float) @ values["beta"]
    numpy_ll = (design.weights * row_log_likelihood("logit", eta, rows, design.y, family=family, rows=True)).sum()
    assert numpy_ll == pytest.approx(observed, rel=1e-10)

    crossing = {**point, "beta_cs_per_sd": np.array([3.0, -3.0])}  # ContHigh rows: 1|2 far above 2|3
    values, observed, potential = _graph_values(pm_model, crossing)
    rows = row_cutpoints(values["cutpoints"], values["beta_cs"], design.cs.to_numpy(float))
    assert smallest_gap(rows) < 0
    u = problem.free(values["beta"], values["cutpoints"], beta_cs=values["beta_cs"])
    if family == "cumulative":
        assert potential == -np.inf and problem.loglik(u) == -np.inf
    else:
        assert potential == 0.0 and problem.loglik(u) == pytest.approx(observed, rel=1e-10)


@pytest.mark.slow
def test_a_sampled_cs_run_writes_effects_per_threshold_loo_and_ppc(tmp_path):
    """The README's cs() command (sampler=smoke: 2 x 40 draws) through run.py: the graph
    samples, no draw's thresholds cross, and the summary, effects table, LOO, PPC and report
    carry the effects per threshold; their means lie within one of clm's SEs of clm's
    estimates (the priors are weak against 1681 households)."""
    from conftest import run_cli

    run_dir = tmp_path / "run"
    result = run_cli("data=csv", f"data.path={REF / 'housing.csv'}", "data.weights=Freq",
                     "+data.levels.Sat=[Low,Medium,High]", "+data.levels.Infl=[Low,Medium,High]",
                     "model=ordinal", f'model.formula="{FORMULA}"', "sampler=smoke", f"hydra.run.dir={run_dir}")
    assert result.returncode in (0, 3), result.stderr[-3000:]  # smoke draws fail the ESS gates
    summary = pd.read_csv(run_dir / "summary.csv", index_col="parameter")
    for name in ("beta_cs[ContHigh[Low|Medium]]", "beta_cs[ContHigh[Medium|High]]", "cutpoints[Low|Medium]"):
        estimate, se = CLM_NOMINAL[name]
        assert abs(summary.loc[name, "mean"] - estimate) < se, name
    effects = pd.read_csv(run_dir / "tables" / "effects.csv")
    assert {"ContHigh[Low|Medium]", "ContHigh[Medium|High]"} <= set(effects["effect"])
    diagnostics = json.loads((run_dir / "diagnostics.json").read_text())
    assert diagnostics["convergence"]["checks"]["divergences"]["value"] == 0  # the restriction is not pressed
    assert np.isfinite(diagnostics["loo"]["elpd_loo"])
    assert diagnostics["log_likelihood"]["n_params"] == 9
    assert (run_dir / "figures" / "ppc_category_counts.png").exists()
    report = (run_dir / "report.md").read_text()
    assert "category-specific (one per threshold): ContHigh" in report
    assert "ContHigh[Low\\|Medium]" in report and "smallest gap between adjacent thresholds" in report


def test_cs_and_mo_together_reproduce_clm_nominal(housing):
    """``mo(Infl)`` with two steps is a reparametrisation of Infl's two dummies where their
    effects rise (clm: 0.569, 1.288), so ``Sat ~ mo(Infl) + Type + cs(Cont)`` has clm's
    nominal maximum, and its total effect is clm's InflHigh: both terms in one design and one
    MLE parameter vector."""
    result = mle_of(OrdinalModel(formula="Sat ~ mo(Infl) + Type + cs(Cont)"), housing)
    assert result.converged and result.loglik == pytest.approx(CLM_NOMINAL["loglik"], abs=1e-3)
    estimate = result.table["estimate"]
    inflhigh, se = CLM_NOMINAL["beta[InflHigh]"]
    assert abs(estimate["mo_total[Infl]"] - inflhigh) < 0.01 * se
    for name in ("beta_cs[ContHigh[Low|Medium]]", "beta_cs[ContHigh[Medium|High]]", "cutpoints[Low|Medium]"):
        assert abs(estimate[name] - CLM_NOMINAL[name][0]) < 0.01 * CLM_NOMINAL[name][1], name

"""Monotonic effects ``mo(x)`` (issue 14 item 3, ``carestar.monotonic``).

- the formula term is parsed out for formulae, and refused anywhere but as a main term;
- the PyMC graph (centred at the average row) and the numpy pass over the draws (reported
  cutpoints / intercept at the lowest level) give the same log likelihood, ordinal and
  binomial;
- recovery of a known non-linear monotone pattern, ``zeta = (0.6, 0.1, 0.1, 0.1, 0.1)``:
  ``sampler=mle`` (numpy, a second) and, marked slow, the default config (nutpie) end to
  end through ``run.py`` (LOO, PPC, summary, report, the step-pattern figure).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from carestar.errors import ConfigError
from carestar.formula import formula_design
from carestar.mle import fit
from carestar.mode import ONE_SHOT, python_only
from carestar.monotonic import split_monotonic
from carestar.tidy_csv import load_csv
from models.binomial import BinomialModel
from models.ordinal import OrdinalModel

ZETA = np.array([0.6, 0.1, 0.1, 0.1, 0.1])  # most of the effect in the first step: far from linear
B = 0.6  # per step: total effect b * D = 3 on the logit scale
BETA_Z = 0.8
CUTPOINTS = np.array([-0.5, 1.0, 2.5])


def simulate(path, n=500, seed=11, outcome="ordinal"):
    """Rows with an ordered predictor x in 0..5 of known step pattern ``ZETA``, a numeric z."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, n)
    z = np.round(rng.normal(size=n), 4)
    eta = B * 5 * np.r_[0.0, np.cumsum(ZETA)][x] + BETA_Z * z
    if outcome == "ordinal":
        y = ((eta + rng.logistic(size=n))[:, None] > CUTPOINTS).sum(axis=1)
    else:
        y = rng.binomial(1, 1 / (1 + np.exp(-(eta - 1.5))))
    pd.DataFrame({"y": y, "x": x, "z": z}).to_csv(path, index=False)
    return path


def test_mo_terms_are_taken_out_of_the_formula():
    assert split_monotonic("y ~ z + mo(x) + (1|g)") == ("y ~ z + (1|g)", ["x"])
    assert split_monotonic("y ~ mo( x )") == ("y ~ 1", ["x"])
    assert split_monotonic("y ~ demo(x)") == ("y ~ demo(x)", [])
    for bad in ("y ~ mo(x):z", "y ~ mo(x)*z", "y ~ (mo(x)|g)", "y ~ mo(np.log(x))"):
        with pytest.raises(ConfigError, match="mo\\(\\) is a main effect of one column"):
            split_monotonic(bad)


def test_ordered_factor_levels_are_the_steps(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame({"y": [0, 1, 2, 1, 2, 0], "q": ["lo", "mid", "hi", "mid", "hi", "lo"]}).to_csv(path, index=False)
    design = formula_design(load_csv(path, levels={"q": ["lo", "mid", "hi"]}), "y ~ mo(q)", "ordinal")
    (term,) = design.monotonic
    assert term.levels == ("lo", "mid", "hi") and term.codes.tolist() == [0, 1, 2, 1, 2, 0]
    assert design.effects == []


@pytest.mark.parametrize("model", [OrdinalModel(), BinomialModel(formula="y ~ z + mo(x)")], ids=["ordinal", "binomial"])
def test_numpy_draws_match_the_pymc_graph(model, tmp_path):
    """The centred graph and the uncentred numpy pass over the draws are one likelihood, at
    random points (evaluated without compiling: ``carestar.mode.python_only``)."""
    import xarray as xr

    kind = "ordinal" if isinstance(model, OrdinalModel) else "binomial"
    design = formula_design(load_csv(simulate(tmp_path / "d.csv", n=60, outcome=kind)), "y ~ z + mo(x)", kind)
    graph = model.build(design)
    rng = np.random.default_rng(3)
    with python_only():
        ip = graph.initial_point()
        values = graph.compile_fn(graph.unobserved_value_vars, inputs=graph.value_vars,
                                  on_unused_input="ignore", mode=ONE_SHOT)
        rows = graph.compile_fn(graph.logp(vars=graph.observed_RVs, sum=False)[0], inputs=graph.value_vars,
                                on_unused_input="ignore", mode=ONE_SHOT)
        for _ in range(3):
            point = {k: v + rng.normal(0, 0.7, size=np.shape(v)) for k, v in ip.items()}
            named = {v.name: x for v, x in zip(graph.unobserved_value_vars, values(point))}
            posterior = xr.Dataset({name: (("chain", "draw", *graph.named_vars_to_dims.get(name, ())),
                                           np.asarray(named[name])[None, None])
                                    for name in named if not name.endswith("__")},
                                   coords={"chain": [0], "draw": [0]})
            ours = model.pointwise(xr.DataTree.from_dict({"posterior": posterior}), design, seed=1)
            assert named["mo_simplex_x"].min() > 0 and abs(named["mo_b"][0]) > 0.01
            np.testing.assert_allclose(ours["log_likelihood"]["y"].values[0, 0], rows(point), rtol=1e-9)


def test_mle_recovers_the_step_pattern(tmp_path):
    """``sampler=mle``: the true b, total effect and every zeta inside the 95% Wald
    intervals (n = 2000); the simplex sums to 1; AIC counts b and D - 1 free shares."""
    design = formula_design(load_csv(simulate(tmp_path / "d.csv", n=2000)), "y ~ z + mo(x)", "ordinal")
    family, _ = OrdinalModel().likelihood_family(design)
    result = fit(design, family)
    table = result.table
    assert result.converged
    truth = {"mo_b[x]": B, "mo_total[x]": 5 * B, "beta[z]": BETA_Z,
             **{f"mo_simplex_x[{k + 1}]": z for k, z in enumerate(ZETA)}}
    for name, value in truth.items():
        row = table.loc[name]
        assert row["ci95_lb"] < value < row["ci95_ub"], (name, value, row.to_dict())
    simplex = table.loc[[f"mo_simplex_x[{k}]" for k in range(1, 6)], "estimate"]
    assert simplex.sum() == pytest.approx(1.0)
    assert result.problem.size == 1 + 3 + 1 + 4


@pytest.mark.slow
def test_default_fit_recovers_the_step_pattern_end_to_end(tmp_path):
    """The default config (nutpie, default priors), 4 chains x (500 + 500), through run.py:
    the true b (per step), total effect and each zeta inside their 90% intervals; gates,
    LOO and the PPC, the monotonic table, report section and figure."""
    csv = simulate(tmp_path / "mo.csv")
    run_dir = tmp_path / "run"
    result = run_cli("data=csv", f"data.path={csv}", "model=ordinal", "model.formula=\"y ~ z + mo(x)\"",
                     "sampler.draws=500", "sampler.tune=500", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = pd.read_csv(run_dir / "summary.csv", index_col="parameter")
    truth = {"mo_b[x]": B, "mo_total[x]": 5 * B, **{f"mo_simplex_x[{k + 1}]": z for k, z in enumerate(ZETA)}}
    for name, value in truth.items():
        assert summary.loc[name, "eti90_lb"] < value < summary.loc[name, "eti90_ub"], (name, value)
    diagnostics = json.loads((run_dir / "diagnostics.json").read_text())
    assert diagnostics["passed"] and diagnostics["loo"]["passed"]
    table = pd.read_csv(run_dir / "tables" / "monotonic.csv")
    cumulative = table[table.quantity == "cumulative"]["mean"].to_numpy()
    assert cumulative[0] == 0 and cumulative[-1] == pytest.approx(1.0) and np.all(np.diff(cumulative) > 0)
    assert cumulative[1] > 0.4  # the first step carries most of the effect (truth 0.6; linear 0.2)
    assert (run_dir / "figures" / "monotonic_steps.png").stat().st_size > 0
    assert (run_dir / "figures" / "ppc_category_counts.png").exists()
    assert "Monotonic effects `mo(x)`" in (run_dir / "report.md").read_text()


def test_mo_of_a_factor_with_monotone_effects_is_glmer_s_factor_model():
    """cbpp's period effects (glmer, nAGQ = 25: 0, -0.991, -1.128, -1.579) fall from period to
    period, so ``mo(period)`` (b and two free shares) is a reparametrisation of
    ``C(period)`` (three dummies) there: the same maximum, the same log likelihood
    (-91.98337, REFERENCES.md section 4), each period's effect ``b D c(k)`` and the herd SD."""
    from test_mle import GLMER_NAGQ25, REF

    table = load_csv(REF / "cbpp.csv", levels={"period": ["1", "2", "3", "4"]})
    design = formula_design(table, "incidence | trials(size) ~ mo(period) + (1|herd)", "binomial")
    family, _ = BinomialModel(formula="incidence | trials(size) ~ mo(period) + (1|herd)").likelihood_family(design)
    result = fit(design, family, nodes=25)
    est = result.table["estimate"]
    assert result.loglik == pytest.approx(GLMER_NAGQ25["loglik"], abs=1e-3)
    shares = np.cumsum([est[f"mo_simplex_period[{k}]"] for k in (2, 3, 4)])
    for k, share in zip((2, 3, 4), shares):
        assert est["mo_total[period]"] * share == pytest.approx(GLMER_NAGQ25["estimates"][f"beta[period{k}]"][0], abs=1e-3)
    assert est["intercept"] == pytest.approx(GLMER_NAGQ25["estimates"]["intercept"][0], abs=1e-3)
    assert est["herd_sd[Intercept]"] == pytest.approx(GLMER_NAGQ25["herd_sd"], abs=1e-3)

"""The sratio / cratio / acat families end to end (issue 14): the lean likelihood of the
model's graph against the category probabilities; every post-sampling step (log likelihood,
PSIS-LOO, predictive draws, PPC, Figure 1, report) on the default study; one family through
``python run.py`` and ``task=compare`` against the cumulative smoke run.

Compile costs: each family is its own PyMC graph (10-30 s to compile on an empty cache), so
only acat is sampled (via the README's command); sratio and cratio run every step after
sampling on the cumulative smoke run's draws (any parameter values will do for the checks),
with numpy only.
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
import xarray as xr
from conftest import ROOT, compose_config, run_cli
from hydra.utils import instantiate
from test_ordinal_families import direct

from carestar import diagnostics as diag
from carestar.compare import compare_runs
from carestar.errors import EXIT_GATES_FAILED
from carestar.likelihood import linear_predictor_draws
from carestar.mode import ONE_SHOT, python_only
from models.ordinal_likelihood import (LINKS, category_log_probabilities, family_row_derivatives,
                                       observed_log_prob)


@pytest.mark.parametrize("family", ["sratio", "cratio", "acat"])
def test_the_graphs_likelihood_is_the_families_probability_with_its_gradient(family):
    """``observed_log_prob`` (the model's graph, without the (N, K, K-1) array) equals log
    ``category_log_probabilities`` at y under regime floors, for every link, and its
    gradient in eta is ``family_row_derivatives``' (tested against finite differences)."""
    eta_v = np.array([-2.0, 0.0, 1.5, 0.3, -0.7, 2.2, 0.1, 3.0])
    cut = np.array([-1.0, 0.4, 0.1])  # unordered: allowed in these families
    lowest = np.array([0, 0, 0, 0, 1, 1, 2, 3])
    y = np.array([0, 1, 2, 3, 1, 3, 2, 3])  # the floor itself, the top, in between
    eta = pt.vector("eta")
    outputs = []
    for link in LINKS:
        logp = observed_log_prob(link, eta, pt.as_tensor(cut), y, 4, lowest, family)
        outputs += [logp, pt.grad(logp.sum(), eta)]
    with python_only():
        values = pytensor.function([eta], outputs, mode=ONE_SHOT)(eta_v)
    for link, logp, grad in zip(LINKS, values[::2], values[1::2]):
        rtol = 1e-6 if link == "probit" else 1e-10  # PyMC's normal_lcdf vs scipy's log_ndtr: ~1e-7 apart
        expected = category_log_probabilities(link, eta_v, cut, lowest, family)[np.arange(8), y]
        np.testing.assert_allclose(logp, expected, rtol=rtol, err_msg=link)
        _, first, _ = family_row_derivatives(link, eta_v, cut, y, lowest, family)
        np.testing.assert_allclose(grad, first, rtol=max(rtol, 1e-8), atol=1e-12, err_msg=link)


@pytest.mark.parametrize("family", ["sratio", "cratio", "acat"])
def test_the_graph_with_symbolic_codes_or_each_rows_thresholds_is_the_same_likelihood(family):
    """At random points, with each row's own (unordered) thresholds (``cs()``) and random
    regime floors: the graph built from the observed codes (only each row's path for the
    sequential families) and the one built for symbolic codes (every threshold, masked)
    equal the numpy category probabilities at y, and have the same gradient in eta and in
    the thresholds."""
    rng = np.random.default_rng(5)
    n, K = 60, 4
    lowest = rng.integers(0, 2, n)
    y = np.maximum(rng.integers(0, K, n), lowest)
    eta, cut, codes = pt.vector("eta"), pt.matrix("cut"), pt.lvector("codes")
    outputs = []
    for link in LINKS:
        for observed in (y, codes):
            logp = observed_log_prob(link, eta, cut, observed, K, lowest, family)
            outputs += [logp, *pt.grad(logp.sum(), [eta, cut])]
    with python_only():
        f = pytensor.function([eta, cut, codes], outputs, mode=ONE_SHOT)
        for _ in range(3):
            eta_v, cut_v = rng.normal(0, 2, n), rng.normal(0, 1.5, (n, K - 1))
            values = f(eta_v, cut_v, y)
            for i, link in enumerate(LINKS):
                rtol = 1e-6 if link == "probit" else 1e-10  # as in the test above
                from_codes, symbolic = values[6 * i:6 * i + 3], values[6 * i + 3:6 * i + 6]
                expected = category_log_probabilities(link, eta_v, cut_v, lowest, family)[np.arange(n), y]
                # atol: a log P near 0 is a difference of terms of order 10 in the reference
                np.testing.assert_allclose(from_codes[0], expected, rtol=rtol, atol=1e-12, err_msg=link)
                for a, b in zip(from_codes, symbolic):
                    np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12, err_msg=link)


@pytest.mark.parametrize("family", ["sratio", "cratio", "acat"])
@pytest.mark.parametrize("link", ["logit", "probit"])
def test_far_from_the_data_the_graph_stays_finite(family, link):
    """Where a row's probability underflows (eta = +-800 against the opposite end), its log
    probability is held below -690, as the cumulative family's clip holds it, with a finite
    gradient, and the other rows keep theirs."""
    y, eta_v = np.array([0, 3, 1]), np.array([800.0, -800.0, 0.2])
    eta = pt.vector("eta")
    logp = observed_log_prob(link, eta, pt.as_tensor(np.array([-1.0, 0.4, 1.5])), y, 4, None, family)
    with python_only():
        values, grad = pytensor.function([eta], [logp, pt.grad(logp.sum(), eta)], mode=ONE_SHOT)(eta_v)
    assert np.isfinite(values).all() and np.isfinite(grad).all()
    assert (values[:2] < -690).all()
    expected = category_log_probabilities(link, eta_v[2:], np.array([-1.0, 0.4, 1.5]), None, family)[0, 1]
    assert values[2] == pytest.approx(expected, rel=1e-6)


@pytest.fixture(scope="module")
def study():
    return instantiate(compose_config().data)  # the default study, as python run.py loads it


@pytest.mark.slow
@pytest.mark.parametrize(("family", "link"), [("sratio", "logit"), ("cratio", "cloglog")])
def test_every_step_after_sampling_works_for_the_family(smoke_run, study, family, link):
    """On the default study (the 2006-2008 floor: no 0 stars), with the smoke run's draws:
    the pointwise log likelihood is the family's probability by its definition, PSIS-LOO
    runs on it, the predictive draws respect the floor, and the PPC, Figure 1, its table and
    the report (naming the family and link) are written."""
    run_dir, _ = smoke_run
    model = instantiate(compose_config(f"model.family={family}", f"model.link={link}").model)
    design = model.prepare(study)
    tree = xr.open_datatree(run_dir / "posterior.nc")
    tree = xr.DataTree.from_dict({"posterior": tree.posterior.load(), "observed_data": tree.observed_data.load()})
    groups = model.pointwise(tree, design, seed=1)
    for name, group in groups.items():
        tree[name] = xr.DataTree(group)

    loglik = tree.log_likelihood["stars"].values  # (chain, draw, obs)
    eta = linear_predictor_draws(tree.posterior, design)
    cut = tree.posterior["cutpoints"].values
    for c, d in [(0, 0), (1, 39)]:
        p = direct(family, link, eta[c, d], cut[c, d])
        p[design.lowest == 1, 0] = 0.0  # the regime's floor: conditional on y >= 1
        p /= p.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore"):
            expected = np.log(p[np.arange(design.n), design.y])
        # the definition, computed naively, loses precision (cloglog's 1 - F) where P < 1e-7; the model does not
        accurate = expected > -16
        assert accurate.mean() > 0.95 and np.isfinite(loglik[c, d]).all()
        np.testing.assert_allclose(loglik[c, d][accurate], expected[accurate], rtol=1e-9)
    loo = diag.loo(tree)
    assert np.isfinite(loo["elpd_loo"]) and loo["elpd_loo"] < 0

    replicated = tree.posterior_predictive["stars"].values
    assert replicated.shape == loglik.shape
    assert (replicated[..., design.lowest == 1] >= 1).all()
    assert set(np.unique(replicated)) == {0, 1, 2, 3}  # 0 stars still drawn before 2006

    figures = model.figures(tree, design)
    for name in ("ppc_star_counts", "figure1_strategy"):
        assert figures[name].axes and all(ax.has_data() for ax in figures[name].axes if ax.get_visible()), name
    table = model.tables(tree, design)["figure1_probabilities"]
    assert sorted(table["stars"].astype(str).unique()) == ["1", "2", "3"]  # 2007: no 0 stars
    assert table.groupby("strategy_type")["mean"].sum().between(0.999, 1.001).all()
    names = {"sratio": "stopping ratio", "cratio": "continuation ratio"}
    assert f"family `{family}` ({names[family]}), link `{link}`" in model.report_section(tree, design)


def readme_family_command(family: str) -> str:
    """The README model table's example command for ``model.family=FAMILY``."""
    text = (ROOT / "README.md").read_text()
    found = [c for c in re.findall(r"`(python run\.py[^`]*)`", text) if f"model.family={family}" in c.split()]
    assert found, f"README.md shows no command with model.family={family}"
    return found[0]


@pytest.mark.slow
def test_the_readme_acat_command_runs_and_compares_with_the_cumulative_run(smoke_run, tmp_path):
    """The README's acat command with ``sampler=smoke``: a complete run whose files say
    acat; then ``task=compare`` with the cumulative smoke run of the same data ranks the two
    families by elpd (their smoke draws fail the ESS gates, so here they are marked passed,
    as ``tests/test_compare.py`` does, to see the ranking)."""
    cumulative, _ = smoke_run
    acat = tmp_path / "acat"
    words = readme_family_command("acat").split()[2:]
    result = run_cli(*words, "sampler=smoke", f"hydra.run.dir={acat}")
    assert result.returncode == EXIT_GATES_FAILED, result.stderr[-3000:]  # written, marked failed
    report = (acat / "report.md").read_text()
    assert "family `acat` (adjacent category), link `logit`" in report
    for name in ("ppc_star_counts", "figure1_strategy"):
        assert f"figures/{name}.png" in report and (acat / "figures" / f"{name}.png").stat().st_size > 10_000
    tree = xr.open_datatree(acat / "posterior.nc")
    assert tree.log_likelihood["stars"].shape == (2, 40, 1050)
    assert "cutpoints_at_mean" in tree.posterior and "stars" in tree.posterior_predictive
    own_loo = json.loads((acat / "diagnostics.json").read_text())["loo"]["elpd_loo"]

    runs = {}
    for name, run in (("cumulative", cumulative), ("acat", acat)):
        runs[name] = shutil.copytree(run, tmp_path / "passed" / name)
        for file in ("diagnostics.json", "run.json"):
            record = json.loads((runs[name] / file).read_text())
            record["passed" if file == "diagnostics.json" else "diagnostics_passed"] = True
            (runs[name] / file).write_text(json.dumps(record))
    out = tmp_path / "cmp"
    manifest = compare_runs([runs["cumulative"], runs["acat"]], out)
    loo = pd.read_csv(out / "tables" / "loo.csv", index_col="run")
    assert set(loo.index) == {"cumulative", "acat"}  # labels: the folders (the default has no override)
    assert loo.loc["acat", "elpd_loo"] == pytest.approx(own_loo, abs=1e-6)
    best = loo["elpd_loo"].idxmax()
    assert manifest["best_by_loo"] == best and loo.loc[best, "rank"] == 0 and loo.loc[best, "elpd_diff"] == 0
    assert loo["rank"].tolist() == [0, 1] and loo["weight"].sum() == pytest.approx(1.0, abs=1e-6)
    assert {"beta", "cutpoints", "org_sd", "year_effect"} <= set(manifest["shared_parameters"])

"""What a run prints (``carestar.terminal``) and what ``python run.py --help`` says
(``carestar.catalogue``): issue 17, item 1.

Before: the terminal ended with the gates and no estimates; with standard error not a
terminal a fit printed nothing between the sampler's start and its end (``model=lca``:
about 4 minutes); ``--help`` was Hydra's generic text.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import CONF, ROOT

from carestar import catalogue
from carestar.terminal import EFFECT_ROWS, ChainMilestones, chain_milestones, effects_table


def test_effects_table_is_cut_with_a_pointer_to_summary_csv():
    rng = np.random.default_rng(0)
    names = [f"beta[{i}]" for i in range(45)]
    summary = pd.DataFrame({"mean": rng.normal(size=45), "sd": 0.1, "eti90_lb": -1.0, "eti90_ub": 1.0,
                            "ess_bulk": 500.0, "ess_tail": 450.0, "r_hat": 1.001, "mcse_mean": 0.01},
                           index=pd.Index(names, name="parameter"))
    text = effects_table(summary).splitlines()
    assert text[0] == "Effects (posterior mean, SD, 90% interval; r_hat, bulk ESS):"
    assert text[1].split() == ["mean", "sd", "5%", "95%", "r_hat", "ess_bulk"]
    rows = [line for line in text if line.strip().startswith("beta[")]
    assert len(rows) == EFFECT_ROWS == 30 and rows[-1].split()[0] == "beta[29]"
    assert rows[0].split()[1] == f"{summary['mean'].iloc[0]:.3f}"
    assert text[-1] == "  ... 15 more rows in summary.csv"
    assert "more rows" not in effects_table(summary.head(30))


def test_effects_table_of_maximum_likelihood():
    summary = pd.DataFrame({"estimate": [0.5], "se": [0.1], "z": [5.0], "ci95_lb": [0.3], "ci95_ub": [0.7]},
                           index=["beta[x]"])
    text = effects_table(summary).splitlines()
    assert text[0].startswith("Effects (maximum likelihood estimate, SE, 95% interval")
    assert text[1].split() == ["estimate", "se", "2.5%", "97.5%"]


def test_chain_milestones_each_quarter_once(caplog):
    milestones = ChainMilestones(chains=2, tune=40, draws=40)
    with caplog.at_level(logging.INFO, logger="carestar"):
        for i in range(80):  # pymc's per-draw callback, both chains interleaved
            for chain in (0, 1):
                milestones.pymc_callback(draw=SimpleNamespace(chain=chain, draw_idx=i))
    lines = [r.getMessage() for r in caplog.records]
    assert lines[:2] == ["chain 0: 20/80 iterations (tuning)", "chain 1: 20/80 iterations (tuning)"]
    assert "chain 0: 60/80 iterations (sampling)" in lines and lines[-1] == "chain 1: 80/80 iterations (done)"
    assert len(lines) == 8


def test_nutpie_progress_reaches_the_milestones(caplog):
    """PyMC runs nutpie with its own progress manager: inside the hook that manager also
    reports milestones (no progress bar shown), and it is PyMC's own again afterwards."""
    from pymc.sampling import mcmc

    original = mcmc.NutpieProgressBarManager
    milestones = ChainMilestones(chains=2, tune=10, draws=10)
    chain = SimpleNamespace(started=True, finished_draws=20, total_draws=20, divergent_draws=[],
                            latest_num_steps=3, step_size=0.5, runtime_ms=5)
    queued = SimpleNamespace(started=False, finished_draws=0, total_draws=20)
    with caplog.at_level(logging.INFO, logger="carestar"), chain_milestones("nutpie", milestones, {}):
        manager = mcmc.NutpieProgressBarManager(chains=2, draws=10, progressbar=False)
        with manager:
            manager.update([chain, queued])
    assert mcmc.NutpieProgressBarManager is original
    assert [r.getMessage() for r in caplog.records] == [
        f"chain 0: {n}/20 iterations ({phase})" for n, phase in
        ((5, "tuning"), (10, "tuning"), (15, "sampling"), (20, "done"))]


@pytest.mark.slow
def test_a_fit_without_a_terminal_says_each_stage_then_prints_its_effects(smoke_run):
    run_dir, result = smoke_run
    out = result.stdout
    stages = ["loading the data and preparing the model", "building the model",
              "compiling the model and sampling", "chain 0: 20/80 iterations (tuning)",
              "chain 1: 80/80 iterations (done)", "postprocessing the draws", "diagnostics: r_hat",
              "writing the tables, figures and report", "carestar: diagnostics FAILED",
              "max_pareto_k", "Effects (posterior mean, SD, 90% interval; r_hat, bulk ESS):"]
    at = [out.find(s) for s in stages]
    assert -1 not in at and at == sorted(at), dict(zip(stages, at))
    summary = pd.read_csv(run_dir / "summary.csv", index_col="parameter")
    row = next(line for line in out.splitlines() if line.split()[:1] == [summary.index[0]])
    mean, sd, low, high, rhat, ess = (float(v) for v in row.split()[1:])
    first = summary.iloc[0]
    assert (mean, sd, low, high) == tuple(round(first[c], 3) for c in ("mean", "sd", "eti90_lb", "eti90_ub"))
    assert (rhat, ess) == (round(first["r_hat"], 3), round(first["ess_bulk"]))
    assert "RuntimeWarning" not in result.stderr and "All-NaN" not in result.stderr, result.stderr[-2000:]


def test_help_lists_tasks_and_every_option_with_its_line():
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "--help"], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout
    assert text.startswith("carestar: hierarchical Bayesian models")
    assert "Powered by Hydra" not in text
    for task, line in catalogue.TASKS.items():
        assert re.search(rf"^  {task}( \(default\))? +{re.escape(line)}$", text, re.M), task
    for group in ("model", "data", "sampler", "experiment"):
        assert f"({group}=...)" in text
        for path in sorted((CONF / group).glob("*.yaml")):
            line = catalogue.description(path)
            assert re.search(rf"^  {path.stem}( \(default\))? +{re.escape(line)}$", text, re.M), path
    assert re.search(r"^  ordinal \(default\) ", text, re.M) and re.search(r"^  nutpie \(default\) ", text, re.M)


def test_every_config_option_has_a_one_line_description():
    for path in sorted(CONF.glob("*/*.yaml")):
        line = catalogue.description(path)
        assert line and len(line) <= 100 and line.endswith("."), f"{path}: {line!r}"


def test_help_tasks_are_the_tasks_run_py_runs():
    from carestar.tasks import tasks

    assert list(catalogue.TASKS) == list(tasks())


def test_constant_draws_are_named_once_and_never_hide_a_bad_r_hat(caplog):
    """A quantity the model fixes has NaN r_hat and ESS: numpy warned "All-NaN axis
    encountered", and the NaN made the gate's maximum depend on the variables' order."""
    import warnings

    import xarray as xr

    from carestar import diagnostics as diag

    rng = np.random.default_rng(1)
    draws = {"fixed": np.zeros((2, 200)), "bad": rng.normal(size=(2, 200)) + np.array([[0.0], [3.0]])}
    stats = xr.Dataset({"energy": (("chain", "draw"), rng.normal(size=(2, 200))),
                        "diverging": (("chain", "draw"), np.zeros((2, 200), bool))})
    gates = {"max_rhat": 1.01, "min_ess_bulk": 10, "min_ess_tail": 10, "max_divergences": 0, "min_bfmi": 0.3}
    for order in (["fixed", "bad"], ["bad", "fixed"]):
        post = xr.Dataset({name: (("chain", "draw"), draws[name]) for name in order})
        tree = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
        with warnings.catch_warnings(), caplog.at_level(logging.INFO, logger="carestar"):
            warnings.simplefilter("error", RuntimeWarning)
            result = diag.convergence(tree, order, gates)
        rhat = result["checks"]["max_rhat"]
        assert rhat["value"] > 1.5 and rhat["worst"] == "bad" and not rhat["passed"], order
        assert result["undefined"] == ["fixed"]
    assert "r_hat and ESS are undefined for fixed (its draws do not vary" in caplog.text

"""task=compare: LOO table, shared-parameter differences, diagnostics, refusals, multiruns.

The fast tests fit one tiny normal model (compiled once per session) to a few data sets
and write the fits as run directories, without the full pipeline. One slow test compares
two real smoke runs (probit and logit ordinal models).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import yaml

from carestar import diagnostics as diag
from carestar.compare import compare_runs, compare_task, probability_of_direction
from carestar.errors import EXIT_GATES_FAILED, CarestarError
from carestar.runs import RunDirectory

GATES = {"max_rhat": 1.01, "min_ess_bulk": 400, "min_ess_tail": 400, "max_divergences": 0, "min_bfmi": 0.3}
N = 80


def _write_run(path: Path, idata, y: np.ndarray, *, overrides: list[str], model: str = "tiny",
               passed: bool = True) -> Path:
    """A run as ``task=fit`` writes it; ``passed``: its verdict (the tiny fits' 300 draws are
    too few for the default ESS gate, so the verdict is set, not computed)."""
    run = RunDirectory(path)
    run.write_posterior(idata)
    run.write_json("diagnostics.json", {
        "passed": passed,
        "convergence": diag.convergence(idata, diag.resolve(idata, None), GATES),
        "loo": diag.loo(idata) if "log_likelihood" in idata.children else None,
    })
    (run.folder(".hydra") / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    run.complete({
        "task": "fit",
        "model": model,
        "data": "test",
        "data_hash": hashlib.sha256(np.ascontiguousarray(y).tobytes()).hexdigest(),
        "config_hash": hashlib.sha256(" ".join(overrides).encode()).hexdigest(),
        "seed": 1,
        "sampler": "pymc",
        "diagnostics_passed": passed,
    })
    return path


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> dict[str, Path]:
    """Fits of ``y ~ Normal(mu, sigma)``, ``mu ~ Normal(loc, scale)``, written as runs.

    good: y (mean 1) with a vague prior; bad: the same y with mu pinned near -3 by its
    prior (clearly worse predictions); shifted: y + 3 with the vague prior (mu differs by
    3, sigma is the same); nolog: good without its log likelihood group.
    """
    root = tmp_path_factory.mktemp("compare_runs")
    y = np.random.default_rng(7).normal(1.0, 1.0, size=N)
    with pm.Model() as model:
        y_data = pm.Data("y_obs", y)
        loc = pm.Data("loc", 0.0)
        scale = pm.Data("scale", 5.0)
        mu = pm.Normal("mu", loc, scale)
        sigma = pm.HalfNormal("sigma", 2.0)
        pm.Normal("y", mu, sigma, observed=y_data, shape=y_data.shape)

    def fit(data, prior_loc, prior_scale, seed):
        with model:
            pm.set_data({"y_obs": data, "loc": prior_loc, "scale": prior_scale})
            idata = pm.sample(draws=150, tune=150, chains=2, cores=1, nuts_sampler="pymc",
                              random_seed=seed, progressbar=False, compute_convergence_checks=False)
            pm.compute_log_likelihood(idata, progressbar=False)
        return idata

    good = fit(y, 0.0, 5.0, 1)
    bad = fit(y, -3.0, 0.05, 2)
    shifted = fit(y + 3.0, 0.0, 5.0, 3)
    nolog = good.copy()
    del nolog["log_likelihood"]
    return {
        "failed": _write_run(root / "failed", good, y, overrides=["model=tiny", "sampler=smoke"], passed=False),
        "good": _write_run(root / "good", good, y, overrides=["model=tiny", "prior=vague"]),
        "bad": _write_run(root / "bad", bad, y, overrides=["model=tiny", "prior=pinned"]),
        "shifted": _write_run(root / "shifted", shifted, y + 3.0, overrides=["model=tiny", "data=shifted"]),
        "nolog": _write_run(root / "nolog", nolog, y, overrides=["model=tiny", "prior=vague", "loglik=none"]),
    }


def test_loo_table_ranks_the_better_model_first(tiny_runs, tmp_path):
    out = tmp_path / "cmp"
    manifest = compare_runs([tiny_runs["bad"], tiny_runs["good"]], out)
    table = pd.read_csv(out / "tables" / "loo.csv", index_col="run")
    assert list(table.index) == ["prior=vague", "prior=pinned"]  # labels: the overrides that differ
    assert {"elpd_loo", "se", "elpd_diff", "dse", "weight", "p_loo", "n_pareto_k_high"} <= set(table.columns)
    assert table["weight"].sum() == pytest.approx(1.0, abs=1e-6)
    assert table.loc["prior=vague", "weight"] > 0.9
    assert table.loc["prior=vague", "elpd_diff"] == 0
    assert table.loc["prior=pinned", "elpd_diff"] < -5 * table.loc["prior=pinned", "dse"]
    assert manifest["best_by_loo"] == "prior=vague"


def test_a_run_that_failed_its_gates_is_listed_but_never_ranked(tiny_runs, tmp_path):
    """The failed run has the best elpd (it holds the good fit's draws): it is listed with
    its elpd, marked, and given no rank or weight; the passing runs are ranked without it.
    Before: it was ranked with the others (here it tied for best)."""
    out = tmp_path / "cmp"
    manifest = compare_runs([tiny_runs["failed"], tiny_runs["bad"], tiny_runs["good"]], out)
    table = pd.read_csv(out / "tables" / "loo.csv", index_col="run")
    failed = "sampler=smoke"  # the override in which it differs
    assert list(table.index) == ["prior=vague", "prior=pinned", failed]
    assert table.loc[failed, "passed_gates"] == False  # noqa: E712 (a CSV column of booleans)
    assert np.isnan(table.loc[failed, "rank"]) and np.isnan(table.loc[failed, "weight"])
    assert table.loc[failed, "elpd_loo"] == pytest.approx(table.loc["prior=vague", "elpd_loo"])
    assert table.loc[["prior=vague", "prior=pinned"], "weight"].sum() == pytest.approx(1.0, abs=1e-6)
    assert manifest["best_by_loo"] == "prior=vague" and manifest["failed_gates"] == [failed]
    report = (out / "report.md").read_text()
    assert "Not ranked, because they failed their diagnostic gates" in report and failed in report
    alone = compare_runs([tiny_runs["failed"], tiny_runs["bad"]], tmp_path / "alone")
    assert alone["best_by_loo"] == "prior=pinned"  # the only run that passed, not the better one


def test_no_run_is_best_when_none_passed(tiny_runs, tmp_path):
    failed_again = tmp_path / "failed_again"
    shutil.copytree(tiny_runs["failed"], failed_again)
    (failed_again / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["model=tiny", "sampler=tiny"]))
    manifest = compare_runs([tiny_runs["failed"], failed_again], tmp_path / "cmp")
    assert manifest["best_by_loo"] is None
    assert "none did, so none is ranked" in (tmp_path / "cmp" / "report.md").read_text()


def test_outputs_and_manifest(tiny_runs, tmp_path):
    out = tmp_path / "cmp"
    compare_runs([tiny_runs["good"], tiny_runs["bad"]], out, command="python run.py task=compare")
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["task"] == "compare" and manifest["status"] == "complete"
    assert [i["path"] for i in manifest["inputs"]] == [str(tiny_runs["good"].resolve()), str(tiny_runs["bad"].resolve())]
    for record in manifest["inputs"]:
        assert len(record["data_hash"]) == 64 and len(record["posterior_sha256"]) == 64
    assert manifest["shared_parameters"] == ["mu", "sigma"]
    assert (out / "figures" / "forest_shared.png").stat().st_size > 5_000
    diagnostics = pd.read_csv(out / "tables" / "diagnostics.csv", index_col="run")
    assert {"max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "min_bfmi", "passed"} <= set(diagnostics.columns)
    assert list(diagnostics.index) == ["prior=vague", "prior=pinned"]
    report = (out / "report.md").read_text()
    assert "![forest_shared](figures/forest_shared.png)" in report
    assert "best by elpd_loo: **prior=vague**" in report
    assert not (out / "_incomplete").exists()


def test_differences_probability_of_direction(tiny_runs, tmp_path):
    out = tmp_path / "cmp"
    compare_runs([tiny_runs["good"], tiny_runs["shifted"]], out, loo=False)
    assert not (out / "tables" / "loo.csv").exists()
    table = pd.read_csv(out / "tables" / "differences.csv").set_index("parameter")
    mu, sigma = table.loc["mu"], table.loc["sigma"]
    assert (mu["run_a"], mu["run_b"]) == ("prior=vague", "data=shifted")
    assert mu["prob_direction"] > 0.999
    assert mu["eti90_lb"] < 3.0 < mu["eti90_ub"]
    assert mu["difference"] == pytest.approx(3.0, abs=0.1)  # the same draws' noise, shifted
    assert 0.5 <= sigma["prob_direction"] < 0.7
    assert sigma["eti90_lb"] < 0 < sigma["eti90_ub"]


def test_probability_of_direction_is_exact():
    a = np.array([0.0, 1.0, 2.0])
    b = np.array([1.0, 3.0])
    # pairs b > a: (1>0), (3>0,1,2) = 4, ties (1=1) count half: 4.5 of 6
    assert probability_of_direction(a, b) == (pytest.approx(0.75), pytest.approx(0.75))
    assert probability_of_direction(b, a)[1] == pytest.approx(0.75)


def test_different_data_refused_naming_both_runs(tiny_runs, tmp_path):
    out = tmp_path / "cmp"
    with pytest.raises(CarestarError) as error:
        compare_runs([tiny_runs["good"], tiny_runs["shifted"]], out)
    message = str(error.value)
    assert "different data" in message
    for name in ("good", "shifted"):
        manifest = json.loads((tiny_runs[name] / "run.json").read_text())
        assert str(tiny_runs[name]) in message and manifest["data_hash"] in message
    assert not out.exists()


def test_run_without_log_likelihood_refused(tiny_runs, tmp_path):
    out = tmp_path / "cmp"
    with pytest.raises(CarestarError, match="without a log_likelihood group") as error:
        compare_runs([tiny_runs["good"], tiny_runs["nolog"]], out)
    assert str(tiny_runs["nolog"]) in str(error.value)
    assert not out.exists()


def test_fewer_than_two_runs_refused(tiny_runs, tmp_path):
    with pytest.raises(CarestarError, match="at least two complete runs"):
        compare_runs([tiny_runs["good"]], tmp_path / "cmp")


def test_incomplete_or_missing_run_refused(tiny_runs, tmp_path):
    broken = tmp_path / "broken"
    (broken / "_incomplete").mkdir(parents=True)
    with pytest.raises(CarestarError, match="not a complete run"):
        compare_runs([tiny_runs["good"], broken], tmp_path / "cmp")
    with pytest.raises(CarestarError, match="no such run"):
        compare_runs([tiny_runs["good"], tmp_path / "nowhere"], tmp_path / "cmp")
    assert not (tmp_path / "cmp").exists()


def test_multirun_folder_is_expanded(tiny_runs, tmp_path):
    sweep = tmp_path / "multirun"
    shutil.copytree(tiny_runs["good"], sweep / "0")
    shutil.copytree(tiny_runs["bad"], sweep / "1")
    (sweep / "2" / ".hydra").mkdir(parents=True)  # a job that failed: no run.json
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    out = tmp_path / "cmp"
    manifest = compare_runs([sweep], out)
    assert [Path(i["path"]).name for i in manifest["inputs"]] == ["0", "1"]
    assert [Path(s["path"]).name for s in manifest["skipped"]] == ["2"]
    assert len(pd.read_csv(out / "tables" / "loo.csv")) == 2
    assert "Skipped (incomplete)" in (out / "report.md").read_text()


def test_compare_task_reads_runs_from_the_config(tiny_runs, tmp_path):
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"task": "compare", "seed": 3, "runs": [str(tiny_runs["good"]), str(tiny_runs["bad"])]})
    manifest = compare_task(cfg, tmp_path / "cmp")
    assert manifest["task"] == "compare" and len(manifest["inputs"]) == 2
    from conftest import compose_config

    composed = compose_config("task=compare", f"runs=[{tiny_runs['good']},{tiny_runs['shifted']}]", "compare.loo=false")
    manifest = compare_task(composed, tmp_path / "composed")
    assert manifest["loo"] is False and manifest["seed"] == composed.seed
    assert [i["label"] for i in manifest["inputs"]] == ["prior=vague", "data=shifted"]
    with pytest.raises(CarestarError, match="needs the runs"):
        compare_task(OmegaConf.create({"task": "compare"}), tmp_path / "other")


def test_runs_with_different_draw_counts(tiny_runs, tmp_path):
    """Each run's intervals come from its own draws, whatever their number (ArviZ's forest
    plot of stacked runs pads the shorter with NaN and blanks its intervals)."""
    from carestar.forest import forest_figure_runs
    from carestar.runs import load_run

    _, tree = load_run(tiny_runs["good"])
    short = tree.isel(draw=slice(0, 75))
    fig = forest_figure_runs({"long": tree, "short": short}, ["mu", "sigma"], {}, "")
    lines = [line for line in fig.axes[0].get_lines() if line.get_gid() != "zero_line"]
    assert len(lines) == 2 * 2 * 3  # mu and sigma, two runs, three marks each
    assert all(np.isfinite(line.get_xdata()).all() for line in lines)
    dots = [line for line in lines if line.get_marker() == "o"]
    assert dots[1].get_xdata()[0] == pytest.approx(float(short.posterior["mu"].mean()))
    manifest = json.loads((tiny_runs["good"] / "run.json").read_text())
    path = tmp_path / "short"
    run = RunDirectory(path)
    run.write_posterior(short)
    run.complete({**manifest, "status": None})
    out = tmp_path / "cmp"
    compare_runs([tiny_runs["good"], path], out)
    differences = pd.read_csv(out / "tables" / "differences.csv").set_index("parameter")
    assert differences.loc["mu", "prob_direction"] < 0.8  # the same posterior, fewer draws
    assert pd.read_csv(out / "tables" / "diagnostics.csv")["draws"].tolist() == [150, 75]


@pytest.mark.slow
def test_compare_two_smoke_runs(tmp_path):
    """Probit vs logit smoke runs of the ordinal model, through the real pipeline."""
    from conftest import run_cli

    runs = {}
    for link in ("probit", "logit"):
        runs[link] = tmp_path / link
        result = run_cli("model=ordinal", "sampler=smoke", f"model.link={link}", f"hydra.run.dir={runs[link]}")
        assert result.returncode == EXIT_GATES_FAILED, result.stderr[-3000:]  # written, marked failed
    out = tmp_path / "cmp"
    manifest = compare_runs([runs["probit"], runs["logit"]], out)
    loo = pd.read_csv(out / "tables" / "loo.csv", index_col="run")
    assert set(loo.index) == {"model.link=probit", "model.link=logit"}
    assert not loo["passed_gates"].any() and manifest["best_by_loo"] is None  # smoke fits rank nowhere
    assert (loo["elpd_loo"] < 0).all()
    assert {"beta", "cutpoints", "org_sd", "year_effect"} <= set(manifest["shared_parameters"])
    assert "org_z" in manifest["left_out_parameters"]
    differences = pd.read_csv(out / "tables" / "differences.csv")
    assert (differences["prob_direction"].between(0.5, 1.0)).all()
    assert len(differences) == differences["parameter"].nunique()  # one pair
    assert (out / "figures" / "forest_shared.png").stat().st_size > 10_000
    panels = json.loads((runs["logit"] / "run.json").read_text())["forest_panels"]
    assert [p["title"] for p in panels][0] == "Effects (a positive one moves ratings up)"


def test_forest_of_runs_on_their_recorded_panels(tiny_runs):
    """Variables go to the panels the runs recorded (scale in the x label, a zero line for
    effects only); a panel whose scale differs between runs says so; the legend names the
    runs and covers neither titles nor data."""
    from test_figures import check_layout

    from carestar.forest import forest_figure_runs
    from carestar.runs import load_run

    _, good = load_run(tiny_runs["good"])
    _, shifted = load_run(tiny_runs["shifted"])
    effect = {"title": "Effects", "var_names": ["mu"], "xlabel": "effect on the latent logit scale", "zero_line": True}
    sds = {"title": "SDs", "var_names": ["sig*"], "xlabel": "SD (logit)", "zero_line": False}
    panels = {"a": [effect, sds], "b": [{**effect, "xlabel": "effect on the latent probit scale"}, sds]}
    fig = forest_figure_runs({"a": good, "b": shifted}, ["mu", "sigma"], panels, "Shared")
    effects, spread = fig.axes
    assert effects.get_title(loc="left") == "Effects" and spread.get_title(loc="left") == "SDs"
    assert effects.get_xlabel() == ("the runs' scales differ:\na: effect on the latent logit scale\n"
                                    "b: effect on the latent probit scale")
    assert spread.get_xlabel() == "SD (logit)"
    assert [line.get_gid() for line in effects.get_lines()].count("zero_line") == 1
    assert "zero_line" not in [line.get_gid() for line in spread.get_lines()]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["a", "b"]
    check_layout("forest_shared", fig)
    other = forest_figure_runs({"a": good}, ["mu"], {"a": None}, "")
    assert other.axes[0].get_title(loc="left") == "Other shared parameters"

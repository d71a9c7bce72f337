"""Choosing the number of latent classes from a multirun (carestar.class_selection)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from carestar.class_selection import choose, main, select_classes
from carestar.errors import ConfigError


def _fake_run(root: Path, job: int, k: int, elpd: float, se: float, bic: float,
              smallest: float = 0.2, passed: bool = True, data_hash: str = "abc") -> None:
    run = root / str(job)
    (run / ".hydra").mkdir(parents=True)
    (run / "tables").mkdir()
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"model": {"n_classes": k}}))
    (run / "run.json").write_text(json.dumps({"status": "complete", "model": "lca",
                                              "sampler": "pymc", "data_hash": data_hash}))
    (run / "diagnostics.json").write_text(json.dumps({
        "passed": passed,
        "loo": {"elpd_loo": elpd, "se": se, "p_loo": 10.0, "n_pareto_k_high": 0},
        "log_likelihood": {"loglik": -bic / 2 + 10 * k, "aic": bic - 5, "bic": bic,
                           "n_params": 10 * k},
        "latent_classes": {"relative_entropy": 0.8, "smallest_class_share": smallest,
                           "chains_agree": passed},
    }))


def test_one_se_rule_and_bic(tmp_path):
    for job, (k, elpd, bic) in enumerate([(1, -2500, 5100), (2, -2380, 4900), (3, -2340, 4880),
                                          (4, -2335, 4950)]):
        _fake_run(tmp_path, job, k, elpd, 20.0, bic, smallest=0.03 if k == 4 else 0.2)
    (tmp_path / "9").mkdir()  # an interrupted job: no run.json, ignored
    table, fig, text = select_classes(tmp_path)
    assert table["n_classes"].tolist() == [1, 2, 3, 4]
    assert fig.exists() and (tmp_path / "class_selection.csv").exists()
    # best elpd at 4; 3 is within 1 SE (5 < 20), 2 is not (45 > 20)
    assert choose(table) == {"loo": 3, "loo_best": 4, "bic": 3, "loo_se": "SE of the best elpd"}
    assert "favours 3 latent classes" in text
    # with pointwise LOO: the SE of the difference decides (2 is now within 1 SE of 4)
    table["elpd_diff"] = table["elpd_loo"] - table["elpd_loo"].max()  # <= 0, as ArviZ gives it
    table["elpd_diff_se"] = [30.0, 50.0, 10.0, 0.0]
    assert choose(table)["loo"] == 2 and choose(table)["loo_se"] == "SE of the difference"
    assert "4 classes: a class under 5%" in text
    saved = pd.read_csv(tmp_path / "class_selection.csv")
    assert {"n_classes", "elpd_loo", "elpd_se", "bic", "relative_entropy",
            "smallest_class_share"} <= set(saved.columns)


def test_disagreement_is_said(tmp_path):
    _fake_run(tmp_path, 0, 2, -2380, 5.0, 4900)
    _fake_run(tmp_path, 1, 3, -2340, 5.0, 4950, passed=False)
    _, _, text = select_classes(tmp_path)
    assert "disagree (3 vs 2 classes)" in text
    assert "3 classes: failed its diagnostics" in text


def test_bad_folders(tmp_path, capsys):
    with pytest.raises(ConfigError, match="no complete model=lca runs"):
        select_classes(tmp_path)
    with pytest.raises(ConfigError, match="not a folder"):
        select_classes(tmp_path / "nope")
    _fake_run(tmp_path, 0, 2, -1, 1, 1)
    _fake_run(tmp_path, 1, 3, -1, 1, 1, data_hash="other")
    with pytest.raises(ConfigError, match="different data"):
        select_classes(tmp_path)
    assert main([str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.slow
def test_real_multirun_with_the_posterior_mode(tmp_path):
    """``python run.py -m model=lca model.n_classes=1,2,3 sampler=map`` then the selection."""
    from conftest import run_cli

    sweep = tmp_path / "multirun"
    result = run_cli("-m", "model=lca", "model.n_classes=1,2,3", "sampler=map",
                     "model.em_starts=3", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert main([str(sweep)]) == 0
    _, _, text = select_classes(sweep)
    assert "There is no LOO in these runs" in text and "BIC favours" in text
    table = pd.read_csv(sweep / "class_selection.csv")
    assert table["n_classes"].tolist() == [1, 2, 3]
    assert table["bic"].notna().all() and table["elpd_loo"].isna().all()  # no LOO at a mode
    # the synthetic study has 3 classes; BIC (n = 155) may prefer fewer: it must beat 1
    assert table.loc[table["bic"].idxmin(), "n_classes"] > 1


def _fake_posterior(run: Path, mean_loglik: float, seed: int) -> None:
    """A posterior.nc whose log likelihood (``responses``, 60 organisations) has the given mean."""
    import numpy as np
    import xarray as xr

    ll = mean_loglik + np.random.default_rng(seed).normal(0, 0.05, size=(2, 100, 60))
    xr.DataTree.from_dict({
        "posterior": xr.Dataset({"share": (("chain", "draw"), np.full((2, 100), 0.5))}),
        "log_likelihood": xr.Dataset({"responses": (("chain", "draw", "org"), ll)}),
    }).to_netcdf(run / "posterior.nc", engine="netcdf4")


def test_elpd_diff_has_compares_sign_and_one_class_is_singular(tmp_path):
    """``elpd_diff`` is each run's elpd minus the best one's (<= 0), as in ``task=compare``'s
    loo.csv (ArviZ's convention); the message says "1 latent class", never "1 classes"."""
    from carestar import diagnostics as diag

    for job, (k, mean) in enumerate([(1, -1.0), (2, -1.5)]):
        _fake_run(tmp_path, job, k, 60 * mean, 1.0, 100.0 + 50 * k)
        _fake_posterior(tmp_path / str(job), mean, job)
    table, _, text = select_classes(tmp_path)
    diff = table.set_index("n_classes")["elpd_diff"]
    assert diff[1] == 0 and diff[2] == pytest.approx(-30.0, abs=1.0)
    elpds = {k: diag.loo_pointwise(xr_open(tmp_path / str(j) / "posterior.nc"), "responses")
             for j, k in enumerate((1, 2))}
    assert diag.compare_loo(elpds).loc[2, "elpd_diff"] == pytest.approx(diff[2], abs=1e-6)
    assert "The evidence favours 1 latent class." in text and "1 classes" not in text
    assert "LOO favours 1 class:" in text and "BIC favours 1 class (smallest BIC)" in text


def xr_open(path: Path):
    import xarray as xr

    return xr.open_datatree(path, engine="netcdf4").load()


def test_the_figure_reads_as_the_rule_does(tmp_path):
    """elpd minus the best (0 at the best) with the one-SE band and LOO's choice; BIC's
    choice; the 5% line; failed runs hollow and named in the legend below the panels."""
    from test_figures import check_layout

    from carestar.class_selection import SMALL_CLASS, selection_table
    from carestar.class_selection_figure import selection_figure

    for job, (k, elpd, bic) in enumerate([(1, -2500, 5100), (2, -2380, 4900), (3, -2340, 4880)]):
        _fake_run(tmp_path, job, k, elpd, 20.0, bic, passed=k != 2)
    table = selection_table(tmp_path)
    fig = selection_figure(table, choose(table), SMALL_CLASS)
    check_layout("class_selection", fig)
    loo, criteria, sizes = fig.axes
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["PSIS-LOO", "Information criteria",
                                                              "Separation and class size"]
    dots = [line for line in loo.get_lines() if line.get_marker() == "o" and line.get_gid() != "failed_run"]
    assert dots[-1].get_ydata().tolist() == [-160.0, -40.0, 0.0]  # elpd minus the best
    hollow = [line for line in loo.get_lines() if line.get_gid() == "failed_run"]
    assert hollow and hollow[0].get_xdata().tolist() == [2]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "LOO's choice (3, one-SE rule)" in labels and "BIC's choice (3)" in labels
    assert "run failed its diagnostics" in labels and "5% (a small class)" in labels
    assert all(ax.get_ylabel() for ax in fig.axes)

"""task=sbc: a planted bug (the data simulated from priors twice as wide as the model fits)
fails simulation-based calibration, the correct model passes at the same n; an interrupted
SBC resumes where it stopped; the multiple-testing rule."""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from carestar.errors import EXIT_GATES_FAILED, EXIT_USER_ERROR
from carestar.sbc import holm, uniformity_table

ROOT = Path(__file__).resolve().parents[1]
WINE = ROOT / "tests" / "data" / "reference" / "wine.csv"
# R's wine data: 72 ratings in 5 categories, 9 judges, a fit in about 0.3 s. With the default
# priors about a quarter of its fits have divergences (prior draws with near-empty categories
# or a tiny judge SD): counted and listed, they do not decide this test's verdicts.
SMALL = ["task=sbc", "data=csv", f"data.path={WINE}", "model.formula='rating ~ temp + contact + (1|judge)'",
         "sbc.max_failed_share=0.5", "sbc.n=25"]
TWICE_AS_WIDE = ("sbc.simulator={priors: {effects: {sigma: 5.0}, group_sd: {sigma: 2.0}, "
                 "cutpoints: {nu: 3.0, sigma: 5.0}}}")


@pytest.fixture(scope="module")
def entry():
    spec = importlib.util.spec_from_file_location("carestar_run_entry_sbc", ROOT / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    inspect.unwrap(module.main).__module__ = "__main__"  # Hydra finds conf/ beside run.py
    return module


def run(entry, monkeypatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["run.py", *args])
    entry.gates_failed.clear()
    try:
        entry.main()
    except SystemExit as stop:
        return int(stop.code or 0)
    return EXIT_GATES_FAILED if entry.gates_failed else 0


def test_holm_adjusts_as_published():
    # Holm (1979): sorted p (0.01, 0.02, 0.03, 0.04) x (4, 3, 2, 1), running maximum
    assert np.allclose(holm(np.array([0.04, 0.01, 0.03, 0.02])), [0.06, 0.04, 0.06, 0.06])


def test_uniform_ranks_pass_and_piled_up_ranks_fail():
    rng = np.random.default_rng(3)
    L, n = 49, 60
    good = rng.integers(0, L + 1, size=(1, n, 3))
    bad = np.where(rng.random((1, n)) < 0.5, 0, L)  # the U shape of a too-narrow posterior
    ranks = xr.Dataset({"a": (("chain", "draw", "k"), good), "b": (("chain", "draw"), bad)}, attrs={"L": L})
    table = uniformity_table(xr.DataTree.from_dict({"prior_sbc": ranks}), alpha=0.05)
    assert table.set_index("parameter").loc["a", "uniform"].all()
    assert not table.set_index("parameter").loc["b", "uniform"]


@pytest.mark.parametrize("args, needle", [
    (["sbc.ranks=1000"], "sbc.ranks=1000 is more than the 2 x 400 draws"),
    (["sbc.n=0"], "sbc.n=0: expected a whole number >= 1"),
    (["sampler=map"], "task=sbc needs a NUTS sampler"),
    (["++sbc.gates.max_rhatt=1.1"], "sbc.gates.max_rhatt is not a gate"),
    ([f"sbc.resume={ROOT / 'conf'}"], "holds no SBC replications"),
])
def test_bad_sbc_settings_are_refused_before_any_work(entry, monkeypatch, tmp_path, capsys, args, needle):
    assert run(entry, monkeypatch, "task=sbc", *args, f"hydra.run.dir={tmp_path / 'run'}") == EXIT_USER_ERROR
    assert needle in capsys.readouterr().err
    assert not list(tmp_path.rglob("run.json"))


@pytest.mark.slow
def test_planted_prior_mismatch_fails_and_the_model_passes(entry, monkeypatch, tmp_path):
    assert run(entry, monkeypatch, *SMALL, TWICE_AS_WIDE, f"hydra.run.dir={tmp_path / 'bug'}") == EXIT_GATES_FAILED
    bug = json.loads((tmp_path / "bug" / "sbc.json").read_text())
    assert not bug["passed"] and bug["rejected"], bug["summary"]

    assert run(entry, monkeypatch, *SMALL, f"hydra.run.dir={tmp_path / 'ok'}") == 0
    ok = json.loads((tmp_path / "ok" / "sbc.json").read_text())
    assert ok["passed"] and not ok["rejected"] and ok["n"] == 25, ok["summary"]
    ranks = xr.open_datatree(tmp_path / "ok" / "ranks.nc", engine="netcdf4")["prior_sbc"]
    assert ranks.sizes["draw"] == 25 and int(ranks["cutpoints"].max()) <= ok["L"]
    assert (tmp_path / "ok" / "figures" / "ecdf_judge_sd.png").is_file()
    manifest = json.loads((tmp_path / "ok" / "run.json").read_text())
    assert manifest["task"] == "sbc" and "ranks.nc" in manifest["files"]

    # a larger n resumes from the finished run: its 25 replications reused, 3 more fitted
    more = tmp_path / "more"
    assert run(entry, monkeypatch, *SMALL[:-1], "sbc.n=28", f"sbc.resume={tmp_path / 'ok'}",
               f"hydra.run.dir={more}") == 0
    reps = json.loads((more / "sbc.json").read_text())
    assert reps["n"] == 28
    for i in (0, 24):  # the same replications, byte for byte
        name = f"replications/rep_{i:05d}.json"
        assert (more / name).read_text() == (tmp_path / "ok" / name).read_text()

    # another setting is refused, naming the folder
    assert run(entry, monkeypatch, *SMALL, "sbc.ranks=19", f"sbc.resume={tmp_path / 'ok'}",
               f"hydra.run.dir={tmp_path / 'other'}") == EXIT_USER_ERROR

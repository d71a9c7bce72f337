"""``task=compare`` on runs whose formulas have category-specific ``cs()`` and monotonic
``mo()`` terms (issue 14: each "works through LOO, PPC, compare and the report").

Three smoke runs of the housing data (tests/data/reference, 1681 households as 72
weighted rows): ``Infl`` as an ordinary factor, ``cs(Cont)`` and ``mo(Infl)`` (Infl's
levels Low < Medium < High are the steps). Smoke draws fail the ESS gates, so, as in
``tests/test_family_runs.py``, copies of the runs are marked passed to see the ranking.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import made_once, run_cli
from test_category_specific import REF

from carestar.compare import compare_runs
from carestar.errors import EXIT_GATES_FAILED

FORMULAS = {
    "plain": "Sat ~ Infl + Type + Cont",
    "cs": "Sat ~ Infl + Type + cs(Cont)",
    "mo": "Sat ~ mo(Infl) + Type + Cont",
}


@pytest.fixture(scope="module")
def term_runs(tmp_path_factory):
    """The three runs through ``python run.py ... sampler=smoke``, then copies marked passed."""
    def make(folder):
        for name, formula in FORMULAS.items():
            result = run_cli("data=csv", f"data.path={REF / 'housing.csv'}", "data.weights=Freq",
                             "+data.levels.Sat=[Low,Medium,High]", "+data.levels.Infl=[Low,Medium,High]",
                             "model=ordinal", f'model.formula="{formula}"', "sampler=smoke",
                             f"hydra.run.dir={folder / name}")
            assert result.returncode == EXIT_GATES_FAILED, result.stderr[-3000:]  # written, marked failed

    folder = made_once(tmp_path_factory, "compare_terms", make)
    passed = tmp_path_factory.mktemp("passed")
    runs = {}
    for name in FORMULAS:
        runs[name] = shutil.copytree(folder / name, passed / name)
        for file in ("diagnostics.json", "run.json"):
            record = json.loads((runs[name] / file).read_text())
            record["passed" if file == "diagnostics.json" else "diagnostics_passed"] = True
            (runs[name] / file).write_text(json.dumps(record))
    return runs


@pytest.mark.slow
def test_compare_ranks_runs_with_cs_and_mo_terms(term_runs, tmp_path):
    """The LOO table ranks the three runs (finite elpd, SE and differences, weights summing
    to 1, each run's own LOO), the parameters they all share are compared, and the
    comparison's report names every run."""
    out = tmp_path / "cmp"
    manifest = compare_runs(list(term_runs.values()), out)
    loo = pd.read_csv(out / "tables" / "loo.csv", index_col="run")
    assert len(loo) == 3 and loo["passed_gates"].all()
    assert np.isfinite(loo[["elpd_loo", "se", "elpd_diff", "dse", "p_loo"]].to_numpy()).all()
    assert (loo["se"] > 0).all() and (loo["elpd_loo"] < 0).all()
    assert sorted(loo["rank"]) == [0, 1, 2] and loo["weight"].sum() == pytest.approx(1.0, abs=1e-6)
    best = loo["elpd_loo"].idxmax()
    assert manifest["best_by_loo"] == best and loo.loc[best, "elpd_diff"] == 0
    for name, run in term_runs.items():
        own = json.loads((run / "diagnostics.json").read_text())["loo"]["elpd_loo"]
        (label,) = [label for label in loo.index if FORMULAS[name] in label]
        assert loo.loc[label, "elpd_loo"] == pytest.approx(own, abs=1e-6)
    assert "cutpoints" in manifest["shared_parameters"]  # beta differs in its coordinates: left out
    assert not any(p.startswith(("beta_cs", "mo_")) for p in manifest["shared_parameters"])
    report = (out / "report.md").read_text()
    assert all(FORMULAS[name] in report for name in FORMULAS)


@pytest.mark.slow
def test_each_runs_report_shows_its_cs_and_mo_terms(term_runs):
    """The runs' own report.md: the cs() run's per-threshold effects, the mo() run's
    monotonic section, and neither in the plain run."""
    reports = {name: (run / "report.md").read_text() for name, run in term_runs.items()}
    assert "category-specific (one per threshold): ContHigh" in reports["cs"]
    assert "ContHigh[Low\\|Medium]" in reports["cs"] and "ContHigh[Medium\\|High]" in reports["cs"]
    assert "Monotonic effects `mo(x)`" in reports["mo"] and "`mo(Infl)`: total effect (Low->High)" in reports["mo"]
    assert (term_runs["mo"] / "tables" / "monotonic.csv").is_file()
    assert (term_runs["mo"] / "figures" / "monotonic_steps.png").stat().st_size > 0
    for name in ("cs", "mo"):
        assert (term_runs[name] / "figures" / "ppc_category_counts.png").exists()
    assert "category-specific (one per threshold)" not in reports["plain"]
    assert "Monotonic effects" not in reports["plain"]

"""The whole run in a subprocess: every output file exists and says what it should."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import xarray as xr

from carestar import diagnostics as diag
from carestar.errors import EXIT_GATES_FAILED

pytestmark = pytest.mark.slow


def test_run_exits_with_the_gate_status_and_says_where(smoke_run):
    """Smoke draws are too few for the gates: the run is written, marked failed, and exits
    with EXIT_GATES_FAILED (3), not 0, so a script can tell."""
    run_dir, result = smoke_run
    assert result.returncode == EXIT_GATES_FAILED, result.stderr[-3000:]
    assert f"run written to {run_dir}" in result.stdout
    assert "diagnostics FAILED" in result.stdout
    assert "failed their diagnostic gates" in result.stderr
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"


def test_printed_verdict_diagnostics_and_report_agree(smoke_run):
    """Every gate (the convergence checks and PSIS-LOO's Pareto k) with the same value,
    threshold and result in the printed verdict, diagnostics.json and report.md."""
    run_dir, result = smoke_run
    diagnostics = json.loads((run_dir / "diagnostics.json").read_text())
    report = (run_dir / "report.md").read_text()
    gates = diag.gate_lines(diagnostics)
    assert [name for name, *_ in gates][-1] == "max_pareto_k" and len(gates) == 6
    printed = {m[0]: m[1:] for m in re.findall(r"^  (\w+)\s+(\S+)\s+threshold (\S+)\s+(pass|FAIL)$",
                                               result.stdout, flags=re.M)}
    tabled = {m[0]: m[1:] for m in re.findall(r"^\| (\w+) \| (\S+) \| (\S+) \| (pass|FAIL) \|$", report, flags=re.M)}
    for name, value, threshold, passed in gates:
        for shown in (printed[name], tabled[name]):
            assert float(shown[0]) == pytest.approx(value, rel=1e-3) and float(shown[1]) == threshold
            assert shown[2] == ("pass" if passed else "FAIL"), name
    verdict = all(passed for *_, passed in gates)
    assert diagnostics["passed"] is verdict is False
    assert ("Diagnostics: PASSED" if verdict else "Diagnostics: FAILED") in report
    assert json.loads((run_dir / "run.json").read_text())["diagnostics_passed"] is verdict


def test_posterior_file_holds_every_group(smoke_run):
    run_dir, _ = smoke_run
    tree = xr.open_datatree(run_dir / "posterior.nc", engine="netcdf4")
    for group in ("posterior", "sample_stats", "observed_data", "log_likelihood", "posterior_predictive"):
        assert group in tree.children, group
    posterior = tree.posterior
    assert {"beta", "cutpoints", "org_sd", "org_z", "year_effect"} <= set(posterior.data_vars)
    assert list(posterior["cutpoints"].coords["cutpoint"].values) == ["0|1", "1|2", "2|3"]
    assert posterior.sizes["chain"] == 2 and posterior.sizes["draw"] == 40
    assert tree.log_likelihood["stars"].shape[-1] == 1050


def test_summary_and_diagnostics(smoke_run):
    run_dir, _ = smoke_run
    summary = pd.read_csv(run_dir / "summary.csv", index_col=0)
    assert "beta[strategy_type[prospector]]" in summary.index
    assert {"mean", "sd", "r_hat", "ess_bulk", "ess_tail"} <= set(summary.columns)
    diagnostics = json.loads((run_dir / "diagnostics.json").read_text())
    assert diagnostics["passed"] is False
    checks = diagnostics["convergence"]["checks"]
    assert set(checks) == {"max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "min_bfmi"}
    assert checks["min_ess_bulk"]["passed"] is False
    assert diagnostics["loo"]["elpd_loo"] < 0


def test_manifest_records_what_reproduces_the_run(smoke_run):
    run_dir, _ = smoke_run
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["seed"] == 20071101
    assert len(manifest["data_hash"]) == 64 and len(manifest["config_hash"]) == 64
    assert {"commit", "dirty"} <= set(manifest["git"])
    assert {"python", "pymc", "pytensor", "arviz", "hydra-core"} <= set(manifest["versions"])
    assert manifest["wall_time_s"]["total"] > manifest["wall_time_s"]["sample"] > 0
    assert (run_dir / ".hydra" / "config.yaml").exists()


def test_figures_and_report(smoke_run):
    run_dir, _ = smoke_run
    for name in ("forest_effects", "ppc_star_counts", "figure1_strategy"):
        path = run_dir / "figures" / f"{name}.png"
        assert path.stat().st_size > 10_000, name
        assert f"figures/{name}.png" in (run_dir / "report.md").read_text()
    table = pd.read_csv(run_dir / "tables" / "figure1_probabilities.csv")
    assert sorted(table["stars"].unique()) == [1, 2, 3]  # 2007: no 0 stars awarded
    sums = table.groupby("strategy_type")["mean"].sum()
    assert sums.between(0.999, 1.001).all()
    assert not (run_dir / "_incomplete").exists()

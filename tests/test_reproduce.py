"""``task=reproduce``: the rule that says whether a rerun matched, and the command itself."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import xarray as xr
from conftest import run_cli

from carestar.errors import EXIT_NOT_REPRODUCED
from carestar.reproduce_compare import gate_agreement, posterior_agreement


def _draws(seed: int, shift: float = 0.0, chains: int = 4, draws: int = 500) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    return xr.Dataset({
        "beta": (("chain", "draw", "effect"), rng.normal(shift, 1.0, (chains, draws, 3))),
        "sd": (("chain", "draw"), rng.gamma(4.0, 0.25, (chains, draws))),
    })


def test_identical_draws_are_identical():
    verdict = posterior_agreement(_draws(1), _draws(1))
    assert verdict["identical"] and verdict["agree"]


def test_other_draws_of_the_same_posterior_agree_within_mcse():
    """Independent chains of one posterior (a different machine): not identical, but every
    difference of means within z* combined MCSE (z* for 4 parameters: 2.50)."""
    verdict = posterior_agreement(_draws(1), _draws(2))
    assert not verdict["identical"] and verdict["agree"], verdict["parameters"][:2]
    assert verdict["n_parameters"] == 4 and verdict["z_star"] == pytest.approx(2.498, abs=1e-3)


def test_a_shifted_posterior_disagrees_and_the_parameter_is_named():
    # 0.2 posterior SD, against a combined MCSE of about 0.02: z about 10
    recorded, rerun = _draws(1), _draws(2)
    rerun["beta"] = rerun["beta"] + xr.DataArray([0.0, 0.2, 0.0], dims="effect")
    verdict = posterior_agreement(recorded, rerun)
    assert not verdict["agree"] and verdict["n_disagree"] == 1
    assert verdict["parameters"][0]["parameter"] == "beta[1]" and verdict["parameters"][0]["z"] > 5


def test_a_gate_verdict_that_flips_is_a_mismatch():
    def diagnostics(rhat):
        return {"passed": rhat <= 1.01,
                "convergence": {"checks": {"max_rhat": {"value": rhat, "threshold": 1.01, "passed": rhat <= 1.01}}}}

    assert gate_agreement(diagnostics(1.004), diagnostics(1.006))["agree"]
    flipped = gate_agreement(diagnostics(1.004), diagnostics(1.012))
    assert not flipped["agree"] and flipped["gates"][0]["rerun_passed"] is False


@pytest.mark.slow
def test_the_default_smoke_run_reproduces_identically(smoke_run, tmp_path):
    """The same command on the same commit: the same data, config and every draw (exit 0)."""
    run_dir, _ = smoke_run
    result = run_cli("task=reproduce", f"run={run_dir}", f"hydra.run.dir={tmp_path / 'check'}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    verdict = json.loads((tmp_path / "check" / "reproduce.json").read_text())
    assert verdict["matched"] and verdict["posteriors"]["identical"] and verdict["gates"]["agree"]
    assert verdict["git"]["same_commit"]
    assert "REPRODUCED: identical: every draw matches" in (tmp_path / "check" / "reproduce.md").read_text()


@pytest.mark.slow
def test_changed_data_or_config_stops_before_sampling(smoke_run, tmp_path):
    """A record whose data hash, or whose config, is not what the command gives today:
    stopped before any sampling (no rerun folder), what changed named, exit status 4."""
    run_dir, _ = smoke_run
    data, config = tmp_path / "data", tmp_path / "config"
    for copy in (data, config):
        shutil.copytree(run_dir, copy)
    manifest = json.loads((data / "run.json").read_text())
    (data / "run.json").write_text(json.dumps({**manifest, "data_hash": "0" * 64}))
    text = (config / ".hydra" / "config.yaml").read_text()
    (config / ".hydra" / "config.yaml").write_text(text.replace("max_rhat: 1.01", "max_rhat: 1.05"))
    (config / "run.json").write_text(json.dumps({**manifest, "config_hash": "1" * 64}))
    for copy, said in ((data, "data hash differs: recorded 000000000000"),
                       (config, "diagnostics.max_rhat: 1.05 -> 1.01")):
        out = tmp_path / f"check_{copy.name}"
        result = run_cli("task=reproduce", f"run={copy}", f"hydra.run.dir={out}")
        assert result.returncode == EXIT_NOT_REPRODUCED, result.stderr[-2000:]
        assert said in (out / "reproduce.md").read_text()
        assert not (out / "rerun").exists()


def test_reproduce_refuses_a_folder_that_holds_no_complete_run(tmp_path):
    result = run_cli("task=reproduce", f"run={tmp_path}", f"hydra.run.dir={tmp_path / 'out'}")
    assert result.returncode == 2 and "not a complete run (no run.json)" in result.stderr


def test_an_experiment_step_that_failed_its_gates_is_said_in_the_verdict(monkeypatch, tmp_path):
    """Exit 3 (gates failed) is accepted for a recorded experiment, but never hidden."""
    from carestar import reproduce

    spec = {"recorded": "test", "reduced": {"note": "n/a"},
            "quantities": [{"name": "x", "expected": 1.0, "tolerance": 0.1, "file": "f", "column": "c"}]}
    monkeypatch.setattr(reproduce, "load_expected", lambda name: spec)
    monkeypatch.setattr(reproduce, "experiment_commands",
                        lambda spec, out, reduced: [["python", "run.py", "a"], ["python", "run.py", "b"]])
    statuses = iter([0, 3])
    monkeypatch.setattr(reproduce, "run_command", lambda argv, log: next(statuses))
    monkeypatch.setattr(reproduce, "read_quantity", lambda out, quantity: 1.05)
    result = reproduce.reproduce_experiment("fake", tmp_path, reduced=False)
    assert result["matched"]
    assert "1 of 2 steps failed their diagnostic gates (exit 3)" in result["verdict"]

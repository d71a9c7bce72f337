"""Hydra sweeps (-m): one failed job is logged and the sweep goes on, then exits non-zero."""

from __future__ import annotations

import pytest
from conftest import run_cli

from carestar.errors import EXIT_GATES_FAILED


def test_a_failed_job_does_not_stop_the_sweep(tmp_path):
    result = run_cli("-m", "model.predictors=[budget],[staff]", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 1
    log = result.stdout + result.stderr
    # both jobs ran and each says why it failed
    assert "unknown predictor(s) ['budget']" in log and "unknown predictor(s) ['staff']" in log
    assert "2 job(s) of the sweep failed" in result.stderr
    assert not list(tmp_path.rglob("run.json"))


@pytest.mark.slow
def test_a_sweep_writes_one_complete_run_per_setting(tmp_path):
    result = run_cli(
        "-m", "model=ordinal", "model.link=logit,probit", "sampler=smoke", f"hydra.sweep.dir={tmp_path}"
    )
    # both smoke runs fail their gates: the sweep finishes both and exits 3 (not 1: no job failed)
    assert result.returncode == EXIT_GATES_FAILED, result.stderr[-2000:]
    runs = sorted(p.parent.name for p in tmp_path.rglob("run.json"))
    assert runs == ["0", "1"]
    assert "2 run(s) failed their diagnostic gates" in result.stderr

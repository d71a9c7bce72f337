"""Sweeps through Hydra's launcher plugins (joblib, submitit): complete runs, compile caches
of their own per job, and the sweep's exit status read back from the job folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, run_cli

from carestar.errors import EXIT_GATES_FAILED
from carestar.launchers import parallel_jobs
from carestar.sweep_outcome import read_sweep, record

ISOLATE = "from carestar.job_caches import isolate_compile_caches as i; import os, json; " \
          "slot = i(); print(json.dumps({'slot': str(slot), 'flags': os.environ['PYTENSOR_FLAGS'], " \
          "'numba': os.environ['NUMBA_CACHE_DIR'], 'jax': os.environ['JAX_COMPILATION_CACHE_DIR']}))"


def isolate_in_subprocess(root, shared, hold_seconds: float = 0.0) -> subprocess.Popen:
    code = ISOLATE + (f"; import time, sys; sys.stdout.flush(); time.sleep({hold_seconds})" if hold_seconds else "")
    env = {**os.environ, "CARESTAR_JOB_CACHES": str(root), "PYTENSOR_FLAGS": f"floatX=float64,base_compiledir={shared}"}
    env.pop("NUMBA_CACHE_DIR", None)
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)


def test_parallel_jobs_fill_the_cores():
    cores = len(os.sched_getaffinity(0))
    assert parallel_jobs(1) == cores
    assert parallel_jobs(cores) == 1
    assert parallel_jobs(4 * cores) == 1  # never 0 jobs


def test_two_live_jobs_never_share_a_cache_and_a_new_slot_starts_warm(tmp_path):
    shared = tmp_path / "shared"
    (shared / "compiledir_x").mkdir(parents=True)
    (shared / "compiledir_x" / "kernel.so").write_text("compiled")
    first = isolate_in_subprocess(tmp_path / "slots", shared, hold_seconds=30)
    held = json.loads(first.stdout.readline())
    second = isolate_in_subprocess(tmp_path / "slots", shared)
    taken = json.loads(second.communicate(timeout=60)[0])
    first.kill()
    first.wait()
    assert held["slot"] != taken["slot"]
    for job in (held, taken):
        assert job["flags"] == f"floatX=float64,base_compiledir={job['slot']}/pytensor"  # other flags kept
        assert job["numba"] == f"{job['slot']}/numba" and job["jax"] == f"{job['slot']}/jax"
        # seeded with a copy of the user's cache; the user's own folder is left as it was
        assert (tmp_path / "slots" / job["slot"] / "pytensor" / "compiledir_x" / "kernel.so").read_text() == "compiled"
    assert sorted(p.name for p in shared.rglob("*")) == ["compiledir_x", "kernel.so"]
    # the first job has ended: its slot, warm, is the next job's
    reused = json.loads(isolate_in_subprocess(tmp_path / "slots", shared).communicate(timeout=60)[0])
    assert reused["slot"] == held["slot"]


def test_the_sweep_outcome_is_read_from_the_job_folders(tmp_path):
    for job in ("0", "1", "2", "3", "10"):
        (tmp_path / job / ".hydra").mkdir(parents=True)
    record(tmp_path / "0", {"diagnostics_passed": True})
    record(tmp_path / "1", {"diagnostics_passed": False})
    record(tmp_path / "2", None)
    record(tmp_path / "10", {"reproduced": False})
    # job 3 left no outcome (killed, or never started): failed
    outcomes = read_sweep(tmp_path)
    assert outcomes.failed == [str(tmp_path / "2"), str(tmp_path / "3")]
    assert outcomes.gates_failed == [str(tmp_path / "1")]
    assert outcomes.not_reproduced == [str(tmp_path / "10")]
    assert outcomes.exit_status() == 1


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["parallel", "submitit_local"])
def test_a_two_job_sweep_through_a_launcher_writes_complete_runs(launcher, tmp_path, monkeypatch):
    monkeypatch.setenv("CARESTAR_JOB_CACHES", str(tmp_path / "caches"))
    sweep = tmp_path / "sweep"
    result = run_cli("-m", f"hydra/launcher={launcher}", "model=ordinal", "sampler=smoke", "seed=1,2",
                     f"hydra.sweep.dir={sweep}")
    # both smoke runs fail their gates, in processes other than this one: read back, exit 3
    assert result.returncode == EXIT_GATES_FAILED, (result.stdout + result.stderr)[-3000:]
    assert "2 run(s) failed their diagnostic gates" in result.stderr
    for job in ("0", "1"):
        manifest = json.loads((sweep / job / "run.json").read_text())
        assert manifest["status"] == "complete" and manifest["seed"] == int(job) + 1
    slots = {line.split("compile caches of this job: ")[1].split(" ")[0]
             for log in sweep.rglob("*.log") for line in log.read_text().splitlines()
             if "compile caches of this job" in line}
    assert len(slots) == 2 and all(slot.startswith(str(tmp_path / "caches")) for slot in slots)


def test_the_slurm_config_sizes_each_job_from_the_sampler():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["hydra/launcher=slurm", "sampler=pymc"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.cpus_per_task == cfg.sampler.cores

"""Shared fixtures: Hydra configs composed in-process, and one smoke run per session.

Fitting is slow (PyTensor compiles each model to C), so runs are shared per session and
the tests that sample are marked ``slow``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def compose_config(*overrides: str):
    """The config ``python run.py OVERRIDES`` would see (without Hydra's run dir)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def run_cli(*args: str, cwd: Path = ROOT, timeout: int = 900) -> subprocess.CompletedProcess:
    """``python run.py ARGS`` in a subprocess, as a user would type it."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """``python run.py model=ordinal sampler=smoke`` into a temporary run directory."""
    run_dir = tmp_path_factory.mktemp("smoke") / "run"
    result = run_cli("model=ordinal", "sampler=smoke", f"hydra.run.dir={run_dir}")
    return run_dir, result


@pytest.fixture(scope="session")
def joint_fit():
    """One fit of the default joint model (``conf/model/joint.yaml``, the default sampler
    at 2 chains x (500 + 500)) to the synthetic study (seed 1), postprocessed; shared by
    every test of a fitted joint model. Returns (model, prepared, idata)."""
    from helpers_study import synthetic_study
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from carestar.sampling import sample

    cfg = compose_config("model=joint", "seed=1", "sampler.chains=2", "sampler.draws=500",
                         "sampler.tune=500", "sampler.progressbar=false")
    model = instantiate(cfg.model)
    prep = model.prepare(synthetic_study(1))
    sampler = {**OmegaConf.to_container(cfg.sampler, resolve=True),
               "posterior_predictive": False}
    idata = sample(model.build(prep), sampler, 11, initvals=model.initvals(prep))
    return model, prep, model.postprocess(idata, prep)

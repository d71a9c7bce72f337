"""Shared fixtures: Hydra configs composed in-process, and one smoke run per session.

Fitting is slow (PyTensor compiles each model), so runs are shared per session and the
tests that sample are marked ``slow``.

The suite runs on two pytest-xdist workers (``pytest -n 2``, the README's command): each
test file goes to one worker as a whole (its module fixtures are fitted once), tests that
share a fit across files name one ``xdist_group``, and the files known to be longest are
handed out first so that no worker is left with a long file at the end. The smoke run is
made once per session by whichever worker asks first (the other waits on a file lock).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

# Scheduling only (longest first, from the cold-cache durations of CI): any order is correct.
LONGEST_FIRST = ["joint_fit", "test_lca_sbc", "test_doc_commands", "test_recovery",
                 "test_class_selection", "test_reproducible_draws", "test_lca_recovery", "test_lca",
                 "test_launchers", "test_family_runs", "test_sbc", "test_figure4", "test_compare",
                 "test_figures", "test_reproduce", "test_sweeps", "test_compare_terms",
                 "test_reference_cbpp", "test_monotonic", "test_category_specific", "test_regions",
                 "test_binomial", "test_country"]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Every test without an ``xdist_group`` joins its file's group; longest groups first."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__.rpartition(".")[2]))
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    group = lambda item: item.get_closest_marker("xdist_group").args[0]  # noqa: E731
    items.sort(key=lambda item: rank.get(group(item).partition("[")[0], len(rank)))


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


def made_once(tmp_path_factory, name: str, make) -> Path:
    """The folder ``name``, filled by ``make(folder)`` once per test session.

    Under pytest-xdist every worker has its own temporary folder inside one shared by the
    session: the folder is made there, by the first worker to ask, under a file lock.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    folder, made = base / name, base / f"{name}.made"
    with FileLock(str(base / f"{name}.lock")):
        if not made.exists():
            folder.mkdir()
            make(folder)
            made.touch()
    return folder


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """``python run.py model=ordinal sampler=smoke`` into a temporary run directory."""
    def make(folder: Path) -> None:
        result = run_cli("model=ordinal", "sampler=smoke", f"hydra.run.dir={folder / 'run'}")
        (folder / "result.json").write_text(json.dumps(
            {"args": result.args, "returncode": result.returncode,
             "stdout": result.stdout, "stderr": result.stderr}))

    folder = made_once(tmp_path_factory, "smoke", make)
    result = subprocess.CompletedProcess(**json.loads((folder / "result.json").read_text()))
    return folder / "run", result


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

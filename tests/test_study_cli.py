"""``task=simulate`` then ``data=study``: the written study fits like the synthetic one.

By design the two runs see the same data: ``Study.data_hash`` hashes the tables' canonical
CSV text, ``write_study`` writes exactly those tables and ``load_study`` reads them back in
the same canonical dtypes (``tests/test_study_files.py`` checks the round trip in process).
So, for the same seed, a ``data=study`` smoke run records the same ``data_hash`` as the
``data=synthetic`` smoke run, and - same model, same design, same sampler seed - draws the
same posterior. The config hashes differ (the data config differs), and they should.
"""

from __future__ import annotations

import json

import pytest
import xarray as xr
from conftest import compose_config, run_cli

from carestar.errors import EXIT_GATES_FAILED
from carestar.study import TABLES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    base = tmp_path_factory.mktemp("simulate")
    out = base / "study"
    result = run_cli("task=simulate", f"out={out}", f"hydra.run.dir={base / 'run'}", timeout=300)
    return out, result


def test_simulate_writes_the_study_files(simulated):
    out, result = simulated
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{t}.csv" for t in TABLES] + ["truth.json"])
    for table in TABLES:
        lines = (out / f"{table}.csv").read_text().splitlines()
        assert len(lines) > 1, table
    truth = json.loads((out / "truth.json").read_text())
    assert truth["seed"] == compose_config().seed
    assert f"study written to {out}" in result.stdout


def test_study_run_matches_the_synthetic_run(simulated, smoke_run, tmp_path):
    out, _ = simulated
    synthetic_dir, synthetic_result = smoke_run
    assert synthetic_result.returncode == EXIT_GATES_FAILED, synthetic_result.stderr[-3000:]
    study_dir = tmp_path / "run"
    result = run_cli("model=ordinal", "data=study", f"data.dir={out}", "sampler=smoke",
                     f"hydra.run.dir={study_dir}")
    assert result.returncode == EXIT_GATES_FAILED, result.stderr[-3000:]  # smoke draws fail the gates

    study, synthetic = (json.loads((d / "run.json").read_text()) for d in (study_dir, synthetic_dir))
    assert study["status"] == "complete"
    assert study["seed"] == synthetic["seed"]
    assert study["data_hash"] == synthetic["data_hash"]
    assert study["data"].startswith("study (") and synthetic["data"].startswith("synthetic")
    assert study["config_hash"] != synthetic["config_hash"]
    # simulate printed the same hash (its first 12 characters) for what it wrote
    assert study["data_hash"][:12] in simulated[1].stdout

    a, b = (xr.open_datatree(d / "posterior.nc", engine="netcdf4").posterior
            for d in (study_dir, synthetic_dir))
    for var in ("beta", "cutpoints", "org_sd", "year_effect"):
        xr.testing.assert_equal(a[var], b[var])

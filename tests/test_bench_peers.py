"""benchmarks/bench_peers.py without its peers: the CSV it simulates and the carestar command it runs."""

from __future__ import annotations

import importlib
import sys

import pytest
from conftest import ROOT, compose_config
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        yield importlib.import_module("bench_peers")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_the_csv_has_150_organisations_of_7_rows_and_every_category(bench, tmp_path):
    data = bench.make_csv(tmp_path / "ratings.csv")
    assert data.shape == (1050, 7)
    assert list(data.columns) == ["org", "x1", "x2", "x3", "x4", "x5", "stars"]
    assert data["org"].nunique() == 150 and set(data["org"].value_counts()) == {7}
    assert sorted(data["stars"].unique()) == [0, 1, 2, 3]
    assert (tmp_path / "ratings.csv").read_text().startswith("org,x1,x2,x3,x4,x5,stars\n")


def test_rows_scale_the_organisations(bench, tmp_path):
    assert bench.make_csv(tmp_path / "small.csv", rows=140)["org"].nunique() == 20


def test_the_csv_is_reproducible_per_seed(bench, tmp_path):
    first, again, other = (bench.make_csv(tmp_path / f"{i}.csv", seed=s) for i, s in enumerate([3, 3, 4]))
    assert first.equals(again)
    assert not first.equals(other)


@pytest.mark.parametrize(("sampler", "draws"), [("nutpie", 1000), ("numpyro", 50)])
def test_the_carestar_command_composes_and_reads_the_csv(bench, tmp_path, sampler, draws):
    csv = tmp_path / "ratings.csv"
    bench.make_csv(csv)
    args = bench.carestar_args(csv, tmp_path / "run", sampler, draws=draws, tune=draws)
    assert args[0] == "run.py" and args[-1] == f"hydra.run.dir={tmp_path / 'run'}"
    overrides = args[1:-1]
    OverridesParser.create().parse_overrides(overrides)
    cfg = compose_config(*overrides)
    assert cfg.model.formula == "stars ~ x1 + x2 + x3 + x4 + x5 + (1|org)"
    assert (cfg.sampler.name, cfg.sampler.draws, cfg.sampler.tune) == (sampler, draws, draws)
    assert (cfg.sampler.chains, cfg.sampler.cores) == (4, 2)
    assert len(instantiate(cfg.data).frame) == 1050

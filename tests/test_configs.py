"""Every config group composes with Hydra's compose API and instantiates (fast, no sampling).

The lists come from ``conf/*/`` itself, so a new YAML is tested the day it is added.
Configs with required settings (``???``) get them from ``REQUIRED``; a new config with a
required setting fails here until it is listed, which is the point.
"""

from __future__ import annotations

import importlib.util

from pathlib import Path

import pytest
from conftest import CONF, ROOT, compose_config
from helpers_study import synthetic_study
from hydra.utils import instantiate
from omegaconf import OmegaConf

from carestar.errors import ConfigError
from carestar.modelling import Model
from carestar.sampling import NUTS_SAMPLERS, check_sampler
from carestar.study import Study
from carestar.study_files import write_study
from carestar.tidy_csv import TidyTable

REF = ROOT / "tests" / "data" / "reference"


def names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    return write_study(synthetic_study(1), tmp_path_factory.mktemp("configs") / "study")


def required(group: str, name: str, study_dir: Path) -> list[str]:
    """The settings a user must add to ``GROUP=NAME`` (its ``???`` keys)."""
    return {
        ("data", "study"): [f"data.dir={study_dir}"],
        ("data", "csv"): [f"data.path={REF / 'housing.csv'}", "data.weights=Freq"],
        ("model", "binomial"): ["model.formula='incidence | trials(size) ~ C(period) + (1|herd)'"],
    }.get((group, name), [])


def test_default_config():
    cfg = compose_config()
    assert cfg.data.name == "synthetic"
    assert cfg.data._target_ == "carestar.synthetic.load_synthetic"
    assert cfg.model._target_ == "models.ordinal.OrdinalModel"
    assert cfg.sampler.name == "nutpie"  # the fastest installed by default (benchmarks)
    assert cfg.task == "fit"
    assert isinstance(cfg.seed, int) and not isinstance(cfg.seed, bool)
    # the synthetic data takes the top-level seed
    assert cfg.data.seed == cfg.seed
    assert not OmegaConf.missing_keys(cfg), OmegaConf.missing_keys(cfg)


@pytest.mark.parametrize("name", names("data"))
def test_data_config_instantiates(name, study_dir):
    cfg = compose_config(f"data={name}", *required("data", name, study_dir))
    assert not OmegaConf.missing_keys(cfg.data), f"data={name}: unset {OmegaConf.missing_keys(cfg.data)}"
    data = instantiate(cfg.data)
    assert isinstance(data, Study | TidyTable), type(data)
    assert isinstance(data.source, str) and data.source
    assert isinstance(data.data_hash, str) and len(data.data_hash) == 64


def test_study_config_loads_what_simulate_wrote(study_dir):
    """data=study on the written synthetic study gives back the same tables."""
    cfg = compose_config("data=study", f"data.dir={study_dir}")
    assert instantiate(cfg.data).data_hash == synthetic_study(1).data_hash


@pytest.mark.parametrize("name", names("model"))
def test_model_config_instantiates(name, study_dir):
    cfg = compose_config(f"model={name}", *required("model", name, study_dir))
    assert not OmegaConf.missing_keys(cfg.model), f"model={name}: unset {OmegaConf.missing_keys(cfg.model)}"
    model = instantiate(cfg.model)
    assert isinstance(model, Model)
    assert cfg.model._target_.startswith("models.")
    assert model.name and model.name != "model"


@pytest.mark.parametrize("name", names("sampler"))
def test_sampler_config_has_what_the_front_end_needs(name):
    cfg = compose_config(f"sampler={name}")
    sampler = OmegaConf.to_container(cfg.sampler, resolve=True)
    assert sampler["name"] == name, "sampler.name must match its file name (run.json records it)"
    backend = sampler.get("nuts_sampler")
    if backend not in (None, "pymc") and importlib.util.find_spec(backend) is None:
        # an optional extra that is not installed is refused with the install command
        with pytest.raises(ConfigError, match=rf'pip install -e "\.\[{backend}\]"'):
            check_sampler(sampler)
    else:
        check_sampler(sampler)  # raises ConfigError for an unknown nuts_sampler
    if name in ("map", "mle"):  # optimisers, no NUTS settings
        return
    assert sampler["nuts_sampler"] in NUTS_SAMPLERS
    for key in ("draws", "tune", "chains", "cores"):
        assert isinstance(sampler[key], int) and sampler[key] >= 1, (key, sampler.get(key))
    assert 0.5 <= float(sampler["target_accept"]) < 1.0
    assert sampler["progressbar"] in ("auto", True, False)


def test_smoke_sampler_is_small():
    smoke = compose_config("sampler=smoke").sampler
    full = compose_config("sampler=pymc").sampler
    assert smoke.draws * smoke.chains < full.draws * full.chains / 10


@pytest.mark.parametrize("name", names("experiment"))
def test_experiment_composes(name, study_dir):
    cfg = compose_config(f"experiment={name}")
    assert not OmegaConf.missing_keys(cfg), f"experiment={name}: unset {OmegaConf.missing_keys(cfg)}"
    instantiate(cfg.model)

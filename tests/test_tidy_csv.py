"""carestar.tidy_csv.load_csv: reading a tidy CSV and the checks that need no formula."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from carestar.errors import ConfigError, DataError
from carestar.tidy_csv import TidyTable, load_csv

REF = Path(__file__).parent / "data" / "reference"


def write(tmp_path: Path, text: str, name: str = "d.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_loads_housing_with_weights_and_levels():
    t = load_csv(REF / "housing.csv", weights="Freq", levels={"Sat": ["Low", "Medium", "High"]})
    assert isinstance(t, TidyTable)
    assert len(t.frame) == 72 and t.weights == "Freq"
    assert t.levels == {"Sat": ["Low", "Medium", "High"]}
    assert t.data_hash == hashlib.sha256((REF / "housing.csv").read_bytes()).hexdigest()
    assert "housing.csv" in t.source and t.dropna is False


def test_user_file_is_not_modified(tmp_path):
    p = write(tmp_path, "y,x\n1,a\n0,b\n")
    before = p.read_bytes()
    load_csv(p)
    assert p.read_bytes() == before


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found") as e:
        load_csv(tmp_path / "nope.csv")
    assert "data.path" in str(e.value)


def test_empty_file(tmp_path):
    with pytest.raises(DataError, match="empty"):
        load_csv(write(tmp_path, ""))
    with pytest.raises(DataError, match="no data rows"):
        load_csv(write(tmp_path, "y,x\n"))


def test_weights_column_missing_suggests_close_match(tmp_path):
    p = write(tmp_path, "y,freq\n1,2\n0,3\n")
    with pytest.raises(DataError, match="not in the file") as e:
        load_csv(p, weights="Freq")
    assert "did you mean 'freq'" in str(e.value)


def test_weights_non_numeric_names_lines(tmp_path):
    p = write(tmp_path, "y,w\n1,2\n0,x\n1,3\n0,?\n")
    with pytest.raises(DataError, match="non-numeric") as e:
        load_csv(p, weights="w")
    assert e.value.rows == [3, 5] and e.value.column == "w"


def test_weights_negative_names_lines(tmp_path):
    p = write(tmp_path, "y,w\n1,2\n0,-1\n1,3\n")
    with pytest.raises(DataError, match="negative") as e:
        load_csv(p, weights="w")
    assert e.value.rows == [3]


def test_levels_must_name_columns(tmp_path):
    p = write(tmp_path, "y,x\n1,a\n0,b\n")
    with pytest.raises(ConfigError, match="did you mean 'x'"):
        load_csv(p, levels={"X": ["a", "b"]})
    with pytest.raises(ConfigError, match="list"):
        load_csv(p, levels={"x": "a"})


def test_hydra_config_instantiates(tmp_path):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(Path(__file__).parents[1] / "conf" / "data" / "csv.yaml")
    cfg.path = str(REF / "housing.csv")
    cfg.weights = "Freq"
    cfg.levels = {"Infl": ["Low", "Medium", "High"]}
    t = instantiate(cfg)
    assert isinstance(t, TidyTable) and isinstance(t.levels["Infl"], list)

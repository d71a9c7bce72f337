"""Study files: round trip, and one clear DataError for each kind of bad input."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from helpers_study import synthetic_study

from carestar.errors import DataError
from carestar.schemas import SCHEMAS
from carestar.study import TABLES
from carestar.study_files import load_study, write_study

DICTIONARY = Path(__file__).resolve().parents[1] / "docs" / "data_dictionary.md"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return write_study(synthetic_study(1), tmp_path_factory.mktemp("study") / "synthetic")


@pytest.fixture
def copy(written, tmp_path):
    """A fresh copy of the written study, for breaking."""
    target = tmp_path / "broken"
    shutil.copytree(written, target)
    return target


def edit(folder: Path, table: str, change) -> None:
    """Apply ``change`` to a table's text DataFrame and write it back."""
    path = folder / f"{table}.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = change(frame)
    frame.to_csv(path, index=False)


def test_round_trip_keeps_data_and_truth(written):
    study = synthetic_study(1)
    loaded = load_study(str(written), name="roundtrip")
    assert loaded.data_hash == study.data_hash
    assert loaded.truth == study.truth
    for name, table in study.tables().items():
        pd.testing.assert_frame_equal(loaded.tables()[name], table)
    assert sorted(p.name for p in written.iterdir()) == sorted(
        [f"{t}.csv" for t in TABLES] + ["truth.json"])


def test_write_replaces_and_leaves_no_staging(written, tmp_path):
    target = tmp_path / "out"
    write_study(synthetic_study(1), target)
    write_study(synthetic_study(1), target)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    with pytest.raises(KeyboardInterrupt):
        write_study(synthetic_study(1), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="study folder not found"):
        load_study(str(tmp_path / "nowhere"))


def test_missing_file(copy):
    (copy / "strategy.csv").unlink()
    with pytest.raises(DataError, match="strategy.csv.*file not found"):
        load_study(str(copy))


def test_renamed_column_names_found_expected_and_close_match(copy):
    edit(copy, "ratings", lambda f: f.rename(columns={"stars": "star"}))
    with pytest.raises(DataError) as err:
        load_study(str(copy))
    message = str(err.value)
    assert "ratings.csv" in message and "missing column 'stars'" in message
    assert "found org, year, star," in message
    assert "expected: columns org, year, stars" in message
    assert "rename 'star' -> 'stars'" in message


def test_stars_out_of_range(copy):
    def bad(f):
        f.loc[[3, 7], "stars"] = ["5", "-1"]
        return f

    edit(copy, "ratings", bad)
    with pytest.raises(DataError) as err:
        load_study(str(copy))
    assert err.value.column == "stars"
    assert err.value.rows == [5, 9]  # CSV lines: header is line 1
    assert "between 0 and 3" in err.value.expected


def test_non_numeric_value(copy):
    def bad(f):
        f.loc[10, "spend_per_head"] = "lots"
        return f

    edit(copy, "resources", bad)
    with pytest.raises(DataError, match="non-numeric values: 'lots'") as err:
        load_study(str(copy))
    assert err.value.column == "spend_per_head" and err.value.rows == [12]
    assert "resources.csv" in err.value.file


def test_duplicate_org_year(copy):
    edit(copy, "ratings", lambda f: pd.concat([f, f.iloc[[0]]], ignore_index=True))
    with pytest.raises(DataError, match="duplicate") as err:
        load_study(str(copy))
    assert err.value.rows == [2, 1052]
    assert err.value.expected == "one row per (org, year)"


def test_empty_table(copy):
    edit(copy, "micro_measures", lambda f: f.iloc[:0])
    with pytest.raises(DataError, match="micro_measures.csv.*no rows"):
        load_study(str(copy))
    (copy / "micro_measures.csv").write_text("")
    with pytest.raises(DataError, match="no rows"):
        load_study(str(copy))


@pytest.mark.parametrize("table", ["ratings", "local_practice"])
def test_unknown_organisation(copy, table):
    def bad(f):
        f.loc[4, "org"] = "E999"
        return f

    edit(copy, table, bad)
    with pytest.raises(DataError, match="not listed in organisations.csv: 'E999'") as err:
        load_study(str(copy))
    assert err.value.column == "org" and err.value.rows == [6]


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [("strategy", "strategy_type", "innovator"), ("ratings", "serving_people", "maybe"),
     ("ratings", "capacity", "good"), ("organisations", "country", "Wales")],
)
def test_value_outside_allowed_set(copy, table, column, value):
    def bad(f):
        f.loc[2, column] = value
        return f

    edit(copy, table, bad)
    with pytest.raises(DataError, match=f"outside the allowed set: '{value}'") as err:
        load_study(str(copy))
    assert err.value.column == column and err.value.rows == [4]
    assert err.value.expected.startswith("text, one of")


def test_several_problems_in_one_message(copy):
    def bad(f):
        f.loc[0, "stars"] = "9"
        f.loc[1, "capacity"] = "good"
        return f

    edit(copy, "ratings", bad)
    with pytest.raises(DataError) as err:
        load_study(str(copy))
    assert "also column" in str(err.value)


def test_data_dictionary_documents_every_schema_column():
    text = DICTIONARY.read_text()
    sections = dict(re.findall(r"^## `(\w+)`\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S))
    assert set(sections) == set(SCHEMAS)
    for table, schema in SCHEMAS.items():
        documented = re.findall(r"^\| `([^`]+)` \|", sections[table], flags=re.M)
        assert documented == list(schema.columns), table

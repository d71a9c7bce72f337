"""Bad input through the command line: a short message, exit status 2, no traceback, no run.

Each test breaks a copy of a valid study folder (or gives a bad setting) and runs
``python run.py`` in a subprocess, as a user would. What a user must see:

- a message on stderr naming the file, the column, the offending CSV lines (header =
  line 1) and what was expected;
- exit status 2 (``carestar.errors.EXIT_USER_ERROR``) for their mistakes;
- no Python traceback;
- no ``run.json`` anywhere in the run directory (nothing that looks like a complete run).

Unknown group options (``model=nosuch``) are refused by Hydra itself before ``run.py``
runs: there the exit is non-zero and Hydra's message lists the available options.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import CONF, run_cli
from helpers_study import synthetic_study

from carestar.errors import EXIT_USER_ERROR
from carestar.study_files import write_study


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    """A valid study folder, as ``task=simulate`` writes it."""
    return write_study(synthetic_study(1), tmp_path_factory.mktemp("cli") / "study")


@pytest.fixture
def broken(study_dir, tmp_path) -> Path:
    """A fresh copy of the valid study, for breaking."""
    return Path(shutil.copytree(study_dir, tmp_path / "broken"))


def edit(folder: Path, table: str, change) -> None:
    """Apply ``change`` to a table read as text and write it back."""
    path = folder / f"{table}.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    change(frame).to_csv(path, index=False)


def line(position: int) -> int:
    """CSV line number of the 0-based data row ``position`` (header = line 1)."""
    return position + 2


def fit(run_dir: Path, *overrides: str):
    return run_cli(*overrides, "sampler=smoke", f"hydra.run.dir={run_dir}", timeout=300)


def assert_user_error(result, run_dir: Path, *needles: str) -> str:
    """Exit 2, the message on stderr holds every needle, no traceback, no run.json."""
    err = result.stderr
    assert result.returncode == EXIT_USER_ERROR, (result.returncode, err[-2000:])
    assert "Traceback" not in err, err[-3000:]
    assert "carestar: error:" in err, err[-2000:]
    for needle in needles:
        assert needle in err, f"{needle!r} not in:\n{err}"
    assert not list(run_dir.rglob("run.json")), "a failed run left a run.json"
    # short: the message, not a dump (the longest message here is about 6 lines)
    message = err[err.index("carestar: error:"):]
    assert len(message.splitlines()) <= 8, message
    return message


def rows_line(message: str) -> list[int]:
    match = re.search(r"rows: ([\d, ]+)", message)
    assert match, f"no rows in:\n{message}"
    return [int(x) for x in match.group(1).replace(" ", "").strip(",").split(",") if x]


# --------------------------------------------------------------------------- study files


def test_missing_column(broken, tmp_path):
    edit(broken, "ratings", lambda f: f.drop(columns="stars"))
    result = fit(tmp_path / "run", "data=study", f"data.dir={broken}")
    assert_user_error(result, tmp_path / "run", "ratings.csv", "'stars'", "missing column",
                      "expected: columns org, year, stars")


def test_renamed_column_suggests_the_name(broken, tmp_path):
    edit(broken, "resources", lambda f: f.rename(columns={"deprivation": "deprivaton"}))
    result = fit(tmp_path / "run", "data=study", f"data.dir={broken}")
    assert_user_error(result, tmp_path / "run", "resources.csv", "'deprivation'",
                      "rename 'deprivaton' -> 'deprivation'")


def test_stars_outside_0_to_3(broken, tmp_path):
    def change(f):
        f.loc[4, "stars"] = "5"
        f.loc[9, "stars"] = "-1"
        return f

    edit(broken, "ratings", change)
    result = fit(tmp_path / "run", "data=study", f"data.dir={broken}")
    message = assert_user_error(result, tmp_path / "run", "ratings.csv", "column 'stars'",
                                "out of range", "'5'", "'-1'", "between 0 and 3")
    assert rows_line(message) == [line(4), line(9)]


def test_non_numeric_values(broken, tmp_path):
    def change(f):
        f.loc[2, "spend_per_head"] = "lots"
        return f

    edit(broken, "resources", change)
    result = fit(tmp_path / "run", "data=study", f"data.dir={broken}")
    message = assert_user_error(result, tmp_path / "run", "resources.csv",
                                "column 'spend_per_head'", "non-numeric", "'lots'",
                                "expected: number")
    assert rows_line(message) == [line(2)]


def test_duplicate_org_year(broken, tmp_path):
    edit(broken, "ratings", lambda f: pd.concat([f, f.iloc[[3]]], ignore_index=True))
    n = len(pd.read_csv(broken / "ratings.csv"))
    result = fit(tmp_path / "run", "data=study", f"data.dir={broken}")
    message = assert_user_error(result, tmp_path / "run", "ratings.csv", "duplicate",
                                "(org, year)", "expected: one row per (org, year)")
    assert rows_line(message) == [line(3), line(n - 1)]


def test_empty_table(broken, tmp_path):
    path = broken / "ratings.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n")
    result = fit(tmp_path / "run", "data=study", f"data.dir={broken}")
    assert_user_error(result, tmp_path / "run", "ratings.csv", "no rows",
                      "expected: a header line and at least one row")


def test_org_missing_from_organisations(broken, tmp_path):
    ratings = pd.read_csv(broken / "ratings.csv", dtype=str)
    gone = "E007"
    edit(broken, "organisations", lambda f: f[f["org"] != gone])
    result = fit(tmp_path / "run", "data=study", f"data.dir={broken}")
    message = assert_user_error(result, tmp_path / "run", "ratings.csv", "column 'org'",
                                f"'{gone}'", "organisations.csv")
    expected_lines = [line(i) for i in ratings.index[ratings["org"] == gone]]
    assert expected_lines and rows_line(message) == expected_lines


def test_missing_study_folder(tmp_path):
    result = fit(tmp_path / "run", "data=study", f"data.dir={tmp_path / 'nowhere'}")
    assert_user_error(result, tmp_path / "run", "nowhere", "study folder not found",
                      "task=simulate")


# --------------------------------------------------------------------------- settings


def test_unknown_predictor(tmp_path):
    result = fit(tmp_path / "run", "model.predictors=[strategy_type,budget]")
    assert_user_error(result, tmp_path / "run", "budget", "model.predictors",
                      "available: strategy_type, spend_per_head")


def test_study_without_dir(tmp_path):
    result = fit(tmp_path / "run", "data=study")
    assert_user_error(result, tmp_path / "run", "data=study needs data.dir", "data.dir=")


@pytest.mark.parametrize("group", ["model", "data", "sampler"])
def test_unknown_group_option_lists_the_options(group, tmp_path):
    result = run_cli(f"{group}=nosuch", f"hydra.run.dir={tmp_path / 'run'}", timeout=300)
    options = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"Could not find '{group}/nosuch'" in result.stderr, result.stderr[-2000:]
    assert f"Available options in '{group}'" in result.stderr
    listed = re.findall(r"^\t(\S+)$", result.stderr, flags=re.M)
    assert sorted(listed) == options
    assert not (tmp_path / "run").exists()

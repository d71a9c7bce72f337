"""Bad input through the command line, in a subprocess as a user would type it: a short
message, exit status 2, no traceback, no run.

The catalogue of bad inputs (``tests/test_bad_inputs.py``) runs every case through
``run.py``'s entry point in process; these tests check the same in a real subprocess, for
one broken study file (two bad rows, both named) and for Hydra's own refusals. What a user must see:

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

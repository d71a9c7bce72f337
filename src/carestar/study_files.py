"""Study files: one CSV per table (+ ``truth.json``), written atomically, loaded validated.

``write_study(study, folder)`` is what ``task=simulate`` calls; ``load_study(dir)`` is what
``data=study data.dir=...`` instantiates. Loading checks every table against
``carestar.schemas`` (pandera, lazy) and the cross-table keys, and turns the first problem
into one ``DataError`` naming the file, column, CSV line numbers (header = line 1) and what
was expected, before any modelling. The format is documented in ``docs/data_dictionary.md``.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa

from carestar.errors import DataError
from carestar.schemas import ENGLAND_ONLY, KEYED_BY_ORG, SCHEMAS, describe_column, expected_columns
from carestar.study import TABLES, Study
from carestar.tidy_csv import check_utf8

log = logging.getLogger(__name__)

TRUTH_FILE = "truth.json"
HEADER_LINES = 1  # CSV line of a table row = its 0-based position + 2


# --------------------------------------------------------------------------- writing


def study_file_names() -> list[str]:
    """The files ``write_study`` writes (and replaces, in an existing folder)."""
    return [f"{table}.csv" for table in TABLES] + [TRUTH_FILE]


def write_study(study: Study, folder: str | Path) -> Path:
    """Write ``study`` as ``<table>.csv`` files (+ ``truth.json``) into ``folder``.

    A new ``folder`` is written as a temporary folder beside it and renamed into place at the
    end, so an interrupted write never leaves a folder that looks complete. In an existing
    folder only the study's own files (``study_file_names``) are replaced, each atomically;
    any other file there is kept (``task=simulate`` refuses a non-empty folder unless
    ``overwrite=true``).
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the study is an ordinary folder
    try:
        for name, table in study.tables().items():
            table.to_csv(staging / f"{name}.csv", index=False, lineterminator="\n")
        if study.truth is not None:
            (staging / TRUTH_FILE).write_text(json.dumps(study.truth, indent=1) + "\n")
        if not folder.exists():
            staging.rename(folder)
            return folder
        if study.truth is None and (folder / TRUTH_FILE).is_file():
            (folder / TRUTH_FILE).unlink()  # the earlier study's truth is not this one's
        for path in sorted(staging.iterdir()):
            os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


# --------------------------------------------------------------------------- loading


def load_study(dir: str, name: str = "study") -> Study:  # noqa: A002 (Hydra key `dir`)
    """Read and validate a folder of study CSV files (``data=study data.dir=...``).

    Parameters
    ----------
    dir : str
        The folder holding ``organisations.csv``, ``ratings.csv``, ... (one per table of
        ``carestar.study.TABLES``) and optionally ``truth.json``.
    name : str
        Name of the data set, shown in ``Study.source``.

    Raises
    ------
    DataError
        A missing folder or file, a missing column, a value of the wrong type or outside
        its allowed set or range, a duplicate key, an empty table, or an organisation
        not listed in ``organisations.csv``.
    """
    folder = Path(dir).expanduser()
    if not folder.is_dir():
        raise DataError(
            "study folder not found",
            file=str(folder),
            expected="a folder with " + ", ".join(f"{t}.csv" for t in TABLES),
            hint="set data.dir to the folder written by `python run.py task=simulate`",
        )
    tables = {table: read_table(folder / f"{table}.csv", table) for table in TABLES}
    check_keys(tables, folder)
    return Study(**tables, source=f"{name} ({folder})", truth=read_truth(folder))


def read_table(path: Path, table: str) -> pd.DataFrame:
    """One table from its CSV file, checked against its schema, in canonical dtypes."""
    expected = f"a CSV file with columns {', '.join(expected_columns(table))}"
    if path.is_dir():
        raise DataError("is a folder, not a file", file=str(path), expected=expected)
    if not path.is_file():
        raise DataError("file not found", file=str(path), expected=expected)
    check_utf8(path.read_bytes(), path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raw = None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"not a readable CSV file ({err})", file=str(path)) from None
    if raw is None or raw.empty:
        raise DataError("the table has no rows", file=str(path),
                        expected=f"a header line and at least one row of "
                                 f"{', '.join(expected_columns(table))}")
    raw = _select_columns(raw, path, table)
    _refuse_literal_nan(raw, path, table)
    try:
        valid = SCHEMAS[table].validate(raw, lazy=True)
    except pa.errors.SchemaErrors as err:
        raise schema_error(err.failure_cases, path, table) from None
    return _canonical(valid, table)


def _select_columns(raw: pd.DataFrame, path: Path, table: str) -> pd.DataFrame:
    expected = expected_columns(table)
    found = [str(c) for c in raw.columns]
    missing = [c for c in expected if c not in found]
    if missing:
        unknown = [c for c in found if c not in expected]
        close = {m: difflib.get_close_matches(m, unknown, n=1, cutoff=0.6) for m in missing}
        suggestions = [f"'{hit[0]}' -> '{m}'" for m, hit in close.items() if hit]
        raise DataError(
            f"missing column{'s' if len(missing) > 1 else ''} "
            + ", ".join(f"'{m}'" for m in missing)
            + f"; found {', '.join(found)}",
            file=str(path),
            column=missing[0],
            rows=[1],
            expected="columns " + ", ".join(expected),
            hint=("rename " + "; ".join(suggestions)) if suggestions else None,
        )
    extra = [c for c in found if c not in expected]
    if extra:
        log.warning("%s: ignoring columns not in the study format: %s", path, ", ".join(extra))
    return raw[expected]


def _refuse_literal_nan(raw: pd.DataFrame, path: Path, table: str) -> None:
    """A number cell reading ``NaN`` (or ``NA``, ``null``) is named as such, not as an empty cell."""
    literal = raw.apply(lambda column: column.str.strip().str.lower().isin(["nan", "na", "null", "none"]))
    numeric = [c for c, spec in SCHEMAS[table].columns.items() if not str(spec.dtype).startswith("str")]
    for column in numeric:
        rows = [int(i) + HEADER_LINES + 1 for i in raw.index[literal[column].to_numpy()]]
        if rows:
            shown = ", ".join(repr(v) for v in dict.fromkeys(raw.loc[literal[column], column]))
            raise DataError(f"literal {shown} where a value is expected (a missing value is an empty cell, "
                            "and this column may not be missing)" if not SCHEMAS[table].columns[column].nullable
                            else f"literal {shown}: leave the cell empty for a missing value",
                            file=str(path), column=str(column), rows=rows,
                            expected=describe_column(table, str(column)))


def _canonical(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """Text columns as pandas' default ``str`` dtype (as the synthetic generator makes)."""
    out = table.reset_index(drop=True).copy()
    for column, spec in SCHEMAS[name].columns.items():
        if str(spec.dtype).startswith("str"):
            out[column] = out[column].astype("str")
    return out


def _problem(check: str, values: list[str]) -> str:
    shown = ", ".join(repr(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
    if check.startswith("coerce_dtype") and "float" in check:
        return f"non-numeric values: {shown}"
    if check.startswith("coerce_dtype"):
        return f"values that are not whole numbers: {shown}"
    if check.startswith("isin"):
        return f"values outside the allowed set: {shown}"
    if check.startswith("in_range"):
        return f"values out of range: {shown}"
    if check == "not_nullable":
        return "empty cells"
    if check in ("multiple_fields_uniqueness", "field_uniqueness"):
        return "duplicate rows for the same key"
    if check.startswith("str_matches"):
        return f"values in the wrong form: {shown}"
    if check.startswith("str_length"):
        return "empty text"
    return f"{check}: {shown}"


def schema_error(cases: pd.DataFrame, path: Path, table: str) -> DataError:
    """One ``DataError`` from pandera's failure cases: the first problem in full, the rest
    listed in the hint."""
    cases = cases.copy()
    cases["check"] = cases["check"].astype(str)
    coerced = set(cases.loc[cases["check"].str.startswith("coerce_dtype"), "column"])
    # a value that could not be converted also fails the dtype and range checks: keep only
    # the conversion failure for that column
    follow_on = cases["column"].isin(coerced) & ~cases["check"].str.startswith("coerce_dtype")
    cases = cases[~follow_on & cases["index"].notna()]
    # column problems first: they are the most specific
    cases = cases.sort_values("schema_context", kind="stable", key=lambda c: c != "Column")
    problems = []  # (column label, problem, CSV lines, expected)
    for check, group in cases.groupby("check", sort=False):
        columns = list(dict.fromkeys(group["column"].astype(str)))
        if group["schema_context"].iloc[0] == "Column":
            for column in columns:
                rows = group[group["column"] == column]
                values = list(dict.fromkeys(rows["failure_case"].astype(str)))
                problems.append((column, _problem(str(check), values), _lines(rows),
                                 describe_column(table, column)))
        elif check in ("multiple_fields_uniqueness", "field_uniqueness"):
            key = ", ".join(SCHEMAS[table].unique or columns)
            problems.append((key, f"duplicate rows for the same ({key})", _lines(group),
                             f"one row per ({key})"))
        else:  # a table-level check: its name is its description
            problems.append((", ".join(columns), f"rows that break the rule: {check}",
                             _lines(group), str(check)))
    if not problems:  # pragma: no cover - pandera reported nothing we can place
        return DataError("the table does not match its schema", file=str(path))
    column, problem, rows, expected = problems[0]
    others = [f"column '{c}': {p} (rows {', '.join(map(str, r[:5]))}"
              f"{', ...' if len(r) > 5 else ''})" for c, p, r, _ in problems[1:]]
    return DataError(problem, file=str(path), column=column, rows=rows, expected=expected,
                     hint=("also " + "; ".join(others)) if others else None)


def _lines(cases: pd.DataFrame) -> list[int]:
    """CSV line numbers (header = line 1) of failure cases' 0-based row positions."""
    return sorted({int(i) + HEADER_LINES + 1 for i in cases["index"]})


def check_keys(tables: dict[str, pd.DataFrame], folder: Path) -> None:
    """Every ``org`` is in ``organisations``; England-only tables hold English councils."""
    orgs = tables["organisations"]
    known = set(orgs["org"])
    england = set(orgs.loc[orgs["country"] == "England", "org"])
    for table in KEYED_BY_ORG:
        column = tables[table]["org"]
        unknown = ~column.isin(known)
        if unknown.any():
            raise DataError(
                f"organisations not listed in organisations.csv: "
                + ", ".join(repr(o) for o in list(dict.fromkeys(column[unknown]))[:5]),
                file=str(folder / f"{table}.csv"), column="org",
                rows=[int(i) + HEADER_LINES + 1 for i in column.index[unknown]],
                expected="an org id listed in organisations.csv",
            )
        if table in ENGLAND_ONLY:
            outside = ~column.isin(england)
            if outside.any():
                raise DataError(
                    "organisations outside England (this table is for English councils)",
                    file=str(folder / f"{table}.csv"), column="org",
                    rows=[int(i) + HEADER_LINES + 1 for i in column.index[outside]],
                    expected="an org whose country is England in organisations.csv",
                )


def read_truth(folder: Path) -> dict[str, Any] | None:
    """The generating parameters saved with a simulated study (None for real data)."""
    path = folder / TRUTH_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"not valid JSON ({err})", file=str(path)) from None

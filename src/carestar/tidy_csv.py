"""Any tidy CSV (``data=csv``): one row per observation (or per cell, with frequency weights).

``load_csv`` reads the file as it is (it never writes to it), checks what can be checked
without a formula (the file exists, is UTF-8 and has rows; the weights column exists and
holds whole numbers >= 0, not all 0: ``carestar.frequency_weights``; the ``levels`` config names columns of the file) and returns a ``TidyTable``.
What the formula needs (columns, levels, missing values) is checked by
``carestar.formula.formula_design`` before any sampling.

Rows in messages are CSV line numbers with the header as line 1, so data row ``i`` (0-based)
is line ``i + 2`` (quoted fields spanning several lines would shift this; tidy files have none).
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from carestar.errors import ConfigError, DataError
from carestar.frequency_weights import check_frequency_weights

__all__ = ["TidyTable", "load_csv", "csv_lines", "close_match_hint", "check_utf8"]


@dataclass(frozen=True, eq=False)
class TidyTable:
    """A tidy CSV as read, plus how to read it.

    frame:     the rows as read (never written back to the user's file)
    path:      where it came from
    weights:   name of the frequency-weight column, or None (each row counts once)
    levels:    column -> ordered list of levels; the first listed is the reference level of
               a categorical predictor, and the order of an ordinal outcome's categories
    dropna:    drop rows with missing values in the formula's columns (else: an error)
    source:    a one-line description for reports
    data_hash: sha256 of the file's bytes
    """

    frame: pd.DataFrame
    path: Path
    weights: str | None = None
    levels: dict[str, list[Any]] = field(default_factory=dict)
    dropna: bool = False
    source: str = ""
    data_hash: str = ""
    name: str = "csv"

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]


def csv_lines(index: Sequence[int] | np.ndarray | pd.Index) -> list[int]:
    """CSV line numbers (header = line 1) of 0-based data-row positions."""
    return [int(i) + 2 for i in index]


def check_utf8(raw: bytes, path: Path) -> None:
    """Refuse a file that is not UTF-8 text (a Latin-1 export), naming the first bad line."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        byte = raw[err.start : err.start + 1].hex()
        raise DataError(
            f"is not UTF-8 text: line {line} holds the byte 0x{byte}, which UTF-8 does not allow there "
            "(a Latin-1 or Windows-1252 export?)",
            file=str(path),
            rows=[line],
            expected="a UTF-8 encoded CSV file",
            hint="re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8 old.csv > new.csv)",
        ) from None


def close_match_hint(name: str, choices: Sequence[str]) -> str | None:
    """``did you mean 'x'?`` for a misspelt column name, or None."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f"did you mean '{close[0]}'?" if close else None


def load_csv(
    path: str | Path,
    name: str = "csv",
    weights: str | None = None,
    levels: Mapping[str, Sequence[Any]] | None = None,
    dropna: bool = False,
) -> TidyTable:
    """Read a tidy CSV file and check it; see the module docstring."""
    p = Path(str(path)).expanduser()
    if not p.exists():
        raise DataError(
            "file not found",
            file=str(p),
            expected="a CSV file with a header row",
            hint="set data.path=/path/to/file.csv (relative paths are relative to where "
            "you ran run.py, not Hydra's run directory)",
        )
    if p.is_dir():
        raise DataError("is a folder, not a file", file=str(p), expected="a CSV file")
    raw = p.read_bytes()
    if not raw.strip():
        raise DataError("the file is empty", file=str(p), expected="a header row and data rows")
    check_utf8(raw, p)
    try:
        frame = pd.read_csv(p)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(
            f"could not be read as CSV: {exc}", file=str(p), expected="comma-separated values"
        ) from None
    if len(frame) == 0:
        raise DataError("the file has a header but no data rows", file=str(p))
    frame.columns = [str(c).strip() for c in frame.columns]
    columns = list(frame.columns)

    if weights is not None:
        weights = str(weights)
        if weights not in columns:
            raise DataError(
                f"weights column '{weights}' is not in the file",
                file=str(p),
                column=weights,
                expected=f"one of the columns {columns}",
                hint=close_match_hint(weights, columns) or "set data.weights=null for none",
            )
        check_frequency_weights(frame[weights], file=str(p), column=weights,
                                lines=np.asarray(csv_lines(range(len(frame)))))

    lv: dict[str, list[Any]] = {}
    for col, order in dict(levels or {}).items():
        col = str(col)
        if col not in columns:
            raise ConfigError(
                f"data.levels names column '{col}', which is not in {p}: columns are "
                f"{columns}" + (f"; {h}" if (h := close_match_hint(col, columns)) else "")
            )
        if isinstance(order, str) or not isinstance(order, Sequence):
            raise ConfigError(
                f"data.levels.{col} must be a list of levels in order, e.g. "
                f"data.levels.{col}=[Low,Medium,High]; got {order!r}"
            )
        order = list(order)
        if len({str(v) for v in order}) != len(order):
            raise ConfigError(f"data.levels.{col} lists a level twice: {order}")
        lv[col] = order

    return TidyTable(
        frame=frame,
        path=p,
        weights=weights,
        levels=lv,
        dropna=bool(dropna),
        source=f"tidy CSV {p} ({len(frame)} rows"
        + (f", weights '{weights}'" if weights else "")
        + ")",
        data_hash=hashlib.sha256(raw).hexdigest(),
        name=name,
    )

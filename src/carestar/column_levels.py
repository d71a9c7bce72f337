"""A column's values as the labels a user writes in ``data.levels`` (``1`` not ``1.0``,
``true``/``false``), their order of first appearance, and the check that ``data.levels``
lists every label the data hold (a ``DataError`` naming the rows otherwise).

Shared by the predictors and the outcome of a formula design (``carestar.formula``,
``carestar.formula_outcome``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from carestar.errors import DataError
from carestar.tidy_csv import TidyTable, csv_lines


def as_labels(s: pd.Series) -> pd.Series:
    """Values as the text a user would write in ``data.levels`` (1 not 1.0)."""
    if pd.api.types.is_bool_dtype(s):
        return s.map(lambda v: str(v).lower() if pd.notna(v) else v)
    if pd.api.types.is_numeric_dtype(s):
        nonnull = s.dropna()
        if len(nonnull) and np.all(np.mod(nonnull.to_numpy(dtype=float), 1) == 0):
            return s.map(lambda v: str(int(v)) if pd.notna(v) else v)
    return s.map(lambda v: str(v) if pd.notna(v) else v)


def appearance_order(s: pd.Series) -> list[str]:
    return list(dict.fromkeys(as_labels(s).dropna()))


def check_levels(table: TidyTable, col: str, rows: np.ndarray, what: str) -> list[str]:
    """Data labels of ``col`` (at positions ``rows``) all in ``data.levels[col]``."""
    order = [str(v) for v in table.levels[col]]
    lab = as_labels(table.frame[col].iloc[rows])
    bad = ~lab.isin(order) & lab.notna()
    if bad.any():
        unknown = list(dict.fromkeys(lab[bad]))
        raise DataError(
            f"{what} has level(s) {unknown} that data.levels.{col} does not list",
            file=str(table.path),
            column=col,
            rows=csv_lines(rows[bad.to_numpy()]),
            expected=f"one of {order}",
            hint=f"add them to data.levels.{col} (in order), or fix the rows",
        )
    return order

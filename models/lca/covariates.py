"""Covariates of class membership as a formula right-hand side (``'model.covariates="PARTY *
AGE"'`` on the command line), as poLCA's ``cbind(...) ~ PARTY * AGE``.

The formulae library builds the columns: interactions (``a * b`` = ``a + b + a:b``),
``C(x)`` for a categorical covariate with treatment contrasts (reference = the first level
in numeric order for numbers, else the first to appear), transformations. Columns are
named as R names them (``PARTY:AGE``, ``x2``; ``carestar.formula.r_name``); the intercept
is added by the model. A list (``[GPA, AGE]``) is the same as ``"GPA + AGE"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from formulae import design_matrices, model_description

from carestar.errors import ConfigError, DataError
from carestar.formula import r_name


def is_formula(spec: str | Sequence[str] | None) -> bool:
    return isinstance(spec, str) and spec.strip() != ""


def formula_columns(rhs: str, columns: Sequence[str]) -> list[str]:
    """The data columns a covariate formula uses (ConfigError for a bad or unknown one)."""
    try:
        names = sorted(model_description(rhs).var_names)
    except Exception as exc:  # formulae raises several types for a formula it cannot parse
        raise ConfigError(f"model.covariates '{rhs}': {exc}") from None
    absent = [n for n in names if n not in columns]
    if absent:
        raise ConfigError(f"model.covariates '{rhs}': {absent} not in the data; columns are"
                          f" {list(columns)}")
    return names


def with_formula_columns(frame: pd.DataFrame, rhs: str, source: str
                         ) -> tuple[pd.DataFrame, list[str], list[str]]:
    """``frame`` plus one numeric column per covariate-formula column (missing where a used
    column is missing), their names, and the data columns the formula uses."""
    used = formula_columns(rhs, list(map(str, frame.columns)))
    complete = frame[used].notna().all(axis=1).to_numpy()
    if not complete.any():
        raise DataError("every row has a missing covariate", file=source, column=", ".join(used))
    rows = frame.loc[complete].reset_index(drop=True)
    for c in used:  # whole numbers read as floats (a blank in the column): C(x) levels 2, not 2.0
        if pd.api.types.is_float_dtype(rows[c]) and np.all(np.mod(rows[c], 1) == 0):
            rows[c] = rows[c].astype("int64")
    try:
        dm = design_matrices(rhs, rows, na_action="error")
    except Exception as exc:
        raise ConfigError(f"model.covariates '{rhs}': {exc}") from None
    x = dm.common.as_dataframe()
    x = x.drop(columns=[c for c in x.columns if c == "Intercept"]).rename(columns=r_name)
    clash = [c for c in x.columns if c in frame.columns and c not in used]
    if clash:
        raise ConfigError(f"model.covariates '{rhs}': column name(s) {clash} already in the data")
    out = frame.drop(columns=used).copy()
    for c in x.columns:
        col = np.full(len(frame), np.nan)
        col[complete] = x[c].to_numpy(float)
        out[c] = col
    return out, list(map(str, x.columns)), used

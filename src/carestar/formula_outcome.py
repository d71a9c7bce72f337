"""The outcome of a formula design coded as the likelihood reads it (``data=csv``).

``ordinal``: category codes in the order ``data.levels.<y>`` gives, or numeric order (a
text outcome without ``data.levels`` is refused: order of appearance is no order).
``binomial``: a 0/1 outcome (numbers, booleans, or two text levels listed failure first)
or successes out of trials (a column or a whole number), checked to be whole numbers with
successes <= trials. Every refusal names the file, column and rows before any sampling.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from carestar.column_levels import appearance_order, as_labels, check_levels
from carestar.errors import ConfigError, DataError
from carestar.tidy_csv import csv_lines


def coded_outcome(table, df, outcome, keep, family, trials, formula):
    """The outcome column of the kept rows ``keep`` coded for ``family``: (codes or
    successes, the ordinal categories in order, the trials or None)."""
    file = str(table.path)
    raw = df[outcome]
    lines = np.asarray(csv_lines(keep))
    if family == "ordinal":
        labels = as_labels(raw)
        if outcome in table.levels:
            order = check_levels(table, outcome, keep, f"outcome '{outcome}'")
        elif pd.api.types.is_numeric_dtype(raw):
            order = [as_labels(pd.Series([v])).iloc[0] for v in sorted(raw.unique())]
        else:
            raise ConfigError(
                f"the ordinal outcome '{outcome}' is text, so its order is not known: list "
                f"it, e.g. data.levels.{outcome}=[{','.join(appearance_order(raw)[:4])}]"
                " (lowest first)"
            )
        codes = pd.Categorical(labels, categories=order).codes.astype(int)
        seen = np.unique(codes)
        if seen.size < 2:
            raise DataError(
                f"the outcome has one category only ({order[seen[0]]!r})",
                file=file,
                column=outcome,
                expected="at least two categories observed",
            )
        return codes, tuple(order), None

    # binomial
    if trials is None:
        if outcome in table.levels:
            order = check_levels(table, outcome, keep, f"outcome '{outcome}'")
            if len(order) != 2:
                raise ConfigError(
                    f"data.levels.{outcome} must list two levels, [failure, success], for a "
                    f"0/1 outcome; got {order}"
                )
            y = (as_labels(raw) == order[1]).to_numpy(dtype=int)
        elif pd.api.types.is_bool_dtype(raw):
            y = raw.to_numpy(dtype=int)
        elif pd.api.types.is_numeric_dtype(raw):
            bad = ~raw.isin([0, 1]).to_numpy()
            if bad.any():
                raise DataError(
                    "a 0/1 outcome has other values",
                    file=file,
                    column=outcome,
                    rows=lines[bad].tolist(),
                    expected="0 or 1, or write 'successes | trials(n) ~ ...'",
                )
            y = raw.to_numpy(dtype=int)
        else:
            raise ConfigError(
                f"the binary outcome '{outcome}' is text: say which level is a success, e.g. "
                f"data.levels.{outcome}=[{','.join(appearance_order(raw)[:2])}] "
                "(failure first)"
            )
        if np.unique(y).size < 2:
            raise DataError(
                f"the outcome has one category only (all {int(y[0])})",
                file=file,
                column=outcome,
                expected="both 0s and 1s",
            )
        return y, (), None

    if isinstance(trials, int):
        n = np.full(len(df), trials, dtype=int)
        tcol = None
    else:
        tcol = trials
        tn = pd.to_numeric(df[trials], errors="coerce")
        bad = (tn.isna() | (tn <= 0) | (np.mod(tn.fillna(0), 1) != 0)).to_numpy()
        if bad.any():
            raise DataError(
                "trials must be whole numbers > 0",
                file=file,
                column=trials,
                rows=lines[bad].tolist(),
                expected="whole numbers > 0",
            )
        n = tn.to_numpy(dtype=int)
    s = pd.to_numeric(raw, errors="coerce")
    bad = (s.isna() | (s < 0) | (np.mod(s.fillna(0), 1) != 0)).to_numpy()
    if bad.any():
        raise DataError(
            "successes must be whole numbers >= 0",
            file=file,
            column=outcome,
            rows=lines[bad].tolist(),
            expected="whole numbers between 0 and the trials",
        )
    y = s.to_numpy(dtype=int)
    over = y > n
    if over.any():
        raise DataError(
            f"more successes than trials{f' ({tcol})' if tcol else ''}",
            file=file,
            column=outcome,
            rows=lines[over].tolist(),
            expected="successes <= trials",
        )
    return y, (), n

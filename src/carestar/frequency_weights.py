"""Frequency weights, one rule for every data path: whole numbers >= 0, not all 0.

A row with weight ``w`` stands for ``w`` identical units: its log likelihood counts ``w``
times, and its predictive draws are sums of ``w`` units (README, "weighted predictive
checks"). Only whole numbers mean that, so fractional weights (survey or inverse-probability
weights) are refused on the tidy-CSV path as on the latent class path, with ``inf``, negative,
non-numeric and all-zero weights (which leave nothing to fit).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from carestar.errors import DataError

EXPECTED = "whole numbers >= 0, not all 0 (each row counts that many times)"


def check_frequency_weights(values: pd.Series | np.ndarray, *, file: str, column: str,
                            lines: np.ndarray, missing_ok: bool = True) -> np.ndarray:
    """The weights as floats, or a ``DataError`` naming the rows that break the rule.

    ``lines`` are the CSV line numbers of the rows (header = line 1). A missing weight
    (empty cell) is left as NaN when ``missing_ok`` (the formula's missing-value check names
    it, and ``data.dropna`` may drop it), else refused.
    """
    raw = pd.Series(values).reset_index(drop=True)
    w = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    missing = raw.isna().to_numpy()
    problems = [
        ("missing frequency weights", missing & (not missing_ok)),
        ("non-numeric frequency weights", np.isnan(w) & ~missing),
        ("infinite frequency weights", np.isinf(w)),
        ("negative frequency weights", w < 0),
        ("fractional frequency weights (frequency weights count rows)",
         np.isfinite(w) & (w != np.round(w))),
    ]
    for problem, bad in problems:
        if bad.any():
            raise DataError(problem, file=file, column=column, rows=np.asarray(lines)[bad].tolist(),
                            expected=EXPECTED)
    if not (w[~np.isnan(w)] > 0).any():
        raise DataError("every frequency weight is 0: there is nothing to fit", file=file, column=column,
                        expected=EXPECTED)
    return w

"""Regression designs: what a regression model needs, whichever data it came from.

Both the study (predictors chosen by name in the model config) and a tidy CSV with a
formula (``data=csv``) are turned into a ``RegressionDesign``; the ordinal and binomial
models are built from the design alone, so they never look at where the data came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Factor:
    """A categorical index over the rows: ``codes[i]`` indexes ``levels``."""

    name: str
    levels: tuple[str, ...]
    codes: np.ndarray


@dataclass(frozen=True)
class GroupTerm:
    """A group-level (random) term ``(1 + x | group)``, non-centred in the models.

    ``slopes`` holds the columns of the varying slopes (empty for ``(1|group)``).
    """

    group: Factor
    intercept: bool = True
    slopes: pd.DataFrame | None = None

    @property
    def coefficients(self) -> list[str]:
        """``Intercept`` (if the term has one), then the slopes' column names."""
        return (["Intercept"] if self.intercept else []) + ([] if self.slopes is None else list(self.slopes.columns))

    def columns(self) -> np.ndarray:
        """Per row, the value each coefficient multiplies: 1 for the intercept, the slope's
        column for a slope; shape (rows, coefficients)."""
        values = ([np.ones(len(self.group.codes))] if self.intercept else []) + (
            [] if self.slopes is None else [self.slopes[c].to_numpy(float) for c in self.slopes])
        return np.column_stack(values)

    @property
    def label(self) -> str:
        parts = (["1"] if self.intercept else []) + list(
            [] if self.slopes is None else self.slopes.columns
        )
        return f"{' + '.join(parts)}|{self.group.name}"


@dataclass(frozen=True)
class RegressionDesign:
    """Outcome, fixed-effect columns and group terms of one regression.

    outcome:    the outcome's name (a column, or e.g. ``stars``)
    y:          ordinal: category codes 0..K-1; binomial: successes per row
    categories: ordinal outcome levels in order (empty for binomial)
    trials:     binomial trials per row (None for ordinal / Bernoulli rows of 1)
    X:          fixed-effect columns, float, one named column per coefficient
                (treatment contrasts; no intercept column: ``intercept`` says if the
                model should add one)
    groups:     group-level terms
    period:     optional factor with zero-sum effects (the study's rating years)
    lowest:     optional per-row lowest possible category code (rating regimes in
                which some categories were not awarded); None means 0 everywhere
    weights:    optional frequency weights: each row counts ``weights[i]`` times
    rows:       identifiers of each row for output tables (e.g. org, year)
    scales:     for standardised columns, the (mean, sd) used: effect per unit = effect / sd
    monotonic:  monotonic terms ``mo(x)`` (``carestar.monotonic.MonotonicTerm``), beside ``X``
    cs:         optional category-specific columns (ordinal ``cs(x)``: one effect per
                threshold, ``carestar.category_specific``), named as ``X``'s columns are
    """

    outcome: str
    y: np.ndarray
    X: pd.DataFrame
    categories: tuple[str, ...] = ()
    trials: np.ndarray | None = None
    intercept: bool = False
    groups: tuple[GroupTerm, ...] = ()
    period: Factor | None = None
    lowest: np.ndarray | None = None
    weights: np.ndarray | None = None
    rows: pd.DataFrame | None = None
    scales: dict[str, tuple[float, float]] = field(default_factory=dict)
    monotonic: tuple = ()
    cs: pd.DataFrame | None = None

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def effects(self) -> list[str]:
        return list(self.X.columns)

    @property
    def cs_columns(self) -> list[str]:
        return [] if self.cs is None else list(self.cs.columns)

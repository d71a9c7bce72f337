"""Complete or quasi-complete separation in a regression design, found by linear programming.

The log likelihood of a cumulative link model ``P(y <= k) = F(c_k - x'beta)`` (a binomial
model is the two-category case, ``c = -intercept``) grows without bound along a direction
``(d_beta, d_c)`` with ``d_beta != 0`` if every row's probability is non-decreasing along it:

    d_c[y_i] - x_i' d_beta >= 0        for rows with an upper cutpoint (y_i < K - 1)
    d_c[y_i - 1] - x_i' d_beta <= 0    for rows with a lower cutpoint (y_i above its floor)

and one of them is strict. Then the maximum likelihood estimate does not exist, and a
posterior of those effects is held up by their prior alone on one side (Albert & Anderson
1984; the linear program is Konis's 2007 test, extended to ordered categories). The LP
maximises the total slack of these inequalities in the box ``|d| <= 1``: a positive optimum
is separation, and the effects with ``d_beta_j != 0`` there are named. Group effects are left
out (their own distribution keeps them finite); year effects are in, as dummies.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from carestar.design import RegressionDesign

TOL = 1e-7


def _columns(design: RegressionDesign) -> tuple[np.ndarray, list[str]]:
    X, names = design.X.to_numpy(float), list(design.effects)
    if design.period is not None and len(design.period.levels) > 1:
        dummies = np.eye(len(design.period.levels))[design.period.codes][:, 1:]
        X = np.column_stack([X, dummies])
        names += [f"{design.period.name}_effect[{lv}]" for lv in design.period.levels[1:]]
    return X, names


def separated_effects(design: RegressionDesign) -> list[str]:
    """The effects (columns, year dummies) along which the data are separated; [] if none."""
    X, names = _columns(design)
    if X.shape[1] == 0:
        return []
    y = np.asarray(design.y, int)
    if design.categories:  # ordinal: category codes 0..K-1
        K = len(design.categories)
        floor = np.zeros(design.n, int) if design.lowest is None else np.asarray(design.lowest, int)
        upper_rows, upper_cut = np.flatnonzero(y < K - 1), y[y < K - 1]
        lower_mask = y > floor
        lower_rows, lower_cut = np.flatnonzero(lower_mask), y[lower_mask] - 1
        n_cut = K - 1
    else:  # binomial: failures give category 0, successes category 1, cutpoint = -intercept
        n = np.ones(design.n) if design.trials is None else np.asarray(design.trials, float)
        upper_rows, lower_rows = np.flatnonzero(y < n), np.flatnonzero(y > 0)
        upper_cut, lower_cut = np.zeros(upper_rows.size, int), np.zeros(lower_rows.size, int)
        n_cut = 1 if design.intercept else 0
    p = X.shape[1]
    # slack of row r: a_r . (d_beta, d_c) >= 0
    upper = np.zeros((upper_rows.size, p + n_cut))
    upper[:, :p] = -X[upper_rows]
    lower = np.zeros((lower_rows.size, p + n_cut))
    lower[:, :p] = X[lower_rows]
    if n_cut:
        upper[np.arange(upper_rows.size), p + upper_cut] = 1.0
        lower[np.arange(lower_rows.size), p + lower_cut] = -1.0
    A = np.vstack([upper, lower])
    result = linprog(-A.sum(axis=0), A_ub=-A, b_ub=np.zeros(len(A)), bounds=[(-1, 1)] * (p + n_cut),
                     method="highs")
    if not result.success or -result.fun <= TOL * max(1, len(A)):
        return []
    direction = result.x[:p]
    return [name for name, d in zip(names, direction) if abs(d) > 1e-6]

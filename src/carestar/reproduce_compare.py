"""Did a rerun get the same posterior as the recorded run? The rule ``task=reproduce`` states.

1. **Identical**: every draw of every posterior variable equal, bit for bit (same code,
   package versions and CPU: carestar's draws do not depend on the compile cache).
2. Otherwise (another machine, other library builds), per scalar parameter ``j`` (every
   element of every posterior variable), the difference of the two posterior means in units
   of their combined Monte Carlo standard error::

       z_j = (mean_rerun_j - mean_recorded_j) / sqrt(mcse_rerun_j**2 + mcse_recorded_j**2)

   Two valid runs of the same model and data differ only by Monte Carlo error, so each
   ``z_j`` is about standard normal. The posteriors **agree** when every
   ``|z_j| <= z*``, with ``z* = Phi^-1(1 - 0.05 / (2 m))`` over the ``m`` parameters
   (Bonferroni): two valid runs are called different with probability at most 5%.
   A point estimate (``sampler=map`` / ``mle``: no draws to give an MCSE) agrees when every
   value is within a relative 1e-6 (the optimisers' tolerance) of the recorded one.
3. **Gates**: each diagnostic gate (``diagnostics.json``) must give the same pass/fail.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from scipy.stats import norm

from carestar import diagnostics as diag

FAMILY_ALPHA = 0.05
POINT_RTOL = 1e-6


def identical(recorded: xr.Dataset, rerun: xr.Dataset) -> bool:
    """Same variables, same shapes, every value equal (NaN where NaN)."""
    if set(recorded.data_vars) != set(rerun.data_vars):
        return False
    return all(
        recorded[name].shape == rerun[name].shape
        and np.array_equal(recorded[name].values, rerun[name].values, equal_nan=True)
        for name in recorded.data_vars
    )


def _elements(dataset: xr.Dataset) -> dict[str, float]:
    """``name[i,j]`` -> value for every element of every variable."""
    out = {}
    for name, var in dataset.data_vars.items():
        values = np.asarray(var.values, dtype=float)
        if values.ndim == 0:
            out[name] = float(values)
            continue
        for index in np.ndindex(values.shape):
            out[f"{name}[{','.join(map(str, index))}]"] = float(values[index])
    return out


def posterior_agreement(recorded: xr.Dataset, rerun: xr.Dataset) -> dict[str, Any]:
    """The verdict on the posteriors (module docstring): identical, or the z rule."""
    missing = sorted(set(recorded.data_vars) ^ set(rerun.data_vars))
    if missing:
        return {"identical": False, "agree": False, "rule": "the same posterior variables",
                "problem": f"variables in one run only: {', '.join(missing)}", "parameters": []}
    if identical(recorded, rerun):
        return {"identical": True, "agree": True, "rule": "every draw equal", "parameters": []}
    names = list(recorded.data_vars)
    if min(recorded.sizes.get("draw", 0), rerun.sizes.get("draw", 0)) < 4:  # sampler=map / mle
        return _point_agreement(recorded[names], rerun[names])
    means_a, means_b = _elements(recorded.mean(("chain", "draw"))), _elements(rerun.mean(("chain", "draw")))
    mcse_a, mcse_b = _elements(diag.mcse_mean(recorded)), _elements(diag.mcse_mean(rerun))
    m = len(means_a)
    z_star = float(norm.ppf(1 - FAMILY_ALPHA / (2 * m)))
    rows = []
    for key, a in means_a.items():
        b, se = means_b[key], float(np.hypot(mcse_a[key], mcse_b[key]))
        z = 0.0 if a == b else (b - a) / se if se > 0 else float("inf")
        rows.append({"parameter": key, "recorded_mean": a, "rerun_mean": b, "combined_mcse": se,
                     "z": z, "agree": bool(abs(z) <= z_star)})
    rows.sort(key=lambda r: -abs(r["z"]))
    return {
        "identical": False,
        "agree": all(r["agree"] for r in rows),
        "rule": (f"|difference of means| / combined MCSE <= z* = {z_star:.2f} for every one of the {m} "
                 f"parameters (Bonferroni, family-wise {FAMILY_ALPHA:g})"),
        "z_star": z_star,
        "n_parameters": m,
        "n_disagree": sum(not r["agree"] for r in rows),
        "parameters": rows,
    }


def _point_agreement(recorded: xr.Dataset, rerun: xr.Dataset) -> dict[str, Any]:
    a, b = _elements(recorded.mean(("chain", "draw"))), _elements(rerun.mean(("chain", "draw")))
    rows = [{"parameter": k, "recorded_mean": a[k], "rerun_mean": b[k],
             "agree": bool(np.isclose(b[k], a[k], rtol=POINT_RTOL, atol=0))} for k in a]
    rows.sort(key=lambda r: r["agree"])
    return {"identical": False, "agree": all(r["agree"] for r in rows),
            "rule": f"point estimates within a relative {POINT_RTOL:g} of the recorded ones",
            "n_parameters": len(rows), "n_disagree": sum(not r["agree"] for r in rows), "parameters": rows}


def gate_agreement(recorded: dict[str, Any], rerun: dict[str, Any]) -> dict[str, Any]:
    """Each gate of the two ``diagnostics.json``: the same pass/fail (values shown)."""
    a = {name: (value, passed) for name, value, _, passed in diag.gate_lines(recorded)}
    b = {name: (value, passed) for name, value, _, passed in diag.gate_lines(rerun)}
    rows = [{"gate": name, "recorded": a.get(name, (None, None))[0], "rerun": b.get(name, (None, None))[0],
             "recorded_passed": a.get(name, (None, None))[1], "rerun_passed": b.get(name, (None, None))[1]}
            for name in dict.fromkeys([*a, *b])]
    for row in rows:
        row["agree"] = row["recorded_passed"] is not None and row["recorded_passed"] == row["rerun_passed"]
    agree = all(r["agree"] for r in rows) and recorded.get("passed") == rerun.get("passed")
    return {"agree": agree, "recorded_passed": recorded.get("passed"), "rerun_passed": rerun.get("passed"),
            "gates": rows}

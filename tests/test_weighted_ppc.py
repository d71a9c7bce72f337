"""Predictive checks of weighted data: a row with frequency weight w gets w replicates.

The same parameters give the same predictive distribution of the counts whether the data
are written as weighted cells or as one row per observation. Before the fix a cell with
weight w counted one replicate w times: the same mean, a variance w times too large.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from carestar.tidy_csv import load_csv
from models.binomial import BinomialModel
from models.ordinal import OrdinalModel
from models.ordinal_figures import predicted_category_counts

REF = Path(__file__).parent / "data" / "reference"
HOUSING_LEVELS = {"Sat": ["Low", "Medium", "High"], "Infl": ["Low", "Medium", "High"],
                  "Type": ["Tower", "Apartment", "Atrium", "Terrace"], "Cont": ["Low", "High"]}
POLR = {"beta": [0.5663937, 1.2888191, -0.5723501, -0.3661866, -1.0910149, 0.3602841],
        "cutpoints": [-0.4961353, 0.6907083]}
GLM = {"intercept": -1.269023, "beta": [-1.170763, -1.301405, -1.782279]}
DRAWS = 4000


def constant_posterior(design, point: dict[str, list[float]]) -> xr.DataTree:
    """``DRAWS`` draws all equal to ``point``: only the replicates' own noise is left."""
    dims = {"beta": ("effect",), "cutpoints": ("cutpoint",), "intercept": ()}
    data = {name: (("chain", "draw", *dims[name]),
                   np.broadcast_to(np.asarray(v, float), (1, DRAWS, *np.shape(v))))
            for name, v in point.items()}
    posterior = xr.Dataset(data, coords={"chain": [0], "draw": np.arange(DRAWS), "effect": design.effects})
    return xr.DataTree.from_dict({"posterior": posterior})


def interval(counts: np.ndarray) -> np.ndarray:
    return np.quantile(counts, [0.05, 0.5, 0.95], axis=-1)


def test_housing_cells_and_households_predict_the_same_counts(tmp_path):
    """polr's estimates; 72 weighted cells vs 1681 household rows: the 5%, 50% and 95%
    quantiles of each satisfaction level's count agree within Monte Carlo error (about
    0.7 households for a quantile of 4000 draws; allowed 3)."""
    cells = pd.read_csv(REF / "housing.csv")
    expanded = tmp_path / "households.csv"
    cells.loc[cells.index.repeat(cells["Freq"])].drop(columns="Freq").to_csv(expanded, index=False)
    model = OrdinalModel(formula="Sat ~ Infl + Type + Cont")
    weighted = model.prepare(load_csv(REF / "housing.csv", weights="Freq", levels=HOUSING_LEVELS))
    one_per_row = model.prepare(load_csv(expanded, levels=HOUSING_LEVELS))
    assert weighted.n == 72 and one_per_row.n == 1681
    counts = {}
    for name, design in (("cells", weighted), ("households", one_per_row)):
        groups = model.pointwise(constant_posterior(design, POLR), design, seed=3)
        idata = xr.DataTree.from_dict({name: xr.DataTree(ds) for name, ds in groups.items()})
        counts[name] = predicted_category_counts(idata, design, np.ones(design.n, bool))  # (3, draws)
    a, b = interval(counts["cells"]), interval(counts["households"])
    print(f"\n5/50/95% of the counts Low, Medium, High: cells {a.T.tolist()}, households {b.T.tolist()}")
    np.testing.assert_allclose(a, b, atol=3.0)
    assert counts["cells"].sum(axis=0).tolist() == [1681] * DRAWS  # every household replicated once


def test_weighted_binomial_rows_replicate_every_copy(tmp_path):
    """cbpp as 842 Bernoulli animals, or as two weighted rows per herd-period: the predictive
    interval of the total number of cases per period is the same (glm's estimates)."""
    cb = pd.read_csv(REF / "cbpp.csv")
    animals, pairs = [], []
    for r in cb.itertuples():
        for y, k in ((1, r.incidence), (0, r.size - r.incidence)):
            pairs.append({"herd": r.herd, "period": r.period, "y": y, "w": k})
            animals += [{"herd": r.herd, "period": r.period, "y": y}] * k
    pd.DataFrame(animals).to_csv(tmp_path / "animals.csv", index=False)
    pd.DataFrame(pairs).to_csv(tmp_path / "pairs.csv", index=False)
    model = BinomialModel("y ~ C(period)")
    totals = {}
    for name, table in (("animals", load_csv(tmp_path / "animals.csv")),
                        ("pairs", load_csv(tmp_path / "pairs.csv", weights="w"))):
        design = model.prepare(table)
        pp = model.pointwise(constant_posterior(design, GLM), design, seed=5)["posterior_predictive"]
        replicated = pp["y_total"] if "y_total" in pp else pp["y"]
        period = design.X.to_numpy() @ np.arange(1, 4)  # 0 for period 1, else the period - 1
        totals[name] = np.stack([replicated.values[0][:, period == p].sum(axis=1) for p in range(4)])
    a, b = interval(totals["pairs"]), interval(totals["animals"])
    print(f"\n5/50/95% of the cases per period: pairs {a.T.tolist()}, animals {b.T.tolist()}")
    np.testing.assert_allclose(a, b, atol=2.0)


def test_point_estimates_get_many_replicates():
    """A point estimate (one draw, sampler=map or mle) gets 1000 replicate data sets."""
    table = load_csv(REF / "housing.csv", weights="Freq", levels=HOUSING_LEVELS)
    model = OrdinalModel(formula="Sat ~ Infl + Type + Cont")
    design = model.prepare(table)
    point = constant_posterior(design, POLR).isel(draw=[0])
    groups = model.pointwise(point, design, seed=1)
    assert groups["log_likelihood"].sizes["draw"] == 1
    counts = groups["posterior_predictive"]["Sat_counts"]
    assert counts.sizes["draw"] == 1000
    assert np.ptp(counts.sum("obs").sel(category="High").values) > 50  # spread, not one replicate
    assert float(groups["log_likelihood"]["Sat"].sum()) == pytest.approx(-1739.5746, abs=1e-3)

"""Drivers of the star rating (carestar.drivers): variance shares and standardised effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from helpers_study import synthetic_study

from carestar import drivers
from carestar.figures import save_figure
from carestar.study_design import ratings_design

RES = ["spend_per_head", "deprivation", "older_share"]


def _posterior(values: dict[str, tuple[tuple[str, ...], np.ndarray]], coords, n_draw=50, seed=0,
               noise=0.0):
    """A posterior whose draws sit at ``values`` (plus optional noise): (chain=2, draw)."""
    rng = np.random.default_rng(seed)
    data = {}
    for name, (dims, v) in values.items():
        v = np.asarray(v, float)
        draws = np.broadcast_to(v, (2, n_draw) + v.shape).copy()
        draws += noise * rng.normal(size=draws.shape)
        data[name] = (("chain", "draw", *dims), draws)
    return xr.DataTree.from_dict({"posterior": xr.Dataset(data, coords=coords)})


def _truth_posterior(study, design, sharp=True):
    """Joint-model-shaped posterior at the synthetic truth, classes known (probabilities 0/1)."""
    t = study.truth["ratings"]
    beta = [t["strategy_effects"][c.split("[")[1][:-1]] - t["strategy_effects"]["defender"]
            if c.startswith("strategy") else t["resource_effects_per_sd"][c]
            for c in design.effects]
    orgs = list(design.groups[0].group.levels)
    classes = study.truth["local_practice"]["classes"]
    cls = study.truth["local_practice"]["class_of_org"]
    probs = np.array([[1.0 if cls[o] == c else 0.0 for c in classes] for o in orgs])
    if not sharp:
        probs = 0.8 * probs + 0.2 / len(classes)
    gamma = [t["class_effects"][c] for c in classes]
    years = list(design.period.levels)
    return _posterior(
        {"beta": (("effect",), beta),
         "class_effects": (("class",), gamma),
         "org_class_probs": (("org", "class"), probs),
         "org_sd": (("org_coef",), [t["org_sd"]]),
         "year_effect": (("year",), [t["year_effects"][y] for y in years])},
        {"effect": design.effects, "class": classes, "org": orgs, "org_coef": ["Intercept"],
         "year": years})


@pytest.fixture(scope="module")
def design():
    return ratings_design(synthetic_study(1), ["strategy_type", *RES],
                          {"strategy_type": "defender"})


def test_strategy_first_at_the_truth(design):
    """On the synthetic study's truth, strategy explains the most variation, then the rest."""
    study = synthetic_study(1)
    dec = drivers.decompose(_truth_posterior(study, design), design)
    order = drivers.ranking(dec)
    table = drivers.variance_table(dec)
    assert order[0] == "strategy", table.to_string()
    assert set(order) == {"strategy", "resources", "local practice"}
    assert np.allclose(dec["share"].sum("block"), 1.0)


def test_shares_by_hand(design):
    """Each block's variance matches a direct computation over the rating rows."""
    study = synthetic_study(1)
    idata = _truth_posterior(study, design)
    dec = drivers.decompose(idata, design)
    X = design.X.to_numpy(float)
    beta = idata["posterior"]["beta"].values[0, 0]
    strat = X[:, :3] @ beta[:3]
    cls = study.truth["local_practice"]["class_of_org"]
    gamma = np.array([study.truth["ratings"]["class_effects"][cls[o]] for o in design.rows["org"]])
    t = study.truth["ratings"]
    total = np.var(X @ beta + gamma) + t["org_sd"] ** 2 + np.var(
        [t["year_effects"][str(y)] for y in design.rows["year"]]) + np.pi**2 / 3
    got = dec.isel(sample=0)
    assert np.isclose(got["variance"].sel(block="strategy"), np.var(strat))
    assert np.isclose(got["variance"].sel(block="local practice"), np.var(gamma))
    assert np.isclose(got["total_variance"], total)
    std = got["std_effect"].sel(term="strategy_type[prospector]")
    assert np.isclose(std, 1.5 / np.sqrt(total))


def test_uncertain_classes_mixture_variance(design):
    """With uncertain class membership the block variance is the mixture variance."""
    study = synthetic_study(1)
    idata = _truth_posterior(study, design, sharp=False)
    dec = drivers.decompose(idata, design).isel(sample=0)
    post = idata["posterior"]
    p = post["org_class_probs"].values[0, 0]
    g = post["class_effects"].values[0, 0]
    codes = design.groups[0].group.codes
    m, s = (p @ g)[codes], (p @ g**2)[codes]
    assert np.isclose(dec["variance"].sel(block="local practice"), s.mean() - m.mean() ** 2)


def test_ordinal_posterior_uses_practice_columns():
    """An ordinal-model posterior: local practice from its summary columns, no classes."""
    study = synthetic_study(1)
    d = ratings_design(study, ["strategy_type", *RES, "local_measures_use"],
                       {"strategy_type": "defender"})
    beta = np.array([1.5, 0.7, -0.6, 0.3, -0.25, 0.1, 0.2])
    idata = _posterior({"beta": (("effect",), beta)}, {"effect": d.effects}, noise=0.05)
    dec = drivers.decompose(idata, d, link="probit")
    assert "local practice" in dec["block"].values
    assert np.allclose(dec["share"].sum("block"), 1.0)
    assert (dec["variance"].sel(block="residual (link)") == 1.0).all()
    eff = drivers.effects_table(dec)
    assert eff.set_index("term").loc["local_measures_use", "block"] == "local practice"
    assert drivers.ranking(dec)[0] == "strategy"


def test_tables_and_figure(design, tmp_path):
    dec = drivers.decompose(_truth_posterior(synthetic_study(1), design), design)
    t = drivers.variance_table(dec)
    assert list(t.columns) == ["block", "mean", "q05", "q95", "rank"]
    assert (t["q05"] <= t["mean"] + 1e-12).all() and (t["mean"] <= t["q95"] + 1e-12).all()
    assert isinstance(drivers.effects_table(dec), pd.DataFrame)
    path = save_figure(drivers.figure(dec), tmp_path / "drivers.png")
    assert path.exists() and path.stat().st_size > 1000

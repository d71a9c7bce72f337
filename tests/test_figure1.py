"""Figure 1 (predicted stars by strategy type) shows what the model predicts.

The figure year's rating regime decides which categories exist (no 0 stars from 2006,
``model.lowest_stars``): the figure shows exactly those, their probabilities come from the
function the likelihood uses, so each type's bars add up to 1, and they agree with the
observed shares of that year's councils.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from helpers_study import synthetic_study
from omegaconf import OmegaConf
from scipy import stats

from carestar.sampling import sample
from models.ordinal import OrdinalModel
from models.ordinal_figures import strategy_probabilities

ORDINAL_YAML = Path(__file__).resolve().parents[1] / "conf" / "model" / "ordinal.yaml"
DEFAULT_SEED = 20071101  # conf/config.yaml: what `python run.py` fits
YEARS = range(2002, 2009)
TYPES = ("prospector", "analyser", "defender", "reactor")


def ordinal_model(**overrides) -> OrdinalModel:
    cfg = OmegaConf.to_container(OmegaConf.load(ORDINAL_YAML), resolve=True)
    return OrdinalModel(**{**{k: v for k, v in cfg.items() if not k.startswith("_")}, **overrides})


def constant_posterior(design, *, beta: dict[str, float], cutpoints, year_effect: dict[str, float],
                       draws: int = 3) -> xr.DataTree:
    """A posterior whose every draw is the given point (no organisation spread)."""
    point = {
        "beta": (np.array([beta.get(e, 0.0) for e in design.effects]), ("effect",)),
        "cutpoints": (np.asarray(cutpoints, float), ("cutpoint",)),
        "year_effect": (np.array([year_effect[y] for y in design.period.levels]), ("year",)),
        "org_sd": (np.zeros(1), ("org_coef",)),
    }
    data = {name: (("chain", "draw", *dims), np.broadcast_to(v, (1, draws, *v.shape)))
            for name, (v, dims) in point.items()}
    coords = {"chain": [0], "draw": np.arange(draws), "effect": design.effects,
              "year": list(design.period.levels), "org_coef": ["Intercept"]}
    return xr.DataTree.from_dict({"posterior": xr.Dataset(data, coords=coords)})


def test_every_figure_year_shows_the_awarded_stars_with_the_models_probabilities():
    """For each year, the table (what the figure draws) holds the regime's categories only,
    summing to 1 per type, equal to the cumulative logit probabilities with c_1 = -inf
    where the regime gave no 0 stars (written here with scipy, independently)."""
    model = ordinal_model()
    design = model.prepare(synthetic_study(1))
    effects = {"strategy_type[prospector]": 1.2, "strategy_type[analyser]": 0.5,
               "strategy_type[reactor]": -0.9}
    taus = {str(y): 0.1 * (y - 2005) for y in YEARS}
    cuts = np.array([-2.2, -0.4, 1.6])
    idata = constant_posterior(design, beta=effects, cutpoints=cuts, year_effect=taus)
    for year in YEARS:
        model.figure_year = year
        table = strategy_probabilities(model, idata, design)
        lowest = 1 if year >= 2006 else 0
        for level in TYPES:
            part = table[table["strategy_type"] == level]
            assert list(part["stars"]) == ["0", "1", "2", "3"][lowest:], (year, level)
            assert part["mean"].sum() == pytest.approx(1.0, abs=1e-12), (year, level)
            eta = effects.get(f"strategy_type[{level}]", 0.0) + taus[str(year)]
            cum = np.r_[0.0, stats.logistic.cdf(cuts - eta), 1.0]
            cum[1:lowest + 1] = 0.0  # categories below the regime's lowest: c = -inf
            np.testing.assert_allclose(part["mean"], np.diff(cum)[lowest:], rtol=1e-10)


@pytest.fixture(scope="module")
def one_year_fit():
    """``python run.py model.year=2007`` (the poster's one-year figure), sampled briefly."""
    study = synthetic_study(DEFAULT_SEED)
    model = ordinal_model(year=2007)
    design = model.prepare(study)
    sampler = {"name": "pymc", "nuts_sampler": "pymc", "draws": 400, "tune": 400, "chains": 2,
               "cores": 1, "progressbar": False, "posterior_predictive": False}
    idata = sample(model.build(design), sampler, seed=DEFAULT_SEED)
    return model, design, idata


@pytest.mark.slow
def test_one_year_figure_agrees_with_the_observed_shares(one_year_fit):
    """Each type's predicted share of each star level against the share the 2007 councils of
    that type got: within 3.3 SD of the predictive spread (posterior SD and the binomial
    noise of n councils: a 99.9% interval). Before the fix reactors were shown P(1 star) =
    0.195 while 54.5% of them got 1 star."""
    model, design, idata = one_year_fit
    table = strategy_probabilities(model, idata, design)
    assert list(dict.fromkeys(table["stars"])) == ["1", "2", "3"]  # no 0 stars in 2007
    types = design.rows.merge(synthetic_study(DEFAULT_SEED).strategy[["org", "strategy_type"]], on="org")
    pooled = {}
    for level in TYPES:
        stars = types.loc[types["strategy_type"] == level, "stars"].astype(str)
        part = table[table["strategy_type"] == level].set_index("stars")
        assert part["mean"].sum() == pytest.approx(1.0, abs=1e-9)
        for category, row in part.iterrows():
            share = float((stars == category).mean())
            p = float(row["mean"])
            posterior_sd = (float(row["q95"]) - float(row["q05"])) / (2 * 1.645)
            spread = np.sqrt(posterior_sd**2 + p * (1 - p) / len(stars))
            print(f"{level} {category} stars: predicted {p:.3f}, observed {share:.3f} "
                  f"({(share - p) / spread:+.2f} SD)")
            assert abs(share - p) <= 3.3 * spread, (level, category, p, share)
            pooled.setdefault(category, []).append((len(stars), p, share))
    # all councils together (the types weighted by their counts): a sharper check
    for category, parts in pooled.items():
        n = np.array([m for m, _, _ in parts])
        p = float(np.dot(n, [q for _, q, _ in parts]) / n.sum())
        share = float(np.dot(n, [s for _, _, s in parts]) / n.sum())
        spread = np.sqrt(p * (1 - p) / n.sum())
        print(f"all types, {category} stars: predicted {p:.3f}, observed {share:.3f} "
              f"({(share - p) / spread:+.2f} binomial SD)")
        assert abs(share - p) <= 3.3 * spread, (category, p, share)


def test_the_joint_models_figure_shows_the_awarded_stars_too():
    """model=joint: the same regime floor, the class mixture summed (shares 0.3 / 0.7)."""
    from types import SimpleNamespace

    from models.joint.figures import strategy_probabilities as joint_probabilities

    cuts, gamma, shares, tau = np.array([-2.0, -0.5, 1.5]), np.array([0.0, 0.8]), np.array([0.3, 0.7]), 0.2
    point = {"cutpoints": (cuts, ("cutpoint",)), "class_effects": (gamma, ("class",)),
             "class_shares": (shares, ("class",)), "year_effect": (np.array([-tau, tau]), ("year",)),
             "org_sd": (np.zeros(1), ("org_coef",)), "beta": (np.array([1.0]), ("effect",))}
    data = {name: (("chain", "draw", *dims), np.broadcast_to(v, (1, 2, *v.shape))) for name, (v, dims) in point.items()}
    posterior = xr.Dataset(data, coords={"chain": [0], "draw": [0, 1], "year": ["2006", "2007"],
                                         "effect": ["strategy_type[prospector]"], "org_coef": ["Intercept"]})
    model = SimpleNamespace(figure_year=2007, lowest_stars={2006: 1, 2007: 1}, link="logit",
                            reference={"strategy_type": "defender"})
    prep = SimpleNamespace(design=SimpleNamespace(categories=("0", "1", "2", "3")), types=[])
    table = joint_probabilities(model, xr.DataTree.from_dict({"posterior": posterior}), prep)
    for level in TYPES:
        part = table[table["strategy_type"] == level]
        assert list(part["stars"]) == ["1", "2", "3"] and part["mean"].sum() == pytest.approx(1.0, abs=1e-12)
        eta = (1.0 if level == "prospector" else 0.0) + tau + gamma
        cum = np.column_stack([np.zeros(2), np.zeros(2), stats.logistic.cdf(cuts[1:] - eta[:, None]), np.ones(2)])
        np.testing.assert_allclose(part["mean"], shares @ np.diff(cum, axis=1)[:, 1:], rtol=1e-10)

"""Levels of the hierarchy (issue 13, item 3): region effects in the synthetic study,
``model.groups`` in the ordinal model, the variance shares.

Fast: the recorded experiments' data are byte-identical to main's (their expected.json
hashes), ``region_sd = 0`` draws today's tables and a region effect changes the ratings
only, the truth's council effect is region + within-region, ``region_sd > org_sd`` is
refused, the designs and graphs get one intercept vector and SD per level, and the
variance-share arithmetic on known draws. Slow: recovery of the region and council SDs.
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, compose_config
from helpers_study import synthetic_config
from hydra.utils import instantiate

from carestar.design import RegressionDesign
from carestar.errors import ConfigError
from carestar.study import TABLES
from carestar.study_design import ratings_design
from carestar.synthetic import load_synthetic
from carestar.variance_shares import level_labels, of_posterior, shares, table
from models.ordinal import OrdinalModel

EXPERIMENTS = ("figure1", "figure2", "figure4", "drivers", "three_step")
PREDICTORS = ["strategy_type", "spend_per_head"]


@cache
def study(seed: int = 5, region_sd: float | None = None):
    cfg = synthetic_config(seed)
    if region_sd is not None:
        cfg["ratings"] = {**cfg["ratings"], "region_sd": region_sd}
    return load_synthetic(**cfg)


def recorded_hashes():
    for name in EXPERIMENTS:
        spec = json.loads((ROOT / "experiments" / name / "expected.json").read_text())
        for entry in spec["data_hashes"]["hashes"]:
            yield name, entry["overrides"], entry["data_hash"]


def test_recorded_experiments_keep_their_data():
    """task=reproduce's data-hash check would pass: every experiment's study, composed as its
    yaml says today, has the hash main made before region effects existed."""
    made = {}
    checked = 0
    for name, overrides, recorded in recorded_hashes():
        cfg = compose_config(f"experiment={name}", *overrides)
        assert cfg.data.ratings.region_sd == 0, name
        key = json.dumps(dict(cfg.data), sort_keys=True, default=str)
        if key not in made:
            made[key] = instantiate(cfg.data).data_hash
        assert made[key] == recorded, f"experiment={name} {overrides}: data changed"
        checked += 1
    assert checked >= 20  # figure1, figure2, figure4, drivers and 16 three_step seeds
    regions = instantiate(compose_config("data.ratings.region_sd=0.3").data)
    assert regions.truth["ratings"]["region_sd"] == 0.3
    assert regions.data_hash != next(recorded_hashes())[2]  # region effects change the data


def test_region_effects_change_the_ratings_only():
    """Their own random stream: every other table, and the resources behind the ratings, as
    with region_sd = 0; the ratings differ."""
    without, with_regions = study(5, 0.0), study(5, 0.6)
    for name in TABLES:
        if name != "ratings":
            pd.testing.assert_frame_equal(getattr(without, name), getattr(with_regions, name))
    assert not without.ratings["stars"].equals(with_regions.ratings["stars"])
    assert set(without.truth["ratings"]["region_effects"].values()) == {0.0}


def test_council_effect_is_region_plus_within_region():
    truth = study(5, 0.6).truth["ratings"]
    orgs = study(5, 0.6).organisations.set_index("org")
    assert truth["org_within_region_sd"] == pytest.approx(np.sqrt(0.8**2 - 0.6**2))
    assert set(truth["region_effects"]) == set(orgs.loc[orgs["country"] == "England", "region"])
    assert "Northern Ireland" not in truth["region_effects"]  # its trusts are not rated
    for org, effect in truth["org_effects"].items():
        region = truth["region_effects"][orgs.loc[org, "region"]]
        assert effect == pytest.approx(region + truth["org_within_region_effects"][org], abs=1e-12)
    within = np.array(list(truth["org_within_region_effects"].values()))
    assert 0.4 < within.std() < 0.65  # 150 draws from N(0, 0.53)


@pytest.mark.parametrize("bad", [0.81, -0.1])
def test_region_sd_outside_org_sd_is_refused(bad):
    cfg = synthetic_config(1)
    cfg["ratings"] = {**cfg["ratings"], "region_sd": bad}
    with pytest.raises(ConfigError, match=r"region_sd=.* must lie in \[0, data.ratings.org_sd=0.8\]"):
        load_synthetic(**cfg)


@pytest.mark.parametrize("groups", [["org", "nation"], "region", ["org", "org"]])
def test_unknown_or_repeated_level_is_refused(groups):
    with pytest.raises(ConfigError, match="model.groups"):
        OrdinalModel(groups=groups)


def test_design_has_one_term_per_level():
    s = study(5, 0.6)
    d = ratings_design(s, PREDICTORS, {}, groups=["org", "region", "org_type"])
    assert [t.group.name for t in d.groups] == ["org", "region", "org_type"]
    assert [len(t.group.levels) for t in d.groups] == [150, 9, 4]
    region_of = s.organisations.set_index("org")["region"]
    region = d.groups[1].group
    assert (np.array(region.levels)[region.codes] == d.rows["org"].map(region_of).to_numpy()).all()
    one_year = ratings_design(s, PREDICTORS, {}, year=2007, groups=["org", "region"])
    assert [t.group.name for t in one_year.groups] == ["region"]  # one rating per council: no org term
    assert ratings_design(s, PREDICTORS, {}).groups[0].group.name == "org"  # the default, as before


def test_graph_has_an_intercept_vector_and_sd_per_level():
    s = study(5, 0.6)
    model = OrdinalModel(predictors=PREDICTORS, groups=["org", "region"], lowest_stars={2006: 1, 2007: 1, 2008: 1})
    graph = model.build(model.prepare(s))
    dims = graph.named_vars_to_dims
    assert dims["region_z"] == ("region", "region_coef") and dims["org_z"] == ("org", "org_coef")
    assert dims["region_sd"] == ("region_coef",) and len(graph.coords["region"]) == 9
    panels = {p.title: p.var_names for p in model.forest_panels(model.prepare(s))}
    assert panels["Group SDs"] == ("org_sd", "region_sd")


def test_variance_share_arithmetic_on_known_draws():
    """Two draws: shares are sd^2 over sum sd^2 + pi^2/3 (logit), or + 1 (probit)."""
    sd = {"region": np.array([0.5, 0.0]), "org": np.array([1.0, 2.0])}
    variance, share = shares(sd, "logit")
    e = np.pi**2 / 3
    np.testing.assert_allclose(share["region"], [0.25 / (1.25 + e), 0.0])
    np.testing.assert_allclose(share["org"], [1 / (1.25 + e), 4 / (4 + e)])
    np.testing.assert_allclose(share["residual"], [e / (1.25 + e), e / (4 + e)])
    _, probit = shares(sd, "probit")
    np.testing.assert_allclose(probit["org"], [1 / 2.25, 4 / 5])
    labels = level_labels(["org", "region"], panel=True)
    t = table(sd, "logit", labels).set_index("level")
    assert t.loc["org", "variance_of"] == "between councils within regions"
    assert t.loc["residual", "variance_of"] == "within councils over years"
    assert list(t.index) == ["region", "org", "residual"]  # outer levels first
    assert t["share_mean"].sum() == pytest.approx(1.0)
    assert t.loc["org", "variance_mean"] == pytest.approx(2.5)
    assert t.loc["org", "share_q05"] <= t.loc["org", "share_mean"] <= t.loc["org", "share_q95"]


def test_variance_shares_of_a_posterior():
    """From posterior draws laid out as the model stores them; None where they do not apply."""
    import xarray as xr

    d = ratings_design(study(5, 0.6), PREDICTORS, {}, groups=["org", "region"])
    draws = np.array([[0.4, 0.6, 0.5]])  # (chain, draw)
    post = xr.Dataset({f"{g}_sd": (("chain", "draw", f"{g}_coef"), (k + 1) * draws[..., None])
                       for k, g in enumerate(["org", "region"])})
    t = of_posterior(post, d, "logit", "cumulative").set_index("level")
    assert t.loc["region", "variance_mean"] == pytest.approx(np.mean((2 * draws) ** 2))
    assert t.loc["org", "parameter"] == "org_sd^2"
    assert of_posterior(post, d, "logit", "acat") is None
    no_groups = RegressionDesign(outcome="stars", y=d.y, X=d.X)
    assert of_posterior(post, no_groups, "logit", "cumulative") is None


@pytest.mark.slow
def test_region_and_council_sds_are_recovered():
    """Synthetic study with region_sd 0.6 (within-region SD 0.53), model.groups=[org,region]:
    each true SD inside its 90% interval. Seed 201 chosen before any fit (do not change).
    First run (2 x 400 + 400 draws, 30 s): region_sd 0.611 (0.345, 0.992), truth 0.6; org_sd
    0.566 (0.386, 0.746), truth 0.529."""
    from carestar import diagnostics as diag
    from carestar.sampling import sample

    s = study(201, 0.6)
    truth = s.truth["ratings"]
    model = OrdinalModel(predictors=["strategy_type", "spend_per_head", "deprivation", "older_share",
                                     "local_measures_use", "processes_used"],
                         groups=["org", "region"], lowest_stars={2006: 1, 2007: 1, 2008: 1})
    design = model.prepare(s)
    sampler = {"name": "pymc", "nuts_sampler": "pymc", "draws": 400, "tune": 400, "chains": 2,
               "cores": 2, "target_accept": 0.9, "progressbar": False, "posterior_predictive": False}
    idata = sample(model.build(design), sampler, seed=201)
    post = idata.posterior
    assert diag.summary(idata, ["region_sd", "org_sd"])["r_hat"].max() < 1.05  # the chains agree
    for name, true in (("region_sd", truth["region_sd"]), ("org_sd", truth["org_within_region_sd"])):
        draws = post[name].values.ravel()
        low, high = np.quantile(draws, [0.05, 0.95])
        print(f"{name}: truth {true:.3f}, posterior mean {draws.mean():.3f}, 90% ({low:.3f}, {high:.3f})")
        assert low <= true <= high, name
    t = of_posterior(post, design, "logit", "cumulative")
    assert set(t["level"]) == {"org", "region", "residual"}


def test_study_folder_keeps_the_levels_and_the_truth(tmp_path):
    """data=study: a written study loads back with its regions as levels, and truth.json
    holds the region effects."""
    from carestar.study_files import load_study, write_study

    s = study(5, 0.6)
    loaded = load_study(str(write_study(s, tmp_path / "study")))
    assert loaded.truth["ratings"]["region_effects"] == s.truth["ratings"]["region_effects"]
    d = OrdinalModel(predictors=PREDICTORS, groups=["region", "org_type", "org"]).prepare(loaded)
    assert [(t.group.name, len(t.group.levels)) for t in d.groups] == [("region", 9), ("org_type", 4), ("org", 150)]
    assert level_labels(["region", "org_type", "org"], panel=True)["org"] == (
        "between councils within regions and council types")

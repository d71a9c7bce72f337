"""The synthetic study: reproducible, structured as documented, calibrated to the counts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers_study import synthetic_config, synthetic_study

from carestar.calibration import calibrate, expected_proportions, latent_quantiles
from carestar.errors import ConfigError
from carestar.synthetic import JUDGEMENT_STARS, SyntheticParams, load_synthetic


@pytest.fixture(scope="module")
def study():
    return synthetic_study(1)


@pytest.fixture(scope="module")
def params():
    return SyntheticParams.from_config(synthetic_config())


@pytest.fixture(scope="module")
def calibration(params):
    return calibrate(params)


def test_same_seed_same_study_other_seed_other_study(study):
    again = load_synthetic(**synthetic_config(1))
    assert again.data_hash == study.data_hash
    assert again.truth == study.truth
    assert synthetic_study(2).data_hash != study.data_hash


def test_organisations(study):
    orgs = study.organisations
    england = orgs[orgs["country"] == "England"]
    assert len(england) == 150
    assert england["org_type"].value_counts().to_dict() == {
        "shire county": 34, "metropolitan district": 36, "London borough": 33, "unitary": 47}
    assert england["region"].nunique() == 9
    assert set(england.loc[england["org_type"] == "London borough", "region"]) == {"London"}
    ni = orgs[orgs["country"] == "Northern Ireland"]
    assert list(ni["org"]) == ["N01", "N02", "N03", "N04", "N05"]
    assert set(ni["org_type"]) == {"HSC trust"}


def test_ratings_every_council_every_year_with_floor(study):
    ratings = study.ratings
    assert len(ratings) == 1050
    assert ratings.groupby("year")["org"].nunique().eq(150).all()
    assert ratings.loc[ratings["year"] >= 2006, "stars"].min() >= 1
    pairs = zip(ratings["serving_people"], ratings["capacity"], ratings["stars"])
    assert all(JUDGEMENT_STARS[(s, c)] == k for s, c, k in pairs)


def test_resources_plausible(study):
    res = study.resources
    assert len(res) == 1050
    assert res["spend_per_head"].between(100, 1000).all()
    assert res["older_share"].between(5, 30).all()
    assert res["deprivation"].between(3, 80).all()
    # organisation-level values with small year drift: within-org SD << between-org SD
    within = res.groupby("org")["deprivation"].std().mean()
    assert within < 0.2 * res["deprivation"].std()
    assert res[["spend_per_head", "deprivation"]].corr().iloc[0, 1] > 0.2


def test_strategy_and_practice_tables(study):
    strategy = study.strategy
    assert len(strategy) == 155
    shares = strategy["strategy_type"].value_counts(normalize=True)
    assert shares["analyser"] > shares["reactor"]
    # a type raises its own stance
    own = strategy.groupby("strategy_type")["prospector_1"].mean()
    assert own["prospector"] == own.max()
    practice = study.local_practice
    assert (practice["degree_of_use"].isna() ^ practice["used"].isna()).all()
    full = 155 * 12
    assert 0.01 < 1 - len(practice) / full < 0.06
    micro = study.micro_measures.merge(study.organisations, on="org")
    rate = micro.groupby("country")["used"].mean()
    assert rate["Northern Ireland"] > rate["England"]


def test_truth_is_json_and_states_the_drivers(study):
    truth = json.loads(json.dumps(study.truth))
    assert truth == study.truth
    r = truth["ratings"]
    assert r["strongest_driver"] == "strategy_type=prospector"
    strategy = [abs(v) for k, v in r["strategy_effects"].items() if k != "defender"]
    resources = [abs(v) for v in r["resource_effects_per_sd"].values()]
    assert r["strategy_effects"]["prospector"] == max(strategy)
    assert max(resources) < min(strategy)
    for res, scale in r["resource_standardisation"].items():
        assert r["resource_effects_per_unit"][res] == pytest.approx(
            r["resource_effects_per_sd"][res] / scale["sd"])
        assert scale["mean"] == pytest.approx(study.resources[res].mean())
    assert abs(sum(r["year_effects"].values())) < 1e-9
    assert set(truth["local_practice"]["class_of_org"]) == set(study.organisations["org"])


def test_yaml_cutpoints_are_the_calibrated_ones(params, calibration):
    # the yaml holds the calibration rounded to 4 decimals; BFGS converges far tighter
    assert calibration.cutpoints == pytest.approx(params.ratings.cutpoints, abs=2e-3)
    got = [calibration.year_effects[y] for y in params.ratings.years]
    want = [params.ratings.year_effects[y] for y in params.ratings.years]
    assert got == pytest.approx(want, abs=2e-3)


def test_expected_counts_match_published(calibration):
    # Measured: deviance 9.69, max |expected - published| 8.7 councils (2002, 1 star).
    # 9 numbers fit 18 free proportions, so 9 df remain: a deviance near 9 is what binomial
    # noise in the published counts alone gives (chi2(9) 95% point 16.9), and 8.7 councils
    # is 1.5 binomial SDs of a 150-council count (SD ~6 at p = 0.5). Tolerances leave a
    # little room for a re-tune of the effects without hiding a broken calibration.
    assert calibration.deviance < 12.0
    assert calibration.max_abs_difference < 10.0
    assert calibration.expected.sum(axis=1).to_numpy() == pytest.approx(np.full(7, 150.0))


def test_simulated_counts_consistent_with_expected(params, calibration):
    years = params.ratings.years
    lowest = [params.ratings.lowest_stars_by_year.get(y, 0) for y in years]
    p = expected_proportions(latent_quantiles(params, replicates=40, seed=5),
                             params.ratings.cutpoints,
                             [params.ratings.year_effects[y] for y in years], lowest)
    for seed in (1, 2):
        counts = (synthetic_study(seed).ratings.groupby("year")["stars"].value_counts()
                  .unstack(fill_value=0).reindex(columns=range(4), fill_value=0)
                  .loc[years].to_numpy())
        sd = np.sqrt(150 * p * (1 - p))
        # each year x star count is Binomial(150, p): councils are independent given the
        # parameters; summed over years the SDs add at most (perfect correlation)
        assert np.all(np.abs(counts - 150 * p) <= 4 * sd + 1)
        assert np.all(np.abs(counts.sum(0) - 150 * p.sum(0)) <= 3 * sd.sum(0) + 1)


def test_bad_parameters_are_config_errors():
    cfg = synthetic_config()
    cfg["ratings"] = {**cfg["ratings"], "cutpoints": [1.0, 0.0, 2.0]}
    with pytest.raises(ConfigError, match="cutpoints"):
        load_synthetic(**cfg)
    cfg = synthetic_config()
    cfg["strategy"] = {**cfg["strategy"], "unknown_knob": 1}
    with pytest.raises(ConfigError, match="unknown_knob"):
        load_synthetic(**cfg)


def test_hydra_instantiates_the_yaml_with_the_top_level_seed(study):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from helpers_study import SYNTHETIC_YAML

    cfg = OmegaConf.create({"seed": 1, "data": OmegaConf.load(SYNTHETIC_YAML)})
    assert instantiate(cfg.data).data_hash == study.data_hash

"""The synthetic micro-level measures: the generator agrees with the truth it saves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers_study import synthetic_config

from carestar.errors import ConfigError
from carestar.micro_measures import draw_micro_measures, prevalence
from carestar.synthetic import SyntheticParams


@pytest.fixture(scope="module")
def micro_params():
    return SyntheticParams.from_config(synthetic_config()).micro_measures


def test_prevalence_averages_the_organisation_effect_out():
    rng = np.random.default_rng(3)
    u = rng.normal(0.0, 0.6, size=2_000_000)
    for logit in (-1.0, 0.4, 2.0):
        by_monte_carlo = (1 / (1 + np.exp(-(logit + u)))).mean()
        assert prevalence(np.array(logit), 0.6) == pytest.approx(by_monte_carlo, abs=1e-3)


def test_shares_of_many_organisations_match_the_saved_prevalences(micro_params):
    n = 20_000  # per country: the shares' SE is below 0.004
    organisations = pd.DataFrame({"org": [f"O{i}" for i in range(2 * n)],
                                  "country": ["England"] * n + ["Northern Ireland"] * n})
    table, truth = draw_micro_measures(5, organisations, micro_params)
    shares = (table.merge(organisations, on="org").assign(used=lambda d: d["used"].astype(float))
              .groupby(["country", "measure"])["used"].mean())
    for country, by_measure in truth["prevalence"].items():
        for measure, expected in by_measure.items():
            assert shares[(country, measure)] == pytest.approx(expected, abs=0.02), (country, measure)
    kinds = truth["difference_by_kind"]
    assert kinds["internal"] > kinds["national"] + 0.15  # Northern Ireland: more internal-management measures


def test_a_kind_without_a_country_difference_is_a_config_error(micro_params):
    from dataclasses import replace

    bad = replace(micro_params, country_difference={"national": 0.0})
    with pytest.raises(ConfigError, match="country_difference needs a value for every kind"):
        bad.check()

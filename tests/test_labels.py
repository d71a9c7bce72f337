"""Wording of tables and reports (issue 17, item 3): one interval width, 90% as in
summary.csv and the README, everywhere; a number and its noun agreeing."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from carestar.report import count
from models.binomial import coefficient_table


def test_binomial_coefficients_have_the_90_percent_interval():
    draws = np.random.default_rng(0).normal(0.0, 1.0, size=(4, 5000))
    post = xr.Dataset({"intercept": (("chain", "draw"), draws),
                       "beta": (("chain", "draw", "effect"), draws[..., None] * 2 + 1),
                       "effect": ["x"]})
    table = coefficient_table(xr.DataTree.from_dict({"posterior": post}))
    assert list(table.columns) == ["mean", "sd", "q5", "q95"]
    # N(0, 1): the 90% interval is +-1.645 (was 3% / 97%: +-1.881)
    assert table.loc["intercept", "q5"] == pytest.approx(-1.645, abs=0.05)
    assert table.loc["intercept", "q95"] == pytest.approx(1.645, abs=0.05)
    assert table.loc["beta[x]", "q95"] == pytest.approx(1 + 2 * 1.645, abs=0.1)


def test_a_number_and_its_noun_agree():
    assert count(1, "class", "classes") == "1 class"
    assert count(3, "class", "classes") == "3 classes"
    assert count(1, "observation") == "1 observation" and count(0, "observation") == "0 observations"

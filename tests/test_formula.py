"""carestar.formula.formula_design: formulae designs with R's contrasts, and early errors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from carestar.errors import ConfigError, DataError
from carestar.formula import formula_design, r_name, split_trials
from carestar.tidy_csv import load_csv

REF = Path(__file__).parent / "data" / "reference"


def table(tmp_path, text, **kw):
    p = tmp_path / "d.csv"
    p.write_text(text)
    return load_csv(p, **kw)


@pytest.fixture(scope="module")
def housing():
    return load_csv(REF / "housing.csv", weights="Freq", levels={"Sat": ["Low", "Medium", "High"]})


def test_housing_matches_r_columns(housing):
    d = formula_design(housing, "Sat ~ Infl + Type + Cont", "ordinal")
    assert d.effects == [
        "InflMedium", "InflHigh", "TypeApartment", "TypeAtrium", "TypeTerrace", "ContHigh"
    ]
    assert d.intercept is False and d.categories == ("Low", "Medium", "High")
    assert d.y[:3].tolist() == [0, 1, 2]
    assert d.weights is not None and d.weights.sum() == 1681
    assert d.rows["line"].iloc[0] == 2


def test_levels_config_sets_reference(tmp_path, housing):
    t = load_csv(
        REF / "housing.csv",
        weights="Freq",
        levels={"Sat": ["Low", "Medium", "High"], "Infl": ["High", "Low", "Medium"]},
    )
    d = formula_design(t, "Sat ~ Infl", "ordinal")
    assert d.effects == ["InflLow", "InflMedium"]


def test_interaction_and_slopes_names(housing):
    d = formula_design(housing, "Sat ~ Infl * Cont + (Cont|Type)", "ordinal")
    assert "InflMedium:ContHigh" in d.effects
    (g,) = d.groups
    assert g.group.name == "Type" and g.intercept and list(g.slopes.columns) == ["ContHigh"]
    assert g.group.levels[g.group.codes[0]] == "Tower"
    assert np.array_equal(g.slopes["ContHigh"].to_numpy(), d.X["ContHigh"].to_numpy())


def test_cbpp_binomial_with_trials_and_group():
    t = load_csv(REF / "cbpp.csv")
    d = formula_design(t, "incidence | trials(size) ~ C(period) + (1|herd)", "binomial")
    assert d.effects == ["period2", "period3", "period4"] and d.intercept is True
    assert d.trials is not None and d.trials[0] == 14 and d.y[0] == 2
    (g,) = d.groups
    assert g.group.name == "herd" and len(g.group.levels) == 15 and g.slopes is None
    # numeric period without C() is a slope; listed in data.levels it is a factor
    assert formula_design(t, "incidence | trials(size) ~ period", "binomial").effects == ["period"]
    t2 = load_csv(REF / "cbpp.csv", levels={"period": [1, 2, 3, 4]})
    assert formula_design(t2, "incidence | trials(size) ~ period", "binomial").effects == [
        "period2", "period3", "period4"
    ]


def test_bernoulli_outcome(tmp_path):
    t = table(tmp_path, "y,x\n1,0.5\n0,1.5\n1,2\n")
    d = formula_design(t, "y ~ x", "binomial")
    assert d.trials is None and d.y.tolist() == [1, 0, 1] and d.effects == ["x"]
    t = table(tmp_path, "y,x\nyes,0.5\nno,1.5\n", levels={"y": ["no", "yes"]})
    assert formula_design(t, "y ~ x", "binomial").y.tolist() == [1, 0]


def test_helpers():
    assert split_trials("y | trials(n) ~ x") == ("y ~ x", "n")
    assert split_trials("y | trials(10) ~ x") == ("y ~ x", 10)
    assert r_name("C(period)[2]") == "period2"
    assert r_name("Infl[Medium]:Cont[High]") == "InflMedium:ContHigh"
    assert r_name("temp") == "temp"


# --- errors, each before any sampling ---------------------------------------------


def test_unknown_column_lists_columns_and_suggests(housing):
    with pytest.raises(DataError, match="'Infll'") as e:
        formula_design(housing, "Sat ~ Infll + Type", "ordinal")
    assert "did you mean 'Infl'" in str(e.value) and "Cont" in str(e.value)


def test_outcome_level_not_listed(tmp_path):
    t = table(tmp_path, "y,x\nlow,1\nhigh,2\nmid,3\nhuge,4\n", levels={"y": ["low", "mid", "high"]})
    with pytest.raises(DataError, match="huge") as e:
        formula_design(t, "y ~ x", "ordinal")
    assert e.value.rows == [5] and e.value.column == "y"


def test_text_ordinal_outcome_needs_levels(tmp_path):
    t = table(tmp_path, "y,x\nlow,1\nhigh,2\n")
    with pytest.raises(ConfigError, match="data.levels.y"):
        formula_design(t, "y ~ x", "ordinal")


def test_numeric_ordinal_outcome_in_numeric_order(tmp_path):
    t = table(tmp_path, "y,x\n3,1\n1,2\n2,3\n")
    d = formula_design(t, "y ~ x", "ordinal")
    assert d.categories == ("1", "2", "3") and d.y.tolist() == [2, 0, 1]


def test_one_category_only(tmp_path):
    t = table(tmp_path, "y,x\n2,1\n2,2\n")
    with pytest.raises(DataError, match="one category only"):
        formula_design(t, "y ~ x", "ordinal")
    t = table(tmp_path, "y,x\n1,1\n1,2\n")
    with pytest.raises(DataError, match="one category only"):
        formula_design(t, "y ~ x", "binomial")


def test_non_numeric_in_numeric_predictor(tmp_path):
    t = table(tmp_path, "y,x\n1,0.5\n0,1.5\n1,abc\n0,2\n")
    with pytest.raises(DataError, match="non-numeric") as e:
        formula_design(t, "y ~ x", "binomial")
    assert e.value.rows == [4] and e.value.column == "x"


def test_missing_values_error_then_dropna(tmp_path, caplog):
    text = "y,x,g\n1,0.5,a\n0,,a\n0,2,b\n0,3,\n1,1,b\n"
    with pytest.raises(DataError, match="2 row") as e:
        formula_design(table(tmp_path, text), "y ~ x + (1|g)", "binomial")
    assert e.value.rows == [3, 5] and "data.dropna=true" in str(e.value)
    with caplog.at_level(logging.WARNING, logger="carestar.formula"):
        d = formula_design(table(tmp_path, text, dropna=True), "y ~ x + (1|g)", "binomial")
    assert d.n == 3 and d.rows["line"].tolist() == [2, 4, 6]
    assert "dropped 2 of 5 rows" in caplog.text


def test_formula_does_not_parse(housing):
    for bad in ["Sat ~ Infl +", "Sat ~ f(Infl", "Sat Infl", "~ Infl"]:
        with pytest.raises(ConfigError, match="does not parse"):
            formula_design(housing, bad, "ordinal")


def test_ordinal_without_intercept_refused(housing):
    with pytest.raises(ConfigError, match="intercept"):
        formula_design(housing, "Sat ~ 0 + Infl", "ordinal")


def test_binomial_counts_checked(tmp_path):
    t = table(tmp_path, "s,n,x\n3,2,1\n1,4,2\n")
    with pytest.raises(DataError, match="more successes than trials") as e:
        formula_design(t, "s | trials(n) ~ x", "binomial")
    assert e.value.rows == [2]

"""The default priors of the regression models (carestar.priors), checked without sampling.

- They do not depend on the reference level of a factor, nor on the units of a numeric
  predictor: two codings of the same data give the same log posterior density at
  corresponding parameters (before: the cutpoint prior sat at the reference cell, and an
  effect's Normal(0, 1) was in the predictor's raw units).
- A constant predictor is refused; separation is detected and named; the log says how each
  predictor was standardised.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from carestar.errors import ConfigError, DataError
from carestar.mode import ONE_SHOT, python_only
from carestar.separation import separated_effects
from carestar.tidy_csv import load_csv
from models.binomial import BinomialModel
from models.ordinal import OrdinalModel

REF = Path(__file__).parent / "data" / "reference"


def log_density(model, point: dict) -> float:
    """The model's whole log density (priors, Jacobians and likelihood) at a value point."""
    with python_only():
        return float(model.compile_logp(mode=ONE_SHOT)(point))


def test_prior_does_not_depend_on_the_reference_level():
    """Wine with temp's reference cold, or warm: at corresponding points (the temp effect's
    sign flipped, everything else equal: the cutpoints' prior is at the average row, which
    does not move) the log densities are equal."""
    model = OrdinalModel(formula="rating ~ temp + contact")
    cold = model.prepare(load_csv(REF / "wine.csv", levels={"temp": ["cold", "warm"]}))
    warm = model.prepare(load_csv(REF / "wine.csv", levels={"temp": ["warm", "cold"]}))
    assert cold.effects == ["tempwarm", "contactyes"] and warm.effects == ["tempcold", "contactyes"]
    a, b = model.build(cold), model.build(warm)
    rng = np.random.default_rng(1)
    for _ in range(3):
        point = {k: v + rng.normal(0, 0.5, np.shape(v)) for k, v in a.initial_point().items()}
        flipped = {**point, "beta_per_sd": point["beta_per_sd"] * np.array([-1.0, 1.0])}
        assert log_density(a, point) == pytest.approx(log_density(b, flipped), rel=1e-12)


def test_prior_does_not_depend_on_the_units_of_a_predictor(tmp_path):
    """Spending in pounds or in thousands of pounds, mean 50,000: one point, one density,
    and effects per unit 1000 times apart (before, Normal(0, 1) per pound)."""
    rng = np.random.default_rng(2)
    x = rng.normal(50_000, 8_000, 60)
    pd.DataFrame({"y": rng.integers(0, 2, 60), "pounds": x, "thousands": x / 1000}).to_csv(tmp_path / "d.csv", index=False)
    table = load_csv(tmp_path / "d.csv")
    designs = [BinomialModel(f"y ~ {name}").prepare(table) for name in ("pounds", "thousands")]
    models = [BinomialModel("y ~ x").build(design) for design in designs]
    point = {"beta_per_sd": np.array([0.4]), "intercept_at_mean": np.array(-0.2)}
    assert log_density(models[0], point) == pytest.approx(log_density(models[1], point), rel=1e-12)
    with python_only():  # beta = beta_per_sd / sd: per unit of the user's column
        betas = [float(m.compile_fn(m.replace_rvs_by_values([m["beta"]])[0], inputs=m.value_vars,
                                    on_unused_input="ignore", mode=ONE_SHOT)(point)[0]) for m in models]
    assert betas[0] * 1000 == pytest.approx(betas[1], rel=1e-10)
    assert betas[0] == pytest.approx(0.4 / x.std(ddof=1), rel=1e-10)


def test_constant_predictor_is_refused(tmp_path):
    pd.DataFrame({"y": [0, 1, 1, 0, 1], "x": [2.0] * 5}).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(DataError, match=r"column 'x'.*take one value only"):
        BinomialModel("y ~ x").prepare(load_csv(tmp_path / "c.csv"))


def test_the_log_says_how_each_predictor_was_standardised(caplog):
    with caplog.at_level(logging.INFO, logger="carestar"):
        OrdinalModel(formula="rating ~ temp + contact").prepare(load_csv(REF / "wine.csv"))
    assert "tempwarm (mean 0.5, sd 0.5035)" in caplog.text and "Normal(0, 2.5 / sd_j)" in caplog.text


def test_separation_is_detected_and_named(tmp_path, caplog):
    """Every row with x = b in the top rating: the likelihood rises without bound in b's
    effect (quasi-complete separation), so the log names it; the reference data sets have none."""
    frame = pd.DataFrame({"y": [1, 2, 2, 3, 1, 3, 3, 3, 3], "x": list("aaaaabbbb"), "z": np.arange(9.0) % 4})
    frame.to_csv(tmp_path / "s.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="carestar"):
        design = OrdinalModel(formula="y ~ x + z").prepare(load_csv(tmp_path / "s.csv"))
    assert "xb" in separated_effects(design)
    assert "separation" in caplog.text and "xb" in caplog.text
    binary = pd.DataFrame({"y": [0, 0, 0, 1, 1, 1], "dose": [1.0, 2, 3, 4, 5, 6]})
    binary.to_csv(tmp_path / "b.csv", index=False)
    assert separated_effects(BinomialModel("y ~ dose").prepare(load_csv(tmp_path / "b.csv"))) == ["dose"]
    housing = load_csv(REF / "housing.csv", weights="Freq", levels={
        "Sat": ["Low", "Medium", "High"], "Infl": ["Low", "Medium", "High"],
        "Type": ["Tower", "Apartment", "Atrium", "Terrace"], "Cont": ["Low", "High"]})
    assert separated_effects(OrdinalModel(formula="Sat ~ Infl + Type + Cont").prepare(housing)) == []
    assert separated_effects(OrdinalModel(formula="rating ~ temp + contact").prepare(load_csv(REF / "wine.csv"))) == []
    cbpp = BinomialModel("incidence | trials(size) ~ C(period) + (1|herd)").prepare(load_csv(REF / "cbpp.csv"))
    assert separated_effects(cbpp) == []


def test_a_misspelt_prior_is_refused():
    with pytest.raises(ConfigError, match=r"model.priors.cutpoints.alpha is not a parameter"):
        OrdinalModel(priors={"cutpoints": {"alpha": 2.0}})
    with pytest.raises(ConfigError, match=r"nu must be > 0"):
        OrdinalModel(priors={"cutpoints": {"nu": 0}})

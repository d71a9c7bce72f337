"""Covariates and missing data as poLCA users expect (EM only, no sampling):
``data.dropna``, a missing covariate, covariate formulas (tests/data/reference/REFERENCES.md
sections 3 and 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from carestar.errors import DataError
from carestar.tidy_csv import load_csv
from models.lca import LatentClassModel, item_responses

DATA = Path(__file__).parent / "data" / "reference"
CHEAT = ["LIEEXAM", "LIEPAPER", "FRAUD", "COPYEXAM"]
NES = ["MORALG", "CARESG", "KNOWG", "LEADG", "DISHONG", "INTELG",
       "MORALB", "CARESB", "KNOWB", "LEADB", "DISHONB", "INTELB"]


def test_missing_gpa_stops_the_run_unless_dropna(caplog):
    table = load_csv(DATA / "cheating.csv")
    with pytest.raises(DataError, match="4 row") as e:
        item_responses(table, CHEAT, ["GPA"])
    assert e.value.column == "GPA" and len(e.value.rows) == 4
    with caplog.at_level("WARNING"):
        r = item_responses(load_csv(DATA / "cheating.csv", dropna=True), CHEAT, "GPA")
    assert r.n_org == 315 and "dropped 4 of 319 rows" in caplog.text


def test_cheating_gpa_coefficients_match_polca():
    """poLCA ``~ GPA``, 2 classes: log likelihood -429.6384 [P]; b0 0.1134286 (SE 0.51),
    b1 -0.8424836 (SE 0.28) [L], cheaters against non-cheaters. Tolerance 0.01 (a fiftieth
    of an SE). Ordered by use, class 1 is the non-cheaters (the reference), class 2 the
    cheaters."""
    model = LatentClassModel(n_classes=2, covariates="GPA", em_starts=5, seed=1)
    prep = model.prepare(load_csv(DATA / "cheating.csv", dropna=True))
    em = prep.em
    assert abs(em.loglik - (-429.6384)) < 0.01 and em.n_params == 10
    assert prep.coef_names == ("Intercept", "GPA")
    assert em.shares[0] > em.shares[1]  # the non-cheaters are the larger, lower-use class
    assert abs(em.coefs[1, 0] - 0.1134286) < 0.01
    assert abs(em.coefs[1, 1] - (-0.8424836)) < 0.01


def test_election_dropna_and_party_by_age_at_the_polca_maximum():
    """poLCA's ``~ PARTY*AGE`` (3 classes, na.rm = TRUE): log likelihood -16135.39 [P];
    1311 respondents answered all twelve items [P]."""
    r = item_responses(load_csv(DATA / "election.csv", dropna=True), NES, [])
    assert r.n_org == 1311
    model = LatentClassModel(n_classes=3, items=NES, covariates="PARTY * AGE", em_starts=2,
                             em_max_starts=6, seed=1, ordinal_emission=False)
    prep = model.prepare(load_csv(DATA / "election.csv", dropna=True))
    assert prep.coef_names == ("Intercept", "PARTY", "AGE", "PARTY:AGE")
    assert abs(prep.em.loglik - (-16135.39)) < 0.01


def test_categorical_covariate_treatment_contrasts():
    table = load_csv(DATA / "cheating.csv", dropna=True)
    r = item_responses(table, CHEAT, "C(GPA)")
    assert list(r.covariates.columns) == ["GPA2", "GPA3", "GPA4", "GPA5"]
    assert set(r.covariates.sum(axis=1)) <= {0.0, 1.0}

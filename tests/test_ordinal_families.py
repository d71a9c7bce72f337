"""The sratio / cratio / acat families (models/ordinal_likelihood.py): their probabilities
against the definitions, their derivatives against finite differences, and the maximum
likelihood on housing against VGAM (tests/data/reference/REFERENCES.md, housing families:
R 4.2.2, VGAM 1.1-7). Signs: acat ``c = -a, beta = b``; sratio ``c = a, beta = -b``.
VGAM's SEs come from the expected information (Fisher scoring), carestar's from the observed
information: the same for acat (canonical), up to 1.2% apart for sratio, so SEs are checked
within 2% there. Numpy only: about a second."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from test_mle import HOUSING_LEVELS, mle_of

from carestar.config_checks import check_model_choices
from carestar.errors import ConfigError
from carestar.tidy_csv import load_csv
from models.ordinal import OrdinalModel
from models.ordinal_likelihood import LINKS, category_probabilities, link_cdf, row_derivatives, row_log_likelihood

REF = Path(__file__).parent / "data" / "reference"
VGAM = {  # vglm(Sat ~ Infl + Type + Cont, family(parallel = TRUE), weights = Freq): estimate, SE
    "acat": {"loglik": -1739.96521985, "sign": 1, "cut_sign": -1, "se_rel": 0.01,
             "intercepts": [(-0.3157734, 0.0967431), (0.1836766, 0.0979520)],
             "effects": {"InflMedium": (0.3633171, 0.0679806), "InflHigh": (0.8276631, 0.0835847),
                         "TypeApartment": (-0.3698392, 0.0775229), "TypeAtrium": (-0.2245681, 0.1021569),
                         "TypeTerrace": (-0.7059686, 0.0992025), "ContHigh": (0.2389541, 0.0621819)}},
    "sratio": {"loglik": -1741.62445218, "sign": -1, "cut_sign": 1, "se_rel": 0.02,
               "intercepts": [(-0.5316505, 0.1125871), (-0.1378944, 0.1188656)],
               "effects": {"InflMedium": (-0.4902048, 0.0915056), "InflHigh": (-1.1333267, 0.1125108),
                           "TypeApartment": (0.4961504, 0.1053785), "TypeAtrium": (0.3494301, 0.1388548),
                           "TypeTerrace": (0.9576673, 0.1328126), "ContHigh": (-0.2859067, 0.0838835)}},
}


def direct(family, link, eta, c):
    F = lambda x: link_cdf(link, x)  # noqa: E731
    K = len(c) + 1
    out = np.zeros((len(eta), K))
    for i, e in enumerate(eta):
        if family in ("sratio", "cratio"):
            q = F(c - e) if family == "sratio" else 1 - F(e - c)  # P(y = k | y >= k)
            surv = 1.0
            for k in range(K - 1):
                out[i, k] = q[k] * surv
                surv *= 1 - q[k]
            out[i, K - 1] = surv
        else:
            q = F(e - c)
            out[i] = [np.prod(q[:k]) * np.prod(1 - q[k:]) for k in range(K)]
            out[i] /= out[i].sum()
    return out


@pytest.mark.parametrize("family", ["sratio", "cratio", "acat"])
@pytest.mark.parametrize("link", LINKS)
def test_probabilities_follow_the_definitions_and_the_regime_floor(family, link):
    rng = np.random.default_rng(1)
    eta, cut = rng.normal(0, 2, 7), np.array([-1.0, 0.3, 0.1])  # unordered: allowed here
    low = np.array([0, 1, 2, 0, 1, 1, 0])
    expected = direct(family, link, eta, cut)
    assert np.allclose(category_probabilities(link, eta, cut, family=family), expected, atol=1e-12)
    floored = expected.copy()
    for i, lowest in enumerate(low):
        floored[i, :lowest] = 0
        floored[i] /= floored[i].sum()
    assert np.allclose(category_probabilities(link, eta, cut, low, family=family), floored, atol=1e-12)
    for i in range(7):  # the floor is c = -inf below it, as in the cumulative family
        minus_inf = np.where(np.arange(3) < low[i], -np.inf, cut)
        assert np.allclose(category_probabilities(link, eta[i:i + 1], minus_inf, family=family), floored[i], atol=1e-12)
    y = np.maximum([0, 1, 3, 2, 3, 1, 0], low)
    l, d1, d2 = row_derivatives(link, eta, cut, y, low, family)
    h = 1e-5
    up, down = (row_log_likelihood(link, eta + s, cut, y, low, family) for s in (h, -h))
    assert np.allclose(l, np.log(floored[np.arange(7), y]))
    assert np.allclose(d1, (up - down) / (2 * h), atol=1e-6)
    assert np.allclose(d2, (up - 2 * l + down) / h**2, atol=1e-3)


@pytest.mark.parametrize("family", ["acat", "sratio", "cratio"])
def test_housing_maximum_matches_vgam(family):
    table = load_csv(REF / "housing.csv", weights="Freq", levels=HOUSING_LEVELS)
    result = mle_of(OrdinalModel(family=family, formula="Sat ~ Infl + Type + Cont"), table)
    ref = VGAM["sratio" if family == "cratio" else family]  # logit: brms's cratio is brms's sratio
    assert result.converged
    assert result.loglik == pytest.approx(ref["loglik"], abs=1e-3)
    rows = [(f"beta[{name}]", ref["sign"] * est, se) for name, (est, se) in ref["effects"].items()]
    rows += [(f"cutpoints[{label}]", ref["cut_sign"] * est, se)
             for label, (est, se) in zip(["Low|Medium", "Medium|High"], ref["intercepts"])]
    for name, estimate, se in rows:
        row = result.table.loc[name]
        assert abs(row["estimate"] - estimate) < 0.01 * se, name
        assert row["se"] == pytest.approx(se, rel=ref["se_rel"]), name


def test_an_unknown_family_is_refused_by_the_config_checks():
    model = OmegaConf.create({"_target_": "models.ordinal.OrdinalModel", "family": "stopping", "link": "logit"})
    with pytest.raises(ConfigError, match="model.family='stopping' is refused: expected one of cumulative, sratio"):
        check_model_choices(model)
    check_model_choices(OmegaConf.create({**model, "family": "acat"}))


"""Reference check: MASS::polr on the Copenhagen housing data (REFERENCES.md section 1).

polr(Sat ~ Infl + Type + Cont, weights = Freq, data = housing), logit and probit, through
``data=csv`` + a formula. polr's convention ``logit P(Y <= k) = zeta_k - eta`` is the
ordinal model's (a positive effect moves mass up); its cutpoints are named ``Low|Medium``,
``Medium|High`` as here.

- posterior means within 0.2 posterior SD of the polr estimates (effects prior sigma 10,
  Dirichlet(1) cutpoints: weak);
- the log likelihood at the posterior mode (``carestar.mode.fit_map``: the MLE, as the
  Dirichlet(1) density is flat and the effects' prior wide) within 0.05 of polr's
  -1739.5746 (logit) and -1739.8444 (probit); no multinomial constant on either side.

Sampling: 4 chains x 500 / 500 on 1 core per link.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pymc as pm
import pytest

from carestar.mode import fit_map, log_likelihood_at, point_from_posterior
from carestar.tidy_csv import load_csv
from models.ordinal import OrdinalModel

pytestmark = pytest.mark.slow

REF = Path(__file__).parent / "data" / "reference"
POLR = {
    "logit": {
        "InflMedium": 0.5663937, "InflHigh": 1.2888191, "TypeApartment": -0.5723501,
        "TypeAtrium": -0.3661866, "TypeTerrace": -1.0910149, "ContHigh": 0.3602841,
        "Low|Medium": -0.4961353, "Medium|High": 0.6907083, "loglik": -1739.5746,
    },
    "probit": {
        "InflMedium": 0.3464227, "InflHigh": 0.7829142, "TypeApartment": -0.3475368,
        "TypeAtrium": -0.2178876, "TypeTerrace": -0.6641736, "ContHigh": 0.2223858,
        "Low|Medium": -0.2998286, "Medium|High": 0.4267220, "loglik": -1739.8444,
    },
}


def housing_model(link: str):
    table = load_csv(
        REF / "housing.csv",
        weights="Freq",
        levels={"Sat": ["Low", "Medium", "High"], "Infl": ["Low", "Medium", "High"],
                "Type": ["Tower", "Apartment", "Atrium", "Terrace"], "Cont": ["Low", "High"]},
    )
    m = OrdinalModel(link=link, formula="Sat ~ Infl + Type + Cont",
                     priors={"effects": {"sigma": 10.0}, "cutpoints": {"alpha": 1.0}})
    design = m.prepare(table)
    return m.build(design), design


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_posterior_matches_polr(link):
    model, _ = housing_model(link)
    with model:
        idata = pm.sample(500, tune=500, chains=4, cores=1, random_seed=11, progressbar=False)
    post = idata["posterior"]
    ref = POLR[link]
    for dim, var in (("effect", "beta"), ("cutpoint", "cutpoints")):
        for name in post[var][dim].values:
            x = post[var].sel({dim: name}).values.ravel()
            z = (x.mean() - ref[str(name)]) / x.std()
            print(f"{link} {name}: mean {x.mean():.4f} sd {x.std():.4f} polr {ref[str(name)]:.4f} "
                  f"({z:+.3f} sd)")
            assert abs(z) < 0.2, name


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_loglik_at_mode_matches_polr(link):
    model, design = housing_model(link)
    idata = fit_map(model, seed=1)
    ll = log_likelihood_at(model, point_from_posterior(model, idata))
    print(f"{link}: loglik at the mode {ll:.4f}, polr {POLR[link]['loglik']}")
    assert ll == pytest.approx(POLR[link]["loglik"], abs=0.05)
    assert np.isclose(design.weights.sum(), 1681)

"""Reference check: ordinal::clm on R's wine data (REFERENCES.md section 5), default priors.

clm(rating ~ temp + contact, data = wine): 72 ratings in 5 categories, two treatment-coded
factors, the reference cell (cold, no skin contact) holding none of the top two ratings.
Small enough for the priors to matter: the shipped defaults before issue 10 (effects
Normal(0, 1), a Dirichlet(2) on the category probabilities at the reference cell) put the
posterior means 1.3-2.3 SE below clm's estimates. With the defaults (effects Normal(0, 2.5 /
sd), Student-t(3, 0, 2.5) cutpoints at the average row) every posterior mean must lie within
0.3 of clm's SEs (measured: at most 0.06), and the fit pass the default gates.

Sampling: 4 chains x 500 / 500 on 1 core.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_mle import CLM
from test_reference_housing import GATES, SAMPLER, default_ordinal, within_published_se

from carestar import diagnostics as diag
from carestar.sampling import sample
from carestar.tidy_csv import load_csv

pytestmark = pytest.mark.slow

REF = Path(__file__).parent / "data" / "reference"


@pytest.fixture(scope="module")
def wine_fit():
    model = default_ordinal("rating ~ temp + contact")
    design = model.prepare(load_csv(REF / "wine.csv"))
    return sample(model.build(design), SAMPLER, seed=11)


def test_default_priors_reproduce_clm(wine_fit):
    within_published_se(wine_fit, CLM["estimates"])


def test_default_fit_passes_its_gates(wine_fit):
    gates = diag.convergence(wine_fit, diag.resolve(wine_fit, ["beta", "cutpoints"]), GATES)
    assert gates["passed"], gates

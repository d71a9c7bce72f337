"""Reference check: MASS::polr on the Copenhagen housing data (REFERENCES.md section 1),
with the **default** priors.

polr(Sat ~ Infl + Type + Cont, weights = Freq, data = housing), logit, through ``data=csv``
+ a formula and the model as ``conf/model/ordinal.yaml`` configures it. polr's convention
``logit P(Y <= k) = zeta_k - eta`` is the ordinal model's (a positive effect moves mass up);
its cutpoints are named ``Low|Medium``, ``Medium|High`` as here.

- posterior means within 0.3 of polr's standard errors of its estimates (the issue's target
  for the default priors; measured: at most 0.03 SE);
- the run passes the default diagnostic gates.

The maximum likelihood fit (logit and probit: estimates, SEs, log likelihood) is checked in
``tests/test_mle.py``; this file checks the Bayesian fit a user gets by default.
Sampling: 4 chains x 500 / 500 on 1 core.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf
from test_mle import HOUSING_LEVELS, POLR

from carestar import diagnostics as diag
from carestar.sampling import sample
from carestar.tidy_csv import load_csv
from models.ordinal import OrdinalModel

pytestmark = pytest.mark.slow

REF = Path(__file__).parent / "data" / "reference"
ORDINAL_YAML = Path(__file__).resolve().parents[1] / "conf" / "model" / "ordinal.yaml"
GATES = OmegaConf.to_container(OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "config.yaml"))["diagnostics"]
SAMPLER = {"name": "pymc", "nuts_sampler": "pymc", "draws": 500, "tune": 500, "chains": 4, "cores": 1,
           "progressbar": False, "posterior_predictive": False}


def default_ordinal(formula: str) -> OrdinalModel:
    """The ordinal model exactly as conf/model/ordinal.yaml configures it, with a formula."""
    cfg = OmegaConf.to_container(OmegaConf.load(ORDINAL_YAML), resolve=True)
    return OrdinalModel(**{**{k: v for k, v in cfg.items() if not k.startswith("_")}, "formula": formula})


def within_published_se(idata, reference: dict[str, tuple[float, float]], limit: float = 0.3) -> None:
    """Each posterior mean within ``limit`` published SEs of the published estimate."""
    post = idata.posterior
    for name, (estimate, se) in reference.items():
        var, label = name[:-1].split("[", 1) if "[" in name else (name, None)
        draws = post[var] if label is None else post[var].sel({"effect" if var == "beta" else "cutpoint": label})
        mean = float(draws.mean())
        z = (mean - estimate) / se
        print(f"{name}: posterior mean {mean:.4f} (sd {float(draws.std()):.4f}), published {estimate:.4f} "
              f"(SE {se:.4f}): {z:+.3f} SE")
        assert abs(z) < limit, name


@pytest.fixture(scope="module")
def housing_fit():
    model = default_ordinal("Sat ~ Infl + Type + Cont")
    design = model.prepare(load_csv(REF / "housing.csv", weights="Freq", levels=HOUSING_LEVELS))
    return sample(model.build(design), SAMPLER, seed=11)


def test_default_priors_reproduce_polr(housing_fit):
    within_published_se(housing_fit, POLR["logit"]["estimates"])


def test_default_fit_passes_its_gates(housing_fit):
    gates = diag.convergence(housing_fit, diag.resolve(housing_fit, ["beta", "cutpoints"]), GATES)
    assert gates["passed"], gates

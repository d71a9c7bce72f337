"""Reference check: lme4::glmer on cbpp (REFERENCES.md section 4), hierarchical binomial.

glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), family = binomial)

Compared with the **nAGQ = 25** column [P] (lme4's own test file): it is the published
maximum of the exact marginal likelihood (25-point adaptive quadrature), which is the
quantity a Bayesian posterior with weak priors concentrates around; the Laplace column [L]
differs from it by < 0.001 anyway. R's ``period`` is a factor: the formula here is
``C(period)`` (reference level 1).

- fixed effects: posterior means within 0.2 posterior SD of the glmer estimates;
- herd SD: the posterior (HalfNormal(1) prior) is right-skewed around the ML value 0.648:
  its mean must lie in [0.5, 1.0] and its 94% interval contain 0.648;
- log likelihood: the *marginal* one (herd effects integrated out, by Gauss-Hermite
  quadrature over the model's own per-row log likelihood) equals the published
  -91.98337 (binomial constant included) at the published estimates, and is at most that
  (and within 0.5 of it) at the posterior medians. The joint mode over herd effects is not
  lme4's estimate, so it is not compared;
- the same data as 842 Bernoulli rows gives the same posterior within Monte Carlo error.

Sampling: 4 chains x 500 tune / 500 draws on 1 core, twice (aggregated and Bernoulli);
about 1-2 minutes in all on a 2-core machine (compile included).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy.special import logsumexp

from carestar.mode import _value_point
from carestar.tidy_csv import load_csv
from models.binomial import BinomialModel

pytestmark = pytest.mark.slow

REF = Path(__file__).parent / "data" / "reference"
NAGQ25 = {"intercept": -1.39922533406847, "period2": -0.991407294757321,
          "period3": -1.12782184600404, "period4": -1.57946627431248}
HERD_SD_ML = 0.6475199
LOGLIK_NAGQ25 = -91.98337  # exact marginal, with sum(lchoose) = 185.47566
BINOMIAL_CONSTANT = 185.47566


def sample(model: pm.Model, seed: int):
    with model:
        return pm.sample(500, tune=500, chains=4, cores=1, random_seed=seed, progressbar=False)


def per_row_loglik_at_nodes(model: pm.Model, fixed: dict, herd_sd: float, nodes: int = 40):
    """Each row's log likelihood with every herd effect at ``sd * sqrt(2) * t_k`` (Gauss-
    Hermite node k): nodes x rows."""
    obs = model.observed_RVs[0]
    fn = model.compile_fn(model.logp(vars=[obs], sum=False, jacobian=False), point_fn=True)
    n_herds = len(model.coords["herd"])
    t, _ = np.polynomial.hermite.hermgauss(nodes)
    out = []
    for tk in t:
        point = {**fixed, "herd_sd": np.array([herd_sd]),
                 "herd_z": np.full((n_herds, 1), np.sqrt(2) * tk)}
        out.append(np.asarray(fn(_value_point(model, point))[0]))
    return np.array(out)


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cbpp")
    cb = pd.read_csv(REF / "cbpp.csv")
    rows = []
    for r in cb.itertuples():
        rows += [{"herd": r.herd, "period": r.period, "y": 1}] * r.incidence
        rows += [{"herd": r.herd, "period": r.period, "y": 0}] * (r.size - r.incidence)
    expanded = tmp / "cbpp_bernoulli.csv"
    pd.DataFrame(rows).to_csv(expanded, index=False)

    out = {}
    for key, path, formula in [
        ("aggregated", REF / "cbpp.csv", "incidence | trials(size) ~ C(period) + (1|herd)"),
        ("bernoulli", expanded, "y ~ C(period) + (1|herd)"),
    ]:
        m = BinomialModel(formula)
        design = m.prepare(load_csv(path))
        model = m.build(design)
        t0 = time.perf_counter()
        idata = sample(model, seed=20240)
        out[key] = {"design": design, "model": model, "idata": idata,
                    "wall_s": time.perf_counter() - t0}
        print(f"cbpp {key}: {design.n} rows, sampled in {out[key]['wall_s']:.1f} s")
    return out


def draws(idata) -> dict[str, np.ndarray]:
    post = idata["posterior"]
    d = {"intercept": post["intercept"].values.ravel(),
         "herd_sd": post["herd_sd"].values.reshape(-1)}
    for j, name in enumerate(post["beta"]["effect"].values):
        d[str(name)] = post["beta"].values[..., j].ravel()
    return d


def herd_marginal(model, design, fixed, sd) -> float:
    per_node = per_row_loglik_at_nodes(model, fixed, sd)
    codes = design.groups[0].group.codes
    t, w = np.polynomial.hermite.hermgauss(per_node.shape[0])
    by_herd = np.stack([per_node[:, codes == h].sum(axis=1) for h in np.unique(codes)], axis=1)
    return float(logsumexp(by_herd + np.log(w / np.sqrt(np.pi))[:, None], axis=0).sum())


def test_fixed_effects_match_glmer(fits):
    d = draws(fits["aggregated"]["idata"])
    for name, ml in NAGQ25.items():
        z = (d[name].mean() - ml) / d[name].std()
        print(f"{name}: posterior mean {d[name].mean():.4f} sd {d[name].std():.4f} "
              f"glmer {ml:.4f} ({z:+.3f} sd)")
        assert abs(z) < 0.2, name


def test_herd_sd_plausible(fits):
    sd = draws(fits["aggregated"]["idata"])["herd_sd"]
    lo, hi = np.quantile(sd, [0.03, 0.97])
    print(f"herd_sd mean {sd.mean():.3f}, 94% [{lo:.3f}, {hi:.3f}]; glmer {HERD_SD_ML}")
    assert 0.5 <= sd.mean() <= 1.0 and lo < HERD_SD_ML < hi


def test_marginal_loglik(fits):
    f = fits["aggregated"]
    fixed = {"intercept": NAGQ25["intercept"],
             "beta": np.array([NAGQ25["period2"], NAGQ25["period3"], NAGQ25["period4"]])}
    at_ml = herd_marginal(f["model"], f["design"], fixed, HERD_SD_ML)
    assert at_ml == pytest.approx(LOGLIK_NAGQ25, abs=2e-3)
    fb = fits["bernoulli"]
    at_ml_bern = herd_marginal(fb["model"], fb["design"], fixed, HERD_SD_ML)
    assert at_ml_bern == pytest.approx(LOGLIK_NAGQ25 - BINOMIAL_CONSTANT, abs=2e-3)
    d = draws(f["idata"])
    med = {"intercept": np.median(d["intercept"]),
           "beta": np.array([np.median(d[k]) for k in ("period2", "period3", "period4")])}
    at_post = herd_marginal(f["model"], f["design"], med, float(np.median(d["herd_sd"])))
    print(f"marginal loglik: at glmer {at_ml:.5f}, at posterior medians {at_post:.5f}")
    assert LOGLIK_NAGQ25 - 0.5 < at_post <= LOGLIK_NAGQ25 + 2e-3


def test_bernoulli_rows_give_the_same_posterior(fits):
    a, b = draws(fits["aggregated"]["idata"]), draws(fits["bernoulli"]["idata"])
    for name in a:
        # Monte Carlo SE of each mean, with ESS >= 300 of 2000 draws assumed (conservative)
        se = np.hypot(a[name].std(), b[name].std()) / np.sqrt(300)
        diff = a[name].mean() - b[name].mean()
        print(f"{name}: aggregated {a[name].mean():.4f}, bernoulli {b[name].mean():.4f}, "
              f"diff {diff:+.4f} (4 MCSE = {4 * se:.4f})")
        assert abs(diff) < 4 * se, name

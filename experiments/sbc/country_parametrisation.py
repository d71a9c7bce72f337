"""Country SBC (experiments/sbc/country): refit its first N replications, the same data sets,
with the measure term parametrised another way, and print which variable mixes worst.

    python experiments/sbc/country_parametrisation.py base|centred_int|centred_all N

base: carestar's non-centred terms; centred_int: the measure intercepts a_m centred, the NI
differences d_m non-centred; centred_all: both centred. Writes /tmp/csbc_VARIANT.csv.
"""
import sys, time
from pathlib import Path
ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
import numpy as np, pandas as pd, pymc as pm
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
import carestar.likelihood as lik
import models.binomial as binomial
from carestar.refit import Refitter, observed_name
from carestar import diagnostics as diag
from carestar.sbc import _monitored, replication_seed, _settings

variant = sys.argv[1]; N = int(sys.argv[2]); extra = sys.argv[3:]
orig = lik.group_effects
def centred_effects(term, sd_sigma):
    group = term.group.name
    if variant == "base" or group != "measure":
        return orig(term, sd_sigma)
    coefs = (["Intercept"] if term.intercept else []) + ([] if term.slopes is None else list(term.slopes.columns))
    model = pm.modelcontext(None)
    coef_dim = f"{group}_coef"
    model.add_coords({group: list(term.group.levels), coef_dim: coefs})
    sd = pm.HalfNormal(f"{group}_sd", sigma=sd_sigma, dims=coef_dim)
    if variant == "centred_all":
        b = pm.Normal(f"{group}_effect", 0.0, sd, dims=(group, coef_dim))
    else:  # centred intercept only, slope non-centred
        a = pm.Normal(f"{group}_a", 0.0, sd[0], dims=group)
        zd = pm.Normal(f"{group}_zd", 0.0, 1.0, dims=group)
        b = pm.Deterministic(f"{group}_effect", pm.math.stack([a, zd * sd[1]], axis=1), dims=(group, coef_dim))
    rows = b[term.group.codes]
    cols = ([np.ones(len(term.group.codes))] if term.intercept else []) + ([] if term.slopes is None else [term.slopes[c].to_numpy(float) for c in term.slopes])
    return (rows * np.column_stack(cols)).sum(axis=-1)

with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
    cfg = compose("config", overrides=["task=sbc", "model=country", "sbc.n=100"] + extra)
settings = _settings(cfg)
sampler = {**OmegaConf.to_container(cfg.sampler, resolve=True), "progressbar": False, "milestones": False,
           **{k: settings[k] for k in ("chains", "tune", "draws")}}
model = instantiate(cfg.model); design = model.prepare(instantiate(cfg.data))
base_graph = model.build(design)
prior = pm.sample_prior_predictive(draws=100, model=base_graph, random_seed=int(cfg.seed))
ys = prior.prior_predictive[observed_name(base_graph)].values[0]
names = _monitored(model, prior.prior.to_dataset())
binomial.group_effects = centred_effects
fit_graph = model.build(design)
refit = Refitter(fit_graph, sampler)
rows = []
for i in range(N):
    t0 = time.perf_counter()
    tree = refit.fit(ys[i], replication_seed(int(cfg.seed), i), None)
    g = diag.convergence(tree, [n for n in names if n in tree.posterior], settings["gates"])
    failed = [k for k, c in g["checks"].items() if not c["passed"]]
    s = diag.summary(tree, [n for n in names if n in tree.posterior])
    worst = s["ess_bulk"].idxmin(); worst_r = s["r_hat"].idxmax()
    th = prior.prior.isel(chain=0, draw=i)
    rows.append(dict(rep=i, failed=";".join(failed), div=g["checks"]["divergences"]["value"],
                     ess=round(s["ess_bulk"].min()), worst_ess=worst, rhat=round(s["r_hat"].max(), 3), worst_rhat=worst_r,
                     sd_m=np.round(th["measure_sd"].values, 2).tolist(), sd_org=round(float(th["org_sd"].values[0]), 2),
                     wall=round(time.perf_counter() - t0, 1)))
    print(rows[-1], flush=True)
df = pd.DataFrame(rows)
print(variant, "failed", (df.failed != "").sum(), "of", N, "wall", df.wall.sum())
df.to_csv(f"/tmp/csbc_{variant}.csv", index=False)

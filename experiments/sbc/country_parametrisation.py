"""Country SBC (experiments/sbc/country): refit its first N replications, the same data sets
and fit seeds, with the measure term parametrised another way; per fit, which gates failed
and which variable mixed worst.

    python experiments/sbc/country_parametrisation.py base|centred_int|centred_all [N]

``base``: carestar's non-centred terms (reproduces the recorded fits); ``centred_int``: the
measure intercepts ``a_m`` centred, the Northern Ireland differences ``d_m`` non-centred;
``centred_all``: both centred. The data sets are drawn from the default (non-centred) graph
as ``task=sbc`` draws them, so every variant fits the same ones. Prints a line per fit and
the count of failed fits.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pymc as pm  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

import models.binomial as binomial  # noqa: E402
from carestar import diagnostics as diag  # noqa: E402
from carestar.likelihood import group_effects  # noqa: E402
from carestar.refit import Refitter, observed_name  # noqa: E402
from carestar.sbc import _monitored, _settings, replication_seed  # noqa: E402

VARIANTS = ("base", "centred_int", "centred_all")


def measure_term(variant: str):
    """``group_effects`` with the measure term (intercept, NI difference) built as ``variant``."""
    def effects(term, sd_sigma):
        group = term.group.name
        if variant == "base" or group != "measure":
            return group_effects(term, sd_sigma)
        coef_dim = f"{group}_coef"
        pm.modelcontext(None).add_coords({group: list(term.group.levels), coef_dim: term.coefficients})
        sd = pm.HalfNormal(f"{group}_sd", sigma=sd_sigma, dims=coef_dim)
        if variant == "centred_all":
            b = pm.Normal(f"{group}_effect", 0.0, sd, dims=(group, coef_dim))
        else:
            a = pm.Normal(f"{group}_a", 0.0, sd[0], dims=group)
            z = pm.Normal(f"{group}_zd", 0.0, 1.0, dims=group)
            b = pm.Deterministic(f"{group}_effect", pm.math.stack([a, z * sd[1]], axis=1), dims=(group, coef_dim))
        return (b[term.group.codes] * term.columns()).sum(axis=-1)
    return effects


def main(variant: str, n: int) -> pd.DataFrame:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfg = compose("config", overrides=["task=sbc", "model=country", "sbc.n=100"])
    settings = _settings(cfg)
    sampler = {**OmegaConf.to_container(cfg.sampler, resolve=True), "progressbar": False, "milestones": False,
               **{k: settings[k] for k in ("chains", "tune", "draws")}}
    model = instantiate(cfg.model)
    design = model.prepare(instantiate(cfg.data))
    default_graph = model.build(design)
    prior = pm.sample_prior_predictive(draws=settings["n"], model=default_graph, random_seed=int(cfg.seed))
    data_sets = prior.prior_predictive[observed_name(default_graph)].values[0]
    binomial.group_effects = measure_term(variant)  # what BinomialModel.build calls
    refit = Refitter(model.build(design), sampler)
    rows = []
    for i in range(n):
        start = time.perf_counter()
        tree = refit.fit(data_sets[i], replication_seed(int(cfg.seed), i), None)
        names = [v for v in _monitored(model, prior.prior.to_dataset()) if v in tree.posterior]
        checks = diag.convergence(tree, names, settings["gates"])["checks"]
        summary = diag.summary(tree, names)
        truth = prior.prior.isel(chain=0, draw=i)
        rows.append({"replication": i, "failed": ";".join(k for k, c in checks.items() if not c["passed"]),
                     "divergences": checks["divergences"]["value"], "min_ess_bulk": round(summary["ess_bulk"].min()),
                     "worst_ess": summary["ess_bulk"].idxmin(), "max_rhat": round(summary["r_hat"].max(), 3),
                     "worst_rhat": summary["r_hat"].idxmax(), "measure_sd": np.round(truth["measure_sd"].values, 2),
                     "org_sd": round(float(truth["org_sd"].values[0]), 2),
                     "wall_s": round(time.perf_counter() - start, 1)})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(f"{variant}: {(table['failed'] != '').sum()} of {n} fits failed their gates, {table['wall_s'].sum():.0f} s")
    return table


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in VARIANTS:
        sys.exit(f"usage: python experiments/sbc/country_parametrisation.py {{{'|'.join(VARIANTS)}}} [N]")
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30)

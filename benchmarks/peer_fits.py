"""One fit of bench_peers.py's model by a peer of carestar, as a user of that peer would run it.

    python benchmarks/peer_fits.py bambi DATA.csv OUT_DIR [--draws 1000] [--tune 1000] [--seed 1]
    python benchmarks/peer_fits.py handwritten DATA.csv OUT_DIR

``bambi``: ``bmb.Model(FORMULA, data, family="cumulative").fit(...)``, bambi's defaults
(PyMC's NUTS, its priors). ``handwritten``: the same likelihood written in PyMC by hand
(ordered cutpoints, non-centred organisation intercepts, Normal priors), sampled by numpyro
with a JAX host device per chain so that the chains run in parallel. Both draw CHAINS chains
on CORES cores and write ``OUT_DIR/posterior.nc``; bench_peers.py times the process and reads
the file. Only the peer (bambi, or pymc with numpyro) is needed, not carestar, so this runs
in the peers' own environment (``--peer-python``). The module imports nothing else at the
top: bench_peers.py shares its constants.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

PREDICTORS = ("x1", "x2", "x3", "x4", "x5")
GROUP = "org"
OUTCOME = "stars"
FORMULA = f"{OUTCOME} ~ {' + '.join(PREDICTORS)} + (1|{GROUP})"
CHAINS, CORES = 4, 2
# the model's parameters in each peer's posterior (effects, cutpoints, org SD): the set
# whose minimum bulk ESS the benchmark compares; the org intercepts are left out
PARAMETERS = {
    "bambi": [*PREDICTORS, "threshold", f"1|{GROUP}_sigma"],
    "handwritten": ["beta", "cutpoints", f"{GROUP}_sd"],
}


def read_data(csv: Path):
    import pandas as pd

    data = pd.read_csv(csv, dtype={GROUP: str})
    levels = sorted(data[OUTCOME].unique())
    data[OUTCOME] = pd.Categorical(data[OUTCOME], categories=levels, ordered=True)
    return data


def fit_bambi(data, draws: int, tune: int, seed: int):
    import bambi as bmb

    model = bmb.Model(FORMULA, data, family="cumulative")
    return model.fit(draws=draws, tune=tune, chains=CHAINS, cores=CORES, random_seed=seed)


def fit_handwritten(data, draws: int, tune: int, seed: int):
    # XLA reads this when JAX starts: one host device per chain, or the chains take turns
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={CHAINS}"
    import numpy as np
    import pymc as pm

    x = data[list(PREDICTORS)].to_numpy(float)
    org_codes, orgs = data[GROUP].factorize()
    y = data[OUTCOME].cat.codes.to_numpy()
    n_cut = len(data[OUTCOME].cat.categories) - 1
    coords = {"effect": list(PREDICTORS), GROUP: list(orgs), "cutpoint": range(n_cut)}
    with pm.Model(coords=coords):
        beta = pm.Normal("beta", 0.0, 2.5, dims="effect")
        sd = pm.HalfNormal(f"{GROUP}_sd", 1.0)
        z = pm.Normal(f"{GROUP}_z", 0.0, 1.0, dims=GROUP)
        cutpoints = pm.Normal("cutpoints", 0.0, 2.5, dims="cutpoint", transform=pm.distributions.transforms.ordered,
                              initval=np.linspace(-1.0, 1.0, n_cut))
        eta = pm.math.dot(x, beta) + sd * z[org_codes]
        pm.OrderedLogistic(OUTCOME, eta=eta, cutpoints=cutpoints, observed=y)
        return pm.sample(draws=draws, tune=tune, chains=CHAINS, cores=CORES, random_seed=seed,
                         nuts_sampler="numpyro", nuts={"chain_method": "parallel"}, progressbar=False)


FITS = {"bambi": fit_bambi, "handwritten": fit_handwritten}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tool", choices=sorted(FITS))
    parser.add_argument("csv", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args(argv)
    idata = FITS[options.tool](read_data(options.csv), options.draws, options.tune, options.seed)
    options.out.mkdir(parents=True, exist_ok=True)
    idata.to_netcdf(options.out / "posterior.nc")


if __name__ == "__main__":
    main()

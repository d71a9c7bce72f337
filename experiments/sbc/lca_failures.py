"""Which fits of the recorded latent-class SBC (experiments/sbc/lca) failed their gates,
against the true parameters of their replications.

Draws the same truths and data sets as ``python run.py task=sbc model=lca sbc.n=100`` (the
prior predictive of the model's graph from the run's seed; replication i's data from
``carestar.sbc_problem.data_seed``), then prints the share of failed fits by quartile of the
smallest true class share, the largest class-location spread and the entropy R^2 of the
true classes given the simulated answers (1: every organisation's class certain).

    python experiments/sbc/lca_failures.py [experiments/sbc/lca/tables/replications.csv]
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pymc as pm  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from scipy.special import logsumexp  # noqa: E402

from carestar.sbc_problem import data_seed  # noqa: E402


def truths_and_entropy(n: int):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfg = compose("config", overrides=["task=sbc", "model=lca", f"sbc.n={n}"])
    model = instantiate(cfg.model)
    gen = model.sbc_generator(model.prepare(instantiate(cfg.data)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prior = pm.sample_prior_predictive(draws=n, model=gen.graph, random_seed=int(cfg.seed)).prior.to_dataset()
    canon = gen.canonical(prior).isel(chain=0)
    entropy_r2 = []
    for i in range(n):
        theta = prior.isel(chain=0, draw=i)
        answers = gen.simulate(theta, data_seed(int(cfg.seed), i))
        ll = np.einsum("njc,kjc->nk", answers, np.log(np.clip(theta["item_probs"].values, 1e-300, None)))
        ll += np.log(theta["class_shares"].values)
        post = np.exp(ll - logsumexp(ll, axis=1, keepdims=True))
        h = -(post * np.log(np.clip(post, 1e-300, None))).sum(axis=1).mean()
        entropy_r2.append(1 - h / np.log(post.shape[1]))
    return pd.DataFrame({
        "smallest class share": canon["class_shares"].values.min(axis=1),
        "class-location spread": np.abs(canon["class_location"].values).max(axis=(1, 2)),
        "entropy R^2": entropy_r2,
    })


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "experiments" / "sbc" / "lca" / "tables" / "replications.csv"
    reps = pd.read_csv(path)
    features = truths_and_entropy(len(reps))
    failed = ~reps["passed"].to_numpy()
    print(f"{failed.sum()} of {len(reps)} fits failed their gates ({path})")
    print("| truth | share of failed fits by quartile (lowest first) |\n|---|---|")
    for name in features:
        quartile = pd.qcut(features[name], 4, labels=False)
        shares = [failed[quartile == q].mean() for q in range(4)]
        print(f"| {name} | {', '.join(f'{s:.2f}' for s in shares)} |")


if __name__ == "__main__":
    main()

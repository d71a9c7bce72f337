"""Benchmark the latent class model: wall time and ESS per second per sampler, and StepMix.

Data: responses simulated from the synthetic study's true latent classes (8 degree-of-use
items 0-5, 4 yes/no processes, 3 classes, ``conf/data/synthetic.yaml``) for N organisations
(default 150 and 1500). Model: ``conf/model/lca.yaml`` as configured (3 classes).

For each N and sampler (pymc, nutpie, numpyro), in a fresh subprocess (JAX and forked
PyMC workers do not mix; every sampler starts cold):

* ``cold``: the first fit, compilation included (PyTensor's on-disk cache may be warm);
* ``warm``: the same model sampled again in the same process (compiled code reused where
  the sampler allows: PyTensor's cache for pymc, nutpie's compiled model is rebuilt);
* ESS: the smallest bulk ESS over class shares and item probabilities after relabelling,
  and ESS per second of the warm wall time (cold for N > 500, which is fitted once);
  max r_hat on the same variables.

StepMix (the EM that starts the chains, 10 random starts) is timed on the same data.

    python benchmarks/bench_lca.py                     # 150 and 1500, all samplers
    python benchmarks/bench_lca.py --sizes 150 --samplers pymc --draws 500

writes ``benchmarks/results/lca.md`` (machine, versions, table).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from bench_runs import machine, sampler_default

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "lca.md"
RAW = RESULTS.with_suffix(".json")  # rows by (N, sampler): a partial rerun replaces its own


def synthetic_truth():
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["model=lca"])
    study = instantiate(cfg.data)
    model = instantiate(cfg.model)
    from models.lca import LCATruth

    responses = model.responses_from(study)
    return cfg, LCATruth.from_study(study, responses), responses


def simulate_like(responses, truth, n_org: int, seed: int):
    """``n_org`` organisations drawn from the true classes, items as in the study."""
    from carestar.item_responses import ItemResponses

    rng = np.random.default_rng(seed)
    z = rng.choice(len(truth.shares), size=n_org, p=truth.shares)
    cum = np.cumsum(truth.probs[z], axis=-1)  # (N, J, C)
    codes = (rng.random((n_org, responses.n_item, 1)) > cum).sum(axis=-1)
    codes = np.minimum(codes, np.array(responses.n_categories) - 1)
    return ItemResponses(
        orgs=tuple(f"org{i:05d}" for i in range(n_org)), items=responses.items, codes=codes,
        n_categories=responses.n_categories, category_labels=responses.category_labels,
        kinds=responses.kinds,
    ), z


def one(n_org: int, sampler: str, draws: int, tune: int, chains: int, cores: int) -> dict:
    """Fit one (size, sampler) twice in this process; return timings and ESS."""
    from hydra.utils import instantiate

    from carestar import diagnostics as diag
    from carestar.sampling import sample

    warnings.simplefilter("ignore")
    cfg, truth, responses = synthetic_truth()
    data, _ = simulate_like(responses, truth, n_org, seed=n_org)
    model = instantiate(cfg.model)
    out: dict = {"n_org": n_org, "sampler": sampler}
    if sampler == "stepmix":
        from models.lca import fit_em

        t = time.perf_counter()
        fit_em(data, model.n_classes, seed=1, n_init=10)
        out["cold_s"] = time.perf_counter() - t
        t = time.perf_counter()
        fit_em(data, model.n_classes, seed=2, n_init=10)
        out["warm_s"] = time.perf_counter() - t
        return out
    t = time.perf_counter()
    prepared = model.prepare(data)
    out["prepare_s"] = time.perf_counter() - t
    config = {"name": sampler, "nuts_sampler": sampler, "draws": draws, "tune": tune,
              "chains": chains, "cores": cores, "target_accept": sampler_default(sampler, "target_accept"),
              "progressbar": False,
              "posterior_predictive": False}
    runs = ("cold", "warm") if n_org <= 500 else ("cold",)  # large N: sampling dominates
    for run in runs:
        t = time.perf_counter()
        pm_model = model.build(prepared)
        idata = sample(pm_model, config, 1, initvals=model.initvals(prepared))
        out[f"{run}_s"] = time.perf_counter() - t
    idata = model.postprocess(idata, prepared)
    names = diag.resolve(idata, ["class_shares", "item_probs"])
    table = diag.summary(idata, names)
    out["min_ess_bulk"] = float(table["ess_bulk"].min())
    out["max_rhat"] = float(table["r_hat"].max())
    out["ess_per_s"] = out["min_ess_bulk"] / out[f"{runs[-1]}_s"]
    out["chains_agree"] = model.diagnostics(idata, prepared)["latent_classes"]["chains_agree"]
    return out


def write_markdown(rows: list[dict], args, note: str) -> Path:
    from carestar.runs import package_versions

    v = package_versions()
    lines = [
        "# LCA benchmark (`benchmarks/bench_lca.py`)",
        "",
        f"Machine: {machine()}. {note}",
        "",
        "Versions: " + ", ".join(f"{k} {v[k]}" for k in ("python", "pymc", "pytensor", "nutpie",
                                                         "numpyro", "jax", "stepmix", "arviz")
                                 if k in v) + ".",
        "",
        f"Model: `conf/model/lca.yaml` (3 classes), 12 items (8 x 0-5, 4 yes/no); {args.chains}"
        f" chains x ({args.tune} tune + {args.draws} draws) on {args.cores} cores. `cold` = first"
        " fit in a fresh process (compilation included; PyTensor's disk cache may be warm);"
        " `warm` = the same model sampled again (N <= 500 only; for larger N sampling dominates)."
        " ESS = smallest bulk ESS over class shares and item probabilities after relabelling;"
        " ESS/s divides it by the warm wall time (cold where there is no warm run).",
        "",
        "| N | sampler | cold (s) | warm (s) | min bulk ESS | ESS/s | max r_hat | chains agree |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['n_org']} | {r['sampler']} | failed: {r['error'][:80]} |"
                         " | | | | |")
            continue
        def f(key, fmt):
            return format(r[key], fmt) if key in r else ""
        lines.append(f"| {r['n_org']} | {r['sampler']} | {f('cold_s', '.1f')} | {f('warm_s', '.1f')}"
                     f" | {f('min_ess_bulk', '.0f')} | {f('ess_per_s', '.1f')} | {f('max_rhat', '.3f')}"
                     f" | {r.get('chains_agree', '')} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    return RESULTS


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[150, 1500])
    p.add_argument("--samplers", nargs="+", default=["stepmix", "pymc", "nutpie", "numpyro"])
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--note", default="")
    p.add_argument("--one", nargs=2, metavar=("N", "SAMPLER"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print("RESULT " + json.dumps(one(int(args.one[0]), args.one[1], args.draws, args.tune,
                                          args.chains, args.cores)))
        return 0
    previous = json.loads(RAW.read_text()) if RAW.exists() else []
    rows = [r for r in previous if (r["n_org"], r["sampler"]) not in
            {(n, s) for n in args.sizes for s in args.samplers}]
    for n in args.sizes:
        for s in args.samplers:
            cmd = [sys.executable, __file__, "--one", str(n), s, "--draws", str(args.draws),
                   "--tune", str(args.tune), "--chains", str(args.chains), "--cores",
                   str(args.cores)]
            proc = subprocess.run(cmd, capture_output=True, text=True,
                                  env={**os.environ, "PYTHONWARNINGS": "ignore"})
            found = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
            row = json.loads(found[-1][7:]) if found else {
                "n_org": n, "sampler": s, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
            print(row, flush=True)
            rows.append(row)
            rows.sort(key=lambda r: (r["n_org"], ["stepmix", "pymc", "nutpie", "numpyro"].index(
                r["sampler"]) if r["sampler"] in ("stepmix", "pymc", "nutpie", "numpyro") else 9))
            RAW.write_text(json.dumps(rows, indent=1) + "\n")
            write_markdown(rows, args, args.note)
    print(f"written {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

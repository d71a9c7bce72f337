"""Joint model on the synthetic study (150 councils x 7 years): wall time and ESS per second.

For each NUTS sampler (pymc, nutpie): a short run first compiles the model (the warm
cache the target assumes), then the timed run, 4 chains x (1000 tune + 1000 draws) on 2
cores, starting every chain at the EM solution as a run does. Reported: sampling wall
time, the postprocess (relabelling, per-organisation log likelihood) time, minimum bulk
and tail ESS over the monitored variables, ESS per second of sampling, max r_hat,
divergences, and whether the chains agree after relabelling. Target: under 60 s warm (issue 11).

    python benchmarks/bench_joint.py [--samplers pymc nutpie] [--draws 1000] [--tune 1000]

writes ``benchmarks/results/joint.md`` with the machine, its load and package versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

TARGET_S = 60.0
GATES = {"max_rhat": 1.01, "min_ess_bulk": 400, "min_ess_tail": 400, "max_divergences": 0,
         "min_bfmi": 0.3}


def bench(sampler_name: str, draws: int, tune: int, chains: int, cores: int, seed: int,
          target_accept: float | None = None) -> dict:
    from carestar import diagnostics as diag
    from carestar.sampling import sample
    from helpers_study import synthetic_study
    from models.joint import JointModel

    from bench_runs import sampler_default

    if target_accept is None:
        target_accept = sampler_default(sampler_name, "target_accept")
    model = JointModel(seed=seed)
    t0 = time.perf_counter()
    prep = model.prepare(synthetic_study(seed))
    t_prepare = time.perf_counter() - t0
    pm_model = model.build(prep)
    base = {"name": sampler_name, "nuts_sampler": sampler_name, "chains": chains,
            "cores": cores, "target_accept": target_accept, "progressbar": False,
            "posterior_predictive": False}
    t0 = time.perf_counter()
    sample(pm_model, {**base, "draws": 10, "tune": 10, "chains": 1}, seed,
           initvals=model.initvals(prep))
    t_compile = time.perf_counter() - t0
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    idata = sample(pm_model, {**base, "draws": draws, "tune": tune}, seed,
                   initvals=model.initvals(prep))
    t_sample = time.perf_counter() - t0
    load_after = os.getloadavg()
    t0 = time.perf_counter()
    idata = model.postprocess(idata, prep)
    t_post = time.perf_counter() - t0
    conv = diag.convergence(idata, model.monitored(idata), GATES)
    checks = {k: v["value"] for k, v in conv["checks"].items()}
    agree = json.loads(idata["posterior"].attrs["joint_chain_agreement"])
    return {
        "sampler": sampler_name, "prepare_s": t_prepare, "compile_and_short_run_s": t_compile,
        "sample_s": t_sample, "postprocess_s": t_post, **checks,
        "ess_bulk_per_s": checks["min_ess_bulk"] / t_sample,
        "chains_agree": agree["chains_agree"], "load_before": load_before,
        "load_after": load_after,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samplers", nargs="+", default=["pymc", "nutpie"])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--target-accept", type=float, default=None,
                        help="NUTS target acceptance (default: conf/sampler/<sampler>.yaml)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "joint.md")
    args = parser.parse_args(argv)
    from carestar.runs import package_versions

    results = []
    for name in args.samplers:
        print(f"benchmarking {name} ...", flush=True)
        results.append(bench(name, args.draws, args.tune, args.chains, args.cores, args.seed,
                             args.target_accept))
        print(results[-1], flush=True)
    lines = [
        "# Benchmark: joint model (150 councils x 7 years, 12 items, 3 classes)",
        "",
        f"`python benchmarks/bench_joint.py` ({args.chains} chains x ({args.tune} tune +"
        f" {args.draws} draws), {args.cores} cores, synthetic study seed {args.seed},"
        f" target_accept {args.target_accept or 'from conf/sampler'}).",
        f"Target: sampling under {TARGET_S:.0f} s with a warm compile cache.",
        "",
        f"Machine: {platform.platform()}, {platform.processor() or platform.machine()},"
        f" {os.cpu_count()} CPUs; Python {platform.python_version()}.",
        "Load average (1 min) before/after each timed run is shown: above the core count"
        " means other jobs shared the CPUs and the times are pessimistic.",
        "",
        "| sampler | sample s | target | min ESS bulk | min ESS tail | ESS bulk / s | max r_hat"
        " | divergences | chains agree | compile + short run s | postprocess s | load before/after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['sampler']} | {r['sample_s']:.1f} | {'met' if r['sample_s'] < TARGET_S else 'MISSED'}"
            f" | {r['min_ess_bulk']:.0f} | {r['min_ess_tail']:.0f} | {r['ess_bulk_per_s']:.1f}"
            f" | {r['max_rhat']:.3f} | {r['divergences']:.0f} | {r['chains_agree']}"
            f" | {r['compile_and_short_run_s']:.1f} | {r['postprocess_s']:.1f}"
            f" | {r['load_before'][0]:.1f} / {r['load_after'][0]:.1f} |")
    versions = package_versions()
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())), ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

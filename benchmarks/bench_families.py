"""Sampling time of each ordinal family against the cumulative model (issue 14's target: at
most 1.5x), on the default study with the default sampler.

Each family's model is built from the default config (``python run.py model=ordinal
model.family=F``: the default study, nutpie, 4 chains x 1000 tuning + 1000 draws) and
sampled in this process, the families interleaved (cumulative, acat, sratio, cratio, then
again), so that a machine shared with other jobs slows every family alike and the ratios of
one round stay meaningful when the absolute times do not. Reported per fit: NUTS time (the
sampler's own ``sampling_time``: nutpie's compilation, 10-15 s in every call, excluded),
the mean leapfrog steps per draw, minimum bulk ESS of the monitored parameters and ESS per
second of NUTS time; then each family's ratio to the cumulative fit of the same round, and
the cost of one log density + gradient evaluation per family. Results go to
``benchmarks/results/families.md`` (and ``families.json``).

    python benchmarks/bench_families.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from bench_runs import machine, versions

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run.py's view: models/ importable

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("cumulative", "acat", "sratio", "cratio")
TARGET = 1.5
RESULTS = ROOT / "benchmarks" / "results" / "families.md"


def default_model(family: str):
    """(OrdinalModel, pm.Model, sampler settings, seed, gates) as ``python run.py model=ordinal
    model.family=FAMILY`` builds them on the default study."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["model=ordinal", f"model.family={family}"])
    if not _STUDY:
        _STUDY.append(instantiate(cfg.data))  # the default study, as python run.py loads it
    model = instantiate(cfg.model)
    sampler = OmegaConf.to_container(cfg.sampler, resolve=True)
    gates = OmegaConf.to_container(cfg.diagnostics, resolve=True)
    return model, model.build(model.prepare(_STUDY[0])), sampler, int(cfg.seed), gates


_STUDY: list = []


def fit_once(family: str) -> dict:
    from carestar import diagnostics as diag
    from carestar.sampling import _nuts

    model, pm_model, sampler, seed, gates = default_model(family)
    start = time.perf_counter()
    tree = _nuts(pm_model, {**sampler, "progressbar": False}, seed, None)
    call_s = time.perf_counter() - start
    nuts_s = float(tree["posterior"].attrs["sampling_time"])
    checks = diag.convergence(tree, diag.resolve(tree, model.monitored(tree)), gates)["checks"]
    return {
        "family": family,
        "nuts_s": nuts_s,
        "call_s": call_s,
        "steps_per_draw": float(tree["sample_stats"]["n_steps"].mean()),
        "min_ess_bulk": checks["min_ess_bulk"]["value"],
        "ess_per_s": checks["min_ess_bulk"]["value"] / nuts_s,
        "max_rhat": checks["max_rhat"]["value"],
        "divergences": checks["divergences"]["value"],
    }


def gradient_cost(evaluations: int, repeats: int = 5) -> dict[str, float]:
    """Microseconds per evaluation of the log density and its gradient (numba, as nutpie
    compiles it) at the model's initial point, per family, in this process: what one
    leapfrog step costs, apart from how many steps NUTS takes. Every family is compiled
    first, then timed in turn ``repeats`` times (interleaved, as the runs), the best kept."""
    import pytensor.tensor as pt

    compiled = {}
    for family in FAMILIES:
        pm_model = default_model(family)[1]
        logp = pm_model.logp()
        fn = pm_model.compile_fn([logp, *pt.grad(logp, pm_model.value_vars)], inputs=pm_model.value_vars,
                                 mode="NUMBA", point_fn=False)
        point = pm_model.initial_point()
        values = [point[v.name] for v in pm_model.value_vars]
        fn(*values)
        compiled[family] = (fn, values)
    best = {family: np.inf for family in FAMILIES}
    for _ in range(repeats):
        for family, (fn, values) in compiled.items():
            best[family] = min(best[family], _timed(fn, values, evaluations))
    out = {family: 1e6 * t / evaluations for family, t in best.items()}
    print({f: round(c, 1) for f, c in out.items()}, "us per log density + gradient", flush=True)
    return out


def _timed(fn, values, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn(*values)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds over the families")
    parser.add_argument("--evaluations", type=int, default=2000,
                        help="log density + gradient evaluations timed per family (0: none)")
    parser.add_argument("--append", action="store_true", help="add the rounds to those recorded in families.json")
    options = parser.parse_args(argv)
    record = RESULTS.with_suffix(".json")
    saved = json.loads(record.read_text()) if record.exists() else {"rows": [], "costs": {}}
    costs = gradient_cost(options.evaluations) if options.evaluations else saved["costs"]
    rows = saved["rows"] if options.append else []  # --append: more rounds after the recorded ones
    first = max((r["round"] for r in rows), default=0)
    for r in range(first, first + options.rounds):
        for family in FAMILIES:
            rows.append({"round": r + 1, **fit_once(family)})
            print(rows[-1], flush=True)
    rows = rows or saved["rows"]  # --rounds 0: the recorded runs kept (e.g. to time the gradients again)
    record.write_text(json.dumps({"rows": rows, "costs": costs}, indent=1))
    write_table(rows, max((r["round"] for r in rows), default=0), costs)


def ratios(rows: list[dict], key: str) -> dict[str, list[float]]:
    """Each family's ``key`` over the cumulative run's of the same round."""
    out: dict[str, list[float]] = {f: [] for f in FAMILIES[1:]}
    for r in {row["round"] for row in rows}:
        this = {row["family"]: row for row in rows if row["round"] == r and "error" not in row}
        if "cumulative" not in this:
            continue
        for family in out:
            if family in this:
                out[family].append(this[family][key] / this["cumulative"][key])
    return out


def write_table(rows: list[dict], rounds: int, costs: dict[str, float]) -> None:
    lines = [
        "# Benchmark: the ordinal families",
        "",
        "Model: `python run.py model=ordinal model.family=FAMILY`'s (the default study, 1050 ratings; "
        "the default sampler, nutpie: 4 chains x 1000 tuning + 1000 draws, 2 cores), sampled in one "
        f"process, the families interleaved, {rounds} rounds.",
        "",
        f"Machine: {machine()}. Versions: {versions()}. Date: {time.strftime('%Y-%m-%d')}.",
        "",
        "| round | family | NUTS (s) | sampler call (s) | leapfrog steps / draw "
        "| min bulk ESS | ESS/s (NUTS) | max r_hat | divergences |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['round']} | {r['family']} | failed: {r['error']} |" + " |" * 6)
            continue
        lines.append(
            f"| {r['round']} | {r['family']} | {r['nuts_s']:.1f} | {r['call_s']:.1f} | "
            f"{r['steps_per_draw']:.1f} | {r['min_ess_bulk']:.0f} | {r['ess_per_s']:.0f} | "
            f"{r['max_rhat']:.3f} | {r['divergences']} |"
        )
    time_ratio, step_ratio = ratios(rows, "nuts_s"), ratios(rows, "steps_per_draw")
    ess_ratio = ratios(rows, "ess_per_s")
    lines += [
        "",
        f"Ratio to the cumulative run of the same round (target: NUTS time at most {TARGET}x):",
        "",
        "| family | NUTS time | leapfrog steps / draw | ESS/s | log density + gradient (in-process) "
        "| within the target |",
        "|---|---|---|---|---|---|",
    ]
    for family in FAMILIES[1:]:
        t = time_ratio[family]
        if not t:
            lines.append(f"| {family} | (no complete round) | | | | |")
            continue
        fmt = lambda v: ", ".join(f"{x:.2f}" for x in v)  # noqa: E731
        cost = f"{costs[family] / costs['cumulative']:.2f}" if costs else ""
        lines.append(f"| {family} | {fmt(t)} (median {statistics.median(t):.2f}) | {fmt(step_ratio[family])} | "
                     f"{fmt(ess_ratio[family])} | {cost} | {'yes' if max(t) <= TARGET else 'no'} |")
    if costs:
        lines += ["", "Log density + gradient, in-process (numba, the model's initial point, the families "
                  "timed in turn, the best of 5 x N evaluations): "
                  + ", ".join(f"{f} {c:.1f} us" for f, c in costs.items()) + "."]
    lines += [
        "",
        "NUTS: the sampler's own time (`posterior.attrs['sampling_time']`), compilation excluded. Sampler",
        "call: `pm.sample` with nutpie's compilation (the PyTensor kernels from the compile cache).",
        "Leapfrog steps / draw: the mean over the kept draws (tree size: the posterior's",
        "geometry), so NUTS time = steps x cost of a step, the two columns of the ratio table.",
        "",
        "Reproduce: `python benchmarks/bench_families.py --rounds " + str(rounds) + "`.",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print(f"wrote {RESULTS}")
    print(shlex.join(["ratios", json.dumps(time_ratio)]))


if __name__ == "__main__":
    main()

"""carestar against its peers: the same cumulative-logit model, the same CSV, the same machine.

The model: ``stars ~ x1 + x2 + x3 + x4 + x5 + (1|org)``, a cumulative logit with organisation
intercepts, on a seeded CSV (150 organisations x 7 rows, 4 ordered categories 0..3;
``make_csv``), 4 chains x (1000 tuning + 1000 draws) on 2 cores. Each tool runs in its own
process, as its user would run it:

* carestar: ``python run.py data=csv data.path=DATA.csv 'model.formula="..."'`` (the default
  sampler, nutpie; ``--carestar-samplers nutpie numpyro`` adds ``sampler=numpyro``); its wall
  time is the whole run (diagnostics, PSIS-LOO, figures, report included);
* bambi: ``bmb.Model(formula, data, family="cumulative").fit(...)``, PyMC's NUTS
  (``benchmarks/peer_fits.py``);
* handwritten: the same likelihood written in PyMC by hand, ``pm.sample(nuts_sampler="numpyro")``
  with a JAX device per chain (``benchmarks/peer_fits.py``);
* brms, when ``Rscript -e 'library(brms)'`` works (Debian: ``apt-get install r-cran-brms``):
  ``brm(..., family = cumulative("logit"))`` (``benchmarks/peer_brms.R``).

Measured per tool and round: wall time, the minimum bulk ESS over the model's parameters
(effects, cutpoints, the org SD; not the org intercepts), ESS per second of wall, its ratio to
carestar's in the same round, max r_hat over the same parameters, divergences. Round one is
cold (empty PyTensor, numba and JAX caches, each tool its own), then ``--warm`` rounds keep
each tool's caches; every round runs each tool once, so a change in the machine's load falls
on all of them. Writes ``benchmarks/results/peers.md`` (machine, versions, command, table).

The peers are not needed by carestar or its tests. bambi 0.21 pins ``formulae<0.7``, so
installing the ``bench`` extra where carestar is moves formulae from 0.9 to 0.6.2; carestar's
formula, CSV and model-building tests pass with 0.6.2 (measured 2026-12-04). Either::

    pip install -e ".[bench]"
    python benchmarks/bench_peers.py

or, to leave carestar's environment as it is, a venv of the peers' own (netCDF4: for the
posterior file the benchmark reads back)::

    python3.12 -m venv ../peersvenv && ../peersvenv/bin/pip install bambi numpyro jax netCDF4
    python benchmarks/bench_peers.py --peer-python ../peersvenv/bin/python

Quick trial (the table says it is not the default): ``--draws 50 --tune 50 --warm 1``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_runs import cold_cache_env, machine, versions
from peer_fits import CHAINS, CORES, FORMULA, GROUP, OUTCOME, PARAMETERS, PREDICTORS

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
ROWS_PER_ORG = 7
EFFECTS = (0.8, -0.5, 0.3, 0.0, -0.3)  # x1..x5, on the logit scale
CUTPOINTS = (-1.2, 0.3, 1.6)
ORG_SD = 0.8
DRAWS = TUNE = 1000
CARESTAR_PARAMETERS = ["beta", "cutpoints", f"{GROUP}_sd"]
BRMS_PARAMETERS = "b_x1..b_x5, b_Intercept[1..3], sd_org__Intercept"


def organisations(rows: int) -> int:
    return max(1, round(rows / ROWS_PER_ORG))


def make_csv(path: Path, rows: int = 1050, seed: int = 15):
    """Simulated ratings: ``rows / 7`` organisations x 7 rows, x1..x5 standard normal, org
    intercepts N(0, ORG_SD), stars 0..3 from the cumulative logit with EFFECTS and CUTPOINTS."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_orgs = organisations(rows)
    org = np.repeat(np.arange(n_orgs), ROWS_PER_ORG)
    x = rng.standard_normal((org.size, len(PREDICTORS)))
    eta = x @ np.array(EFFECTS) + rng.normal(0.0, ORG_SD, n_orgs)[org]
    latent = eta + rng.logistic(size=org.size)
    data = pd.DataFrame(x, columns=list(PREDICTORS))
    data.insert(0, GROUP, [f"o{i:03d}" for i in org])
    data[OUTCOME] = np.searchsorted(np.array(CUTPOINTS), latent)
    data.to_csv(path, index=False)
    return data


def carestar_args(csv: Path, run_dir: Path, sampler: str = "nutpie", draws: int = DRAWS, tune: int = TUNE) -> list[str]:
    """``run.py``'s arguments for one carestar run (the default sampler needs no override)."""
    args = ["run.py", "data=csv", f"data.path={csv}", f'model.formula="{FORMULA}"']
    if sampler != "nutpie":
        args.append(f"sampler={sampler}")
    if (draws, tune) != (DRAWS, TUNE):
        args += [f"sampler.draws={draws}", f"sampler.tune={tune}"]
    return [*args, f"hydra.run.dir={run_dir}"]


def peer_command(tool: str, csv: Path, run_dir: Path, options) -> list[str]:
    if tool == "brms":
        return ["Rscript", str(HERE / "peer_brms.R"), str(csv), str(run_dir / "brms.json"),
                str(options.draws), str(options.tune)]
    return [options.peer_python, str(HERE / "peer_fits.py"), tool, str(csv), str(run_dir),
            f"--draws={options.draws}", f"--tune={options.tune}"]


def timed(command: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, result


def posterior_diagnostics(path: Path, names: list[str]) -> dict:
    """Min bulk ESS and max r_hat over ``names`` of a posterior.nc, and its divergences."""
    import arviz as az
    import numpy as np
    import xarray as xr

    with xr.open_datatree(path, engine="netcdf4") as tree:
        post = tree.posterior.to_dataset()[names].load()
        diverging = tree.sample_stats.to_dataset()["diverging"].values if "sample_stats" in tree else np.zeros(1)
    ess, rhat = az.ess(post, method="bulk"), az.rhat(post)
    return {
        "min_ess_bulk": float(min(np.nanmin(ess[n].values) for n in names)),
        "max_rhat": float(max(np.nanmax(rhat[n].values) for n in names)),
        "divergences": int(np.sum(diverging)),
    }


def run_tool(tool: str, csv: Path, work: Path, round_no: int, options) -> dict:
    """One run of ``tool`` (``carestar-<sampler>``, bambi, handwritten, brms), timed."""
    run_dir, env = work / tool / f"run{round_no}", cold_cache_env(work / tool / "cache")
    if tool.startswith("carestar"):
        command = [sys.executable, *carestar_args(csv, run_dir, tool.partition("-")[2], options.draws, options.tune)]
    else:
        command = peer_command(tool, csv, run_dir, options)
        run_dir.mkdir(parents=True)
    wall, result = timed(command, env)
    # carestar exits 3 when a fit fails its diagnostic gates (as a quick trial's will)
    if result.returncode not in ((0, 3) if tool.startswith("carestar") else (0,)):
        tail = (result.stderr or result.stdout).strip().splitlines()
        return {"error": tail[-1] if tail else f"exit {result.returncode}"}
    if tool == "brms":
        return {"wall_s": wall, **json.loads((run_dir / "brms.json").read_text())}
    names = CARESTAR_PARAMETERS if tool.startswith("carestar") else PARAMETERS[tool]
    return {"wall_s": wall, **posterior_diagnostics(run_dir / "posterior.nc", names)}


def peer_python_has(python: str, *modules: str) -> bool:
    code = "; ".join(f"import {m}" for m in modules)
    return subprocess.run([python, "-c", code], capture_output=True).returncode == 0


def brms_installed() -> bool:
    if shutil.which("Rscript") is None:
        return False
    return subprocess.run(["Rscript", "-e", "library(brms)"], capture_output=True).returncode == 0


def available_tools(options) -> tuple[list[str], list[str]]:
    """The tools to run, and those asked for that are not installed."""
    carestar = [f"carestar-{s}" for s in options.carestar_samplers]
    installed = {
        "bambi": lambda: peer_python_has(options.peer_python, "bambi"),
        "handwritten": lambda: peer_python_has(options.peer_python, "pymc", "numpyro", "jax"),
        "brms": brms_installed,
    }
    peers = [t for t in options.peers if installed[t]()]
    return carestar + peers, [t for t in options.peers if t not in peers]


def with_ratios(rows: list[dict], reference: str) -> list[dict]:
    """Each row's ESS/s over the reference tool's in the same round."""
    base = {r["round"]: r["ess_per_s"] for r in rows if r["tool"] == reference and "ess_per_s" in r}
    for r in rows:
        if "ess_per_s" in r and base.get(r["round"]):
            r["ratio"] = r["ess_per_s"] / base[r["round"]]
    return rows


def run_rounds(tools: list[str], csv: Path, work: Path, options) -> list[dict]:
    rows = []
    for i in range(1 + options.warm):
        kind = "cold" if i == 0 else f"warm {i}"
        for tool in tools:
            row = {"tool": tool, "round": kind, **run_tool(tool, csv, work, i, options)}
            if "wall_s" in row:
                row["ess_per_s"] = row["min_ess_bulk"] / row["wall_s"]
            rows.append(row)
            print(row, flush=True)
    rows.sort(key=lambda r: tools.index(r["tool"]))
    return with_ratios(rows, tools[0])


def peer_versions(python: str, with_brms: bool) -> str:
    code = ("from importlib import metadata as m\n"
            "for n in ['bambi', 'formulae', 'pymc', 'pytensor', 'numpyro', 'jax', 'arviz']:\n"
            "    try: print(n, m.version(n))\n"
            "    except m.PackageNotFoundError: pass")
    found = subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.split("\n")
    if with_brms:
        brms = subprocess.run(["Rscript", "-e", 'cat(format(packageVersion("brms")))'], capture_output=True, text=True)
        found.append(f"brms {brms.stdout.strip()}")
    return ", ".join(line for line in found if line)


def carestar_version() -> str:
    from importlib import metadata

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    formulae = metadata.version("formulae")
    return f"carestar {metadata.version('carestar')} ({commit.stdout.strip() or 'no git'}), formulae {formulae}"


def table_row(r: dict) -> str:
    if "error" in r:
        return f"| {r['tool']} | {r['round']} | failed: {r['error']} | | | | | |"
    ratio = f"{r['ratio']:.2f}" if "ratio" in r else ""
    return (f"| {r['tool']} | {r['round']} | {r['wall_s']:.1f} | {r['min_ess_bulk']:.0f} | {r['ess_per_s']:.1f} | "
            f"{ratio} | {r['max_rhat']:.3f} | {r['divergences']} |")


def notes(options, missing: list[str]) -> list[str]:
    sets = [f"carestar: {', '.join(CARESTAR_PARAMETERS)} from its posterior.nc (its own gate in diagnostics.json "
            f"also covers the org intercepts' {GROUP}_z, so its figure there can be lower)",
            f"bambi: {', '.join(PARAMETERS['bambi'])}", f"handwritten: {', '.join(PARAMETERS['handwritten'])}",
            f"brms: {BRMS_PARAMETERS} (posterior::summarise_draws)"]
    lines = [
        "Wall time: the whole process, as its user runs it. carestar's includes everything a run writes",
        "(log likelihood and posterior predictive, diagnostics, PSIS-LOO, figures, report); a peer's",
        "is import, data, model, compilation, sampling and saving its posterior (brms: and its summary).",
        "Cold: empty PyTensor, numba and JAX caches (each tool its own); warm: that tool's caches kept.",
        "brms compiles its Stan model again in every run. Tools took turns, round by round (interleaved).",
        "Ratio: the tool's ESS/s over carestar's (the first carestar row) in the same round.",
        "Min bulk ESS and max r_hat cover the effects, cutpoints and org SD, not the org intercepts:",
        *(f"- {s}" for s in sets),
    ]
    if "brms" in missing:
        lines += ["", "brms: not run, `Rscript -e 'library(brms)'` failed here (Debian: apt-get install r-cran-brms)."]
    return lines


def write_table(options, rows: list[dict], missing: list[str], command: str) -> None:
    quick = (options.draws, options.tune) != (DRAWS, TUNE)
    n_orgs = organisations(options.rows)
    size = f"{CHAINS} chains x ({options.tune} tuning + {options.draws} draws), {CORES} cores"
    lines = [
        "# carestar and its peers: one cumulative-logit model, one CSV", "",
        f"Model: `{FORMULA}`, cumulative logit, {n_orgs * ROWS_PER_ORG} rows ({n_orgs} organisations "
        f"x {ROWS_PER_ORG}), {size}."
        + (f" **Not the default {TUNE} + {DRAWS}: a quick trial, not a measurement.**" if quick else ""), "",
        f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d %H:%M')}.", "",
        f"Versions: {carestar_version()}, {versions()}; peers ({options.peer_python}): "
        f"{peer_versions(options.peer_python, 'brms' not in missing and 'brms' in options.peers)}.", "",
        f"Command: `{command}`", "",
        "| tool | round | wall (s) | min bulk ESS | ESS/s (wall) | ratio to carestar | max r_hat | divergences |",
        "|---|---|---|---|---|---|---|---|",
        *(table_row(r) for r in rows),
        *(f"| {tool} | | not installed | | | | | |" for tool in missing),
        "", *notes(options, missing), "",
    ]
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {options.out}")


def parse(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=3, help="warm rounds after the cold one")
    parser.add_argument("--rows", type=int, default=1050, help=f"rows of the CSV ({ROWS_PER_ORG} per organisation)")
    parser.add_argument("--draws", type=int, default=DRAWS)
    parser.add_argument("--tune", type=int, default=TUNE)
    parser.add_argument("--carestar-samplers", nargs="+", default=["nutpie"], choices=["nutpie", "numpyro", "pymc"])
    parser.add_argument("--peers", nargs="*", default=["bambi", "handwritten", "brms"],
                        choices=["bambi", "handwritten", "brms"])
    parser.add_argument("--peer-python", default=sys.executable,
                        help="the interpreter with bambi / numpyro (default: this one)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "peers.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    options = parse(argv)
    tools, missing = available_tools(options)
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "ratings.csv"
        make_csv(csv, options.rows)
        rows = run_rounds(tools, csv, Path(tmp), options)
    command = shlex.join(["python", "benchmarks/bench_peers.py", *(sys.argv[1:] if argv is None else argv)])
    write_table(options, rows, missing, command)


if __name__ == "__main__":
    main()

"""Wall time and sampling efficiency of whole runs (``python run.py ...``), per sampler.

Each case is a command line; each is run cold (fresh, empty PyTensor, numba and JAX compile
caches) once and warm (the caches kept) ``--warm`` times, in subprocesses, exactly as a
user types it. The samplers take turns (cold: each sampler once, then each warm round
each sampler once), so a change in the machine's load falls on all of them. Reported: the command's wall time, the sampling stage's time, the
minimum bulk ESS and ESS per second of sampling and of the whole command, max r_hat and divergences, read back
from the run's own run.json and diagnostics.json. Results go to
``benchmarks/results/<case>.md`` with the machine and the package versions.

    python benchmarks/bench_runs.py ordinal                 # the issue-2 target
    python benchmarks/bench_runs.py housing cbpp --warm 2   # the issue-3 targets
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOUSING_LEVELS = "data.levels={Sat:[Low,Medium,High],Infl:[Low,Medium,High],Type:[Tower,Apartment,Atrium,Terrace],Cont:[Low,High]}"
CASES = {
    "ordinal": ["model=ordinal"],
    "housing": [
        "model=ordinal", "data=csv", "data.path=tests/data/reference/housing.csv",
        'model.formula="Sat ~ Infl + Type + Cont"', "data.weights=Freq", HOUSING_LEVELS,
    ],
    "cbpp": [
        "model=binomial", "data=csv", "data.path=tests/data/reference/cbpp.csv",
        'model.formula="incidence | trials(size) ~ C(period) + (1|herd)"',
    ],
}
# sampler label -> its overrides (nutpie-jax: nutpie with the JAX backend instead of numba)
SAMPLERS = {
    "pymc": ["sampler=pymc"],
    "nutpie": ["sampler=nutpie"],
    "nutpie-jax": ["sampler=nutpie", "++sampler.backend=jax"],
    "numpyro": ["sampler=numpyro"],
}


def cold_cache_env(cache: Path) -> dict[str, str]:
    """The environment of a run whose PyTensor, numba and JAX compile caches live in
    ``cache`` (empty on a cold run, kept for the warm ones)."""
    env = {
        **os.environ,
        "PYTENSOR_FLAGS": f"base_compiledir={cache / 'pytensor'}",
        "NUMBA_CACHE_DIR": str(cache / "numba"),
        "XDG_CACHE_HOME": str(cache / "xdg"),  # JAX's compile cache (carestar.jax_devices)
        "PYTHONWARNINGS": "ignore",
    }
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    return env


def run_once(args: list[str], sampler: str, cache: Path, out: Path) -> dict:
    env = cold_cache_env(cache)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "run.py", *args, *SAMPLERS[sampler], f"hydra.run.dir={out}"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    wall = time.perf_counter() - start
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr else "failed"}
    manifest = json.loads((out / "run.json").read_text())
    checks = json.loads((out / "diagnostics.json").read_text())["convergence"]["checks"]
    sample_s = manifest["wall_time_s"]["sample"]
    return {
        "wall_s": wall,
        "sample_s": sample_s,
        "min_ess_bulk": checks["min_ess_bulk"]["value"],
        "ess_per_s": checks["min_ess_bulk"]["value"] / sample_s,
        "ess_per_wall_s": checks["min_ess_bulk"]["value"] / wall,
        "max_rhat": checks["max_rhat"]["value"],
        "divergences": checks["divergences"]["value"],
    }


def sampler_default(name: str, key: str):
    """A setting of ``conf/sampler/<name>.yaml`` (what ``python run.py sampler=<name>`` uses)."""
    from omegaconf import OmegaConf

    return OmegaConf.load(ROOT / "conf" / "sampler" / f"{name}.yaml")[key]


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def versions() -> str:
    from importlib import metadata

    names = ["pymc", "pytensor", "nutpie", "numpyro", "jax", "arviz"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(found)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+", choices=sorted(CASES))
    parser.add_argument("--samplers", nargs="+", default=["pymc", "nutpie", "numpyro"],
                        choices=list(SAMPLERS))
    parser.add_argument("--warm", type=int, default=2, help="warm runs after the cold one")
    options = parser.parse_args(argv)
    for case in options.cases:
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            for i, kind in enumerate(["cold"] + ["warm"] * options.warm):
                for sampler in options.samplers:
                    row = run_once(CASES[case], sampler, tmp / sampler / "cache", tmp / sampler / f"run{i}")
                    rows.append({"sampler": sampler, "cache": kind, **row})
                    print(case, rows[-1], flush=True)
        rows.sort(key=lambda r: options.samplers.index(r["sampler"]))
        write_table(case, rows, f"--samplers {' '.join(options.samplers)} --warm {options.warm}")


def write_table(case: str, rows: list[dict], options: str = "") -> None:
    lines = [
        f"# Benchmark: {case}",
        "",
        f"Command: `python run.py {shlex.join(CASES[case])} sampler=SAMPLER` "
        "(4 chains x 1000 tuning + 1000 draws, 2 cores).",
        "",
        f"Machine: {machine()}. Versions: {versions()}. Date: {time.strftime('%Y-%m-%d')}.",
        "",
        "| sampler | cache | wall time (s) | sampling (s) | min bulk ESS | ESS/s (sampling) | ESS/s (wall) | max r_hat | divergences |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['sampler']} | {r['cache']} | failed: {r['error']} | | | | | | |")
            continue
        lines.append(
            f"| {r['sampler']} | {r['cache']} | {r['wall_s']:.1f} | {r['sample_s']:.1f} | "
            f"{r['min_ess_bulk']:.0f} | {r['ess_per_s']:.0f} | {r['ess_per_wall_s']:.0f} | {r['max_rhat']:.3f} | {r['divergences']} |"
        )
    lines += [
        "",
        "Wall time: the whole command (start-up, data, compilation, sampling, log likelihood and",
        "posterior predictive, diagnostics, LOO, figures, files). Sampling: the run's sample stage",
        "(compilation and the log likelihood / posterior predictive passes included). Cold: empty",
        "PyTensor, numba and JAX caches, as on a new machine; warm: the caches of the cold run kept.",
        "The samplers took turns, round by round (interleaved).",
        "",
        f"Reproduce: `python benchmarks/bench_runs.py {case} {options}`.".replace(" `.", "`."),
        "",
    ]
    out = ROOT / "benchmarks" / "results" / f"{case}.md"
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

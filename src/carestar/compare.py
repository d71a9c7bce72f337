"""``task=compare``: posteriors of several runs side by side.

Given run directories (or a Hydra multirun folder, expanded to its complete jobs),
``compare_runs`` writes into a run directory of its own:

- ``tables/loo.csv``: PSIS-LOO comparison (elpd_loo, SE, difference from the best run
  and its SE, stacking weight, p_loo, Pareto k warnings); only for runs fitted to the
  same data (same ``data_hash``);
- ``figures/forest_shared.png``: the parameters every run shares (same name, dims and
  coordinates), one colour per run, on the panels each run recorded (``carestar.forest``);
- ``tables/differences.csv``: for each shared scalar parameter and each pair of runs,
  the posterior mean difference (later run minus earlier run), its 90% interval and the
  probability of direction, treating the runs' draws as independent;
- ``tables/diagnostics.csv``: each run's convergence diagnostics, side by side;
- ``report.md`` and the manifest ``run.json`` (task=compare, the inputs and their hashes).

Every refusal (fewer than two runs, a path that is not a complete run, different data,
no log likelihood) is raised as ``CarestarError`` before anything is written, by
``carestar.compare_inputs``, which finds, checks and loads the runs. Every ArviZ call is
in ``carestar.diagnostics``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from carestar import diagnostics as diag
from carestar.errors import ConfigError
from carestar.figures import save_figure
from carestar.compare_inputs import SAMPLE_DIMS, Run, load_runs
from carestar.compare_report import best_run, write_compare_report
from carestar.forest import forest_figure_runs
from carestar.runs import POSTERIOR, RunDirectory, Stopwatch, package_versions

MAX_ELEMENTS = 40  # variables with more elements (e.g. one per organisation) are left out of the plot and table
PARETO_K_MAX = 0.7
DEFAULT_GATES = {"max_rhat": 1.01, "min_ess_bulk": 400, "min_ess_tail": 400, "max_divergences": 0, "min_bfmi": 0.3}


# --- shared parameters and their differences ----------------------------------------------


def shared_variables(runs: list[Run], max_elements: int = MAX_ELEMENTS) -> tuple[list[str], list[str]]:
    """Posterior variables every run has with the same dims and coordinates.

    Returns (kept, left_out): variables with more than ``max_elements`` elements per draw
    (one per organisation, per observation) are left out of the plot and the table.
    """
    first = runs[0].tree.posterior
    kept, left_out = [], []
    for name, var in first.data_vars.items():
        if not all(name in run.tree.posterior.data_vars for run in runs[1:]):
            continue
        if not all(_same_shape(var, run.tree.posterior[name]) for run in runs[1:]):
            continue
        size = int(np.prod([n for d, n in var.sizes.items() if d not in SAMPLE_DIMS]))
        (kept if size <= max_elements else left_out).append(name)
    return kept, left_out


def _same_shape(a: xr.DataArray, b: xr.DataArray) -> bool:
    dims_a = [d for d in a.dims if d not in SAMPLE_DIMS]
    dims_b = [d for d in b.dims if d not in SAMPLE_DIMS]
    if dims_a != dims_b:
        return False
    for dim in dims_a:
        if a.sizes[dim] != b.sizes[dim]:
            return False
        if dim in a.coords and dim in b.coords:
            if not np.array_equal(np.asarray(a.coords[dim].values), np.asarray(b.coords[dim].values)):
                return False
        elif (dim in a.coords) != (dim in b.coords):
            return False
    return True


def _scalars(var: xr.DataArray, name: str) -> dict[str, np.ndarray]:
    """Each element of ``var`` as flat draws, labelled ``name[coord, coord]``."""
    dims = [d for d in var.dims if d not in SAMPLE_DIMS]
    stacked = var.stack(__sample__=[d for d in SAMPLE_DIMS if d in var.dims]).transpose(*dims, "__sample__")
    if not dims:
        return {name: np.asarray(stacked.values, dtype=float)}
    values = np.asarray(stacked.values, dtype=float)
    coords = [var.coords[d].values if d in var.coords else np.arange(var.sizes[d]) for d in dims]
    out = {}
    for index in itertools.product(*(range(len(c)) for c in coords)):
        label = ", ".join(str(coords[i][j]) for i, j in enumerate(index))
        out[f"{name}[{label}]"] = values[index]
    return out


def probability_of_direction(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """P(b > a) for independent draws of a and b (ties count half), exactly; and max(P, 1 - P)."""
    a_sorted = np.sort(a)
    below = np.searchsorted(a_sorted, b, side="left")
    not_above = np.searchsorted(a_sorted, b, side="right")
    p_greater = float(np.mean((below + not_above) / 2) / a.size)
    return p_greater, max(p_greater, 1.0 - p_greater)


def difference_draws(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, repeats: int = 4) -> np.ndarray:
    """Draws of b - a with a and b independent: random pairings that use every draw equally often."""
    m = max(a.size, b.size) * repeats
    ia = rng.permutation(np.arange(m) % a.size)
    ib = rng.permutation(np.arange(m) % b.size)
    return b[ib] - a[ia]


def differences_table(
    runs: list[Run], variables: list[str], *, prob: float = diag.CI_PROB, seed: int = 0
) -> pd.DataFrame:
    """Each shared scalar parameter, each pair of runs (a listed before b): b - a."""
    rng = np.random.default_rng(seed)
    scalars = [
        {k: v for name in variables for k, v in _scalars(run.tree.posterior[name], name).items()} for run in runs
    ]
    tail = (1 - prob) / 2
    lo_name, hi_name = f"eti{round(prob * 100)}_lb", f"eti{round(prob * 100)}_ub"
    rows = []
    for (i, run_a), (j, run_b) in itertools.combinations(enumerate(runs), 2):
        for parameter, a in scalars[i].items():
            b = scalars[j][parameter]
            a, b = a[np.isfinite(a)], b[np.isfinite(b)]
            diff = difference_draws(a, b, rng)
            p_greater, pd_ = probability_of_direction(a, b)
            lo, hi = np.quantile(diff, [tail, 1 - tail])
            rows.append({
                "parameter": parameter,
                "run_a": run_a.label,
                "run_b": run_b.label,
                "mean_a": float(a.mean()),
                "mean_b": float(b.mean()),
                "difference": float(b.mean() - a.mean()),
                lo_name: float(lo),
                hi_name: float(hi),
                "p_b_greater": p_greater,
                "prob_direction": pd_,
            })
    return pd.DataFrame(rows)


# --- diagnostics side by side -------------------------------------------------------------


def diagnostics_table(runs: list[Run]) -> pd.DataFrame:
    """Each run's convergence checks as its own run reported them (``diagnostics.json``)."""
    rows = []
    for run in runs:
        file = run.path / "diagnostics.json"
        if file.is_file():
            report = json.loads(file.read_text())
            checks = report.get("convergence", {}).get("checks", {})
            passed = report.get("passed", run.manifest.get("diagnostics_passed"))
            loo = report.get("loo") or {}
        else:  # an older run: recompute with the default gates
            report = diag.convergence(run.tree, diag.resolve(run.tree, None), DEFAULT_GATES)
            checks, passed, loo = report["checks"], report["passed"], {}
        value = lambda name: checks.get(name, {}).get("value", np.nan)  # noqa: E731
        rows.append({
            "run": run.label,
            "max_rhat": value("max_rhat"),
            "min_ess_bulk": value("min_ess_bulk"),
            "min_ess_tail": value("min_ess_tail"),
            "divergences": value("divergences"),
            "min_bfmi": value("min_bfmi"),
            "n_pareto_k_high": loo.get("n_pareto_k_high", np.nan),
            "passed": bool(passed),
            "chains": int(run.tree.posterior.sizes.get("chain", 0)),
            "draws": int(run.tree.posterior.sizes.get("draw", 0)),
        })
    return pd.DataFrame(rows).set_index("run")


# --- the task -----------------------------------------------------------------------------



def compare_runs(
    sources: list[str | Path],
    out: Path,
    *,
    loo: bool = True,
    pareto_k_max: float = PARETO_K_MAX,
    max_elements: int = MAX_ELEMENTS,
    seed: int = 0,
    command: str | None = None,
) -> dict[str, Any]:
    """Compare fitted runs (directories, or multirun folders expanded to their complete jobs).

    Writes ``tables/loo.csv`` (when ``loo``), ``figures/forest_shared.png``,
    ``tables/differences.csv``, ``tables/diagnostics.csv``, ``report.md`` and the manifest
    ``run.json`` into ``out``, staged so that a failed comparison leaves nothing that looks
    complete. ``loo=False`` compares posteriors only, and then allows runs fitted to
    different data. Returns the manifest.
    """
    clock = Stopwatch()
    with clock.stage("load"):
        runs, skipped, loglik_var = load_runs(sources, loo=loo)
    run_dir = RunDirectory(Path(out))
    with clock.stage("compare"):
        loo_table = None
        if loo:
            elpds = {run.label: diag.loo_pointwise(run.tree, loglik_var, moment_matched(run)) for run in runs}
            loo_table = ranked_loo(elpds, {run.label: passed_gates(run) for run in runs}, pareto_k_max)
        variables, left_out = shared_variables(runs, max_elements)
        differences = differences_table(runs, variables, seed=seed)
        diagnostics = diagnostics_table(runs)
    with clock.stage("write"):
        tables = {}
        if loo_table is not None:
            loo_table.to_csv(run_dir.file("tables/loo.csv"))
            tables["loo"] = "tables/loo.csv"
        differences.to_csv(run_dir.file("tables/differences.csv"), index=False)
        tables["differences"] = "tables/differences.csv"
        diagnostics.to_csv(run_dir.file("tables/diagnostics.csv"))
        tables["diagnostics"] = "tables/diagnostics.csv"
        figure = forest_figure_runs({run.label: run.tree for run in runs}, variables,
                                    {run.label: run.manifest.get("forest_panels") for run in runs},
                                    "Shared parameters of the runs")
        forest = None if figure is None else save_figure(figure, run_dir.folder("figures") / "forest_shared.png")
        write_compare_report(
            run_dir.file("report.md"), runs=runs, skipped=skipped, loo_table=loo_table, loglik_var=loglik_var,
            variables=variables, left_out=left_out, differences=differences, diagnostics=diagnostics,
            forest=forest is not None, command=command, pareto_k_max=pareto_k_max, max_elements=max_elements,
        )
    manifest = {
        "task": "compare",
        "inputs": [_input_record(run) for run in runs],
        "skipped": skipped,
        "loo": loo,
        "loo_variable": loglik_var,
        "shared_parameters": variables,
        "left_out_parameters": left_out,
        "best_by_loo": best_run(loo_table),
        "failed_gates": [run.label for run in runs if not passed_gates(run)],
        "tables": tables,
        "figures": {"forest_shared": "figures/forest_shared.png"} if forest is not None else {},
        "seed": seed,
        "git": run_dir.git_record(),
        "versions": package_versions(),
        "command": command,
        "argv": sys.argv,
        "wall_time_s": {**clock.times, "total": clock.total()},
    }
    run_dir.complete(manifest)
    print(f"carestar: compared {len(runs)} runs; written to {out}")
    if loo_table is not None:
        best = best_run(loo_table)
        print(f"  best by LOO: {best}" if best else "  best by LOO: none (no run passed its diagnostic gates)")
    for label in manifest["failed_gates"]:
        print(f"  not ranked (failed its diagnostic gates): {label}")
    return manifest


def moment_matched(run: Run) -> list[dict[str, Any]]:
    """The units the run's own PSIS-LOO moment-matched (``diagnostics.json``), none if absent."""
    file = run.path / "diagnostics.json"
    loo = json.loads(file.read_text()).get("loo") if file.exists() else None
    return (loo or {}).get("moment_matched") or []


def passed_gates(run: Run) -> bool:
    """Whether the run passed its diagnostic gates, as it recorded them (``diagnostics.json``,
    else ``run.json``); a run that says nothing has not shown that it passed."""
    file = run.path / "diagnostics.json"
    if file.is_file():
        return bool(json.loads(file.read_text()).get("passed", False))
    return bool(run.manifest.get("diagnostics_passed", False))


def ranked_loo(elpds: dict[str, Any], passed: dict[str, bool], pareto_k_max: float) -> pd.DataFrame:
    """The LOO table: the runs that passed their gates ranked (best first, stacking weights
    among them), then the failed ones, listed with their own elpd but no rank, weight or
    difference: a run whose draws failed the gates is never the best one."""
    eligible = {label: e for label, e in elpds.items() if passed[label]}
    if len(eligible) >= 2:
        table = diag.compare_loo(eligible, pareto_k_max)
    else:
        table = pd.DataFrame(
            [{"run": label, "rank": 0, **diag.loo_alone(e, pareto_k_max), "elpd_diff": 0.0, "dse": 0.0,
              "weight": 1.0} for label, e in eligible.items()],
            columns=["run", "rank", "elpd_loo", "se", "elpd_diff", "dse", "weight", "p_loo",
                     "n_pareto_k_high", "max_pareto_k", "n_obs", "n_draws"],
        ).set_index("run")
    failed = [{"run": label, **diag.loo_alone(e, pareto_k_max)} for label, e in elpds.items() if not passed[label]]
    table["passed_gates"] = True
    if failed:
        rows = pd.DataFrame(failed).set_index("run").assign(passed_gates=False)
        table = pd.concat([table, rows]) if len(table) else rows.reindex(columns=list(table.columns))
        table.loc[rows.index, "passed_gates"] = False
    table.index.name = "run"
    return table


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

def _input_record(run: Run) -> dict[str, Any]:
    m = run.manifest
    return {
        "label": run.label,
        "path": str(run.path.resolve()),
        "model": m.get("model"),
        "data": m.get("data"),
        "data_hash": m.get("data_hash"),
        "config_hash": m.get("config_hash"),
        "posterior_sha256": file_sha256(run.path / POSTERIOR),
        "seed": m.get("seed"),
        "sampler": m.get("sampler"),
        "diagnostics_passed": m.get("diagnostics_passed"),
        "git": m.get("git"),
        "overrides": run.overrides,
    }


def compare_task(cfg, run_path: Path) -> dict[str, Any]:
    """``python run.py task=compare runs=[A,B]`` or ``runs=multirun/...`` (Hydra entry)."""
    from omegaconf import OmegaConf

    runs = cfg.get("runs")
    if runs is None or runs == "" or (not isinstance(runs, str) and len(runs) == 0):
        raise ConfigError(
            "task=compare needs the runs to compare: runs=[outputs/.../A,outputs/.../B] or runs=multirun/..."
        )
    sources = [runs] if isinstance(runs, str) else [str(r) for r in OmegaConf.to_container(runs, resolve=True)]
    options = cfg.get("compare") or {}
    return compare_runs(
        sources,
        Path(run_path),
        loo=bool(options.get("loo", True)),
        pareto_k_max=float(cfg.get("diagnostics", {}).get("max_pareto_k", PARETO_K_MAX)),
        max_elements=int(options.get("max_elements", MAX_ELEMENTS)),
        seed=int(cfg.get("seed", 0)),
        command=_command_line(),
    )


def _command_line() -> str | None:
    try:
        from hydra.core.hydra_config import HydraConfig

        return " ".join(["python run.py", *(shlex.quote(o) for o in HydraConfig.get().overrides.task)])
    except (ImportError, ValueError):
        return None

"""``task=sbc``: simulation-based calibration of a model's fit (Talts et al. 2018; Modrak et al. 2023).

Replication ``i`` of ``n`` (settings under ``sbc`` in ``conf/config.yaml``):

1. ``theta_i ~ p(theta)`` and ``y_i ~ p(y | theta_i)``: draw ``i`` of the model's own prior
   predictive (``pm.sample_prior_predictive`` on ``model.build`` of the configured data's
   design: the same rows, covariates, groups and rating regimes, a simulated outcome). A
   model whose likelihood is a ``pm.Potential`` (latent classes) simulates with its own
   generator, and its classes are put in a canonical order in truths and draws alike
   (``carestar.sbc_problem``).
   ``sbc.simulator`` overrides settings of the model (``sbc.simulator.priors...``) for the
   simulation only: a deliberately mismatched model, to check that the check can fail.
2. The posterior ``p(theta | y_i)`` by the configured NUTS sampler, compiled once
   (``carestar.refit``), with short chains: ``sbc.chains`` x (``sbc.tune`` + ``sbc.draws``).
3. Thinning: the ``N = chains * draws`` pooled draws are thinned to ``L = sbc.ranks`` evenly
   spaced ones (every ``N / L``-th). They are near-independent when every monitored
   parameter's bulk ESS is at least ``L`` (the ESS gate, ``sbc.gates.min_ess_bulk``, defaults
   to ``L``): then draws ``N / L`` apart are at least ``N / ESS`` apart.
4. The rank of every element of every monitored parameter (``model.monitored``): the number
   of thinned draws below ``theta_i``, ``0..L``. If the fit is right, each rank is uniform on
   ``0..L`` (the true value is one more draw from the same posterior).

Uniformity: each element's PIT values ``(rank + 1/2) / (L + 1)`` across the replications are
tested with ArviZ's ``pot_c`` test; the p-values are adjusted by Holm's rule over every
element tested (family-wise error ``sbc.alpha``). The verdict fails (exit status 3) if any
element is rejected, or if more than ``sbc.max_failed_share`` of the fits failed their gates
or raised an error. Failed fits keep their ranks in the test (dropping them would select on
the data) and are counted and listed in ``sbc.json`` and ``tables/replications.csv``.

Each replication's ranks and gates are written to ``replications/rep_NNNNN.json`` as soon
as it ends; ``sbc.resume=RUN_DIR`` (an interrupted or complete SBC run) reuses that run's
replications made with the same model, data, sampler, seed and settings, and runs the rest.
Replication ``i`` gets the same data set whatever ``sbc.n`` (PyMC draws the prior predictive
one draw after another from the seed); a hash of it in each record checks that on resume.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from carestar import diagnostics as diag
from carestar.errors import ConfigError
from carestar.interrupts import RunInterrupted, check_complete, interruptible
from carestar.refit import check_refit_sampler
from carestar.runs import STAGING, RunDirectory, Stopwatch, config_hash, package_versions
from carestar.sbc_problem import problem

log = logging.getLogger("carestar")

REPLICATIONS = "replications"
MAX_PANELS = 12  # elements per ECDF figure (the test covers them all)
SETTINGS = {"n", "chains", "tune", "draws", "ranks", "alpha", "max_failed_share", "gates", "simulator", "resume"}


def sbc_task(cfg: DictConfig, run_path: Path) -> dict[str, Any]:
    """Run (or resume) the replications, then write ranks, tests, figures and the verdict."""
    from carestar.tasks import command_line

    clock = Stopwatch()
    settings = _settings(cfg)
    sampler = {**OmegaConf.to_container(cfg.sampler, resolve=True), "progressbar": False, "milestones": False,
               **{k: settings[k] for k in ("chains", "tune", "draws")}}
    check_refit_sampler(sampler)
    with clock.stage("load"):
        data = instantiate(cfg.data)
        model = instantiate(cfg.model)
        if not model.samples:
            raise ConfigError(f"task=sbc needs a sampled model; model={model.name} is fitted by its own estimator")
        design = model.prepare(data)
        if getattr(design, "weights", None) is not None:
            raise ConfigError("task=sbc simulates one outcome per row: it does not take frequency weights "
                              "(data.weights); expand the rows instead")
        if getattr(design, "cs", None) is not None and getattr(model, "family", None) == "cumulative":
            raise ConfigError("task=sbc: a cumulative model with cs() terms has its thresholds restricted to "
                              "orders that hold at every row (carestar.category_specific), which prior draws do "
                              "not respect; check model.family=acat, sratio or cratio instead")
        simulating = instantiate(OmegaConf.merge(cfg.model, settings["simulator"])) if settings["simulator"] else model
    fingerprint = _fingerprint(cfg, data.data_hash, sampler, settings)
    run = RunDirectory(run_path)
    done = _resume(settings["resume"], fingerprint, run, settings["n"])
    with clock.stage("build"):
        sim_design = design if simulating is model else simulating.prepare(data)
        plan = problem(model, design, simulating, sim_design, settings["n"], sampler, int(cfg.seed))
    names = plan.names or _monitored(model, plan.truths)
    truths, simulated = plan.truths, plan.simulated
    n, L = settings["n"], settings["ranks"]
    _check_reused(done, simulated, settings["resume"])
    print(f"carestar: sbc of model={model.name} on {data.source}: {n} replications "
          f"({len(done)} reused), {sampler['chains']} chains x ({sampler['tune']} + {sampler['draws']}) "
          f"with {sampler['nuts_sampler']}, ranks out of {L} thinned draws")
    try:
        with clock.stage("replications"), interruptible() as received:
            for i in range(n):
                if i in done:
                    continue
                done[i] = _replicate(i, plan, simulated[i], truths, names, sampler, settings, cfg, received)
                done[i].update(fingerprint=fingerprint, data_sha=_sha(simulated[i]))
                run.write_json(f"{REPLICATIONS}/rep_{i:05d}.json", done[i])
                status = "gates passed" if done[i]["passed"] else f"FAILED {', '.join(done[i]['failed'])}"
                print(f"carestar: sbc replication {i + 1}/{n}: {status} ({done[i]['wall_s']:.1f} s)", flush=True)
    except RunInterrupted as stop:
        run.interrupted({**_manifest(cfg, clock, data, model, sampler, None, run), "interrupted": str(stop)})
        print(f"carestar: sbc {stop} after {len(done)} of {n} replications (exit status {stop.exit_status}); "
              f"resume with sbc.resume={run_path}", file=sys.stderr)
        raise
    with clock.stage("write"):
        verdict = _write_results(run, done, truths, names, settings, model.name)
        (run.file("report.md")).write_text(_report(model.name, data, command_line(), sampler, settings, verdict))
    manifest = _manifest(cfg, clock, data, model, sampler, verdict["passed"], run)
    run.complete(manifest)
    print(f"carestar: sbc {'PASSED' if verdict['passed'] else 'FAILED (exit status 3)'}: {verdict['summary']}; "
          f"run written to {run_path}")
    return manifest


def _settings(cfg: DictConfig) -> dict[str, Any]:
    settings = OmegaConf.to_container(cfg.get("sbc") or {}, resolve=True)
    if unknown := set(settings) - SETTINGS:
        raise ConfigError(f"sbc.{sorted(unknown)[0]} is not an sbc setting; expected one of {', '.join(sorted(SETTINGS))}")
    for key in ("n", "chains", "tune", "draws", "ranks"):
        if not isinstance(settings.get(key), int) or isinstance(settings[key], bool) or settings[key] < 1:
            raise ConfigError(f"sbc.{key}={settings.get(key)!r}: expected a whole number >= 1")
    if settings["chains"] * settings["draws"] < settings["ranks"]:
        raise ConfigError(f"sbc.ranks={settings['ranks']} is more than the {settings['chains']} x "
                          f"{settings['draws']} draws of a fit; expected at most chains x draws")
    for key, low, high in (("alpha", 0.0, 1.0), ("max_failed_share", 0.0, 1.0)):
        if not isinstance(settings.get(key), int | float) or not low <= settings[key] <= high:
            raise ConfigError(f"sbc.{key}={settings.get(key)!r}: expected a number in [{low}, {high}]")
    gates = {"max_rhat": 1.05, "min_ess_bulk": settings["ranks"], "min_ess_tail": 0, "max_divergences": 0,
             "min_bfmi": 0.2}
    if unknown := set(settings.get("gates") or {}) - set(gates):
        raise ConfigError(f"sbc.gates.{sorted(unknown)[0]} is not a gate; expected one of {', '.join(gates)}")
    gates.update(settings.get("gates") or {})
    return {**settings, "gates": gates, "simulator": settings.get("simulator") or {}}


def _fingerprint(cfg: DictConfig, data_hash: str, sampler: dict[str, Any], settings: dict[str, Any]) -> str:
    """What a reused replication must share with this run: all but the count and the resume folder."""
    same = {"model": OmegaConf.to_container(cfg.model, resolve=True), "data_hash": data_hash,
            "sampler": {k: v for k, v in sampler.items() if k not in ("progressbar", "milestones", "cores")},
            "seed": int(cfg.seed), "sbc": {k: v for k, v in settings.items() if k not in ("n", "resume")}}
    return hashlib.sha256(json.dumps(same, sort_keys=True, default=str).encode()).hexdigest()


def _resume(folder: str | None, fingerprint: str, run: RunDirectory, n: int) -> dict[int, dict[str, Any]]:
    """The replications ``0..n-1`` of an earlier SBC run (``sbc.resume``), copied into this one."""
    if not folder:
        return {}
    folder = Path(folder)
    files = sorted([*(folder / REPLICATIONS).glob("rep_*.json"),
                    *(folder / STAGING / REPLICATIONS).glob("rep_*.json")])
    if not files:
        raise ConfigError(f"sbc.resume={folder} holds no SBC replications ({REPLICATIONS}/rep_*.json); "
                          "expected the folder of an earlier task=sbc run")
    done = {}
    for path in files:
        record = json.loads(path.read_text())
        if record.get("fingerprint") != fingerprint:
            raise ConfigError(f"sbc.resume={folder}: {path.name} was made with another model, data, sampler, "
                              "seed or sbc setting; expected the same command (sbc.n may differ)")
        if int(record["replication"]) >= n:
            continue
        done[int(record["replication"])] = record
        shutil.copy2(path, run.file(f"{REPLICATIONS}/{path.name}"))
    log.info("sbc: %d replications reused from %s", len(done), folder)
    return done


def _sha(values: np.ndarray | dict[str, np.ndarray]) -> str:
    parts = [values[k] for k in sorted(values)] if isinstance(values, dict) else [values]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()[:16]


def _check_reused(done: dict[int, dict[str, Any]], simulated: np.ndarray, folder: str | None) -> None:
    """A reused replication was fitted to the data set this run simulates for it."""
    for i, record in done.items():
        if i < len(simulated) and record.get("data_sha") != _sha(simulated[i]):
            raise ConfigError(f"sbc.resume={folder}: replication {i} was simulated differently there "
                              "(another PyMC version?); start a new SBC run")


def _monitored(model, prior: xr.DataTree) -> list[str]:
    patterns = model.monitored(None) or list(prior.data_vars)
    names = [n for n in prior.data_vars if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    return [n for n in names if prior[n].size]


def replication_seed(seed: int, i: int) -> int:
    return int(np.random.SeedSequence([int(seed), i]).generate_state(1)[0] % 2**31)


def _replicate(i, plan, y, truths, names, sampler, settings, cfg, received) -> dict[str, Any]:
    """Fit replication ``i`` and rank its true values among the thinned draws."""
    t0 = time.perf_counter()
    seed = replication_seed(int(cfg.seed), i)
    record: dict[str, Any] = {"replication": i, "seed": seed}
    try:
        tree = plan.refit.fit(y, seed, plan.start(y))
        check_complete(tree, sampler, received)
        tree["posterior"] = plan.canonical(tree["posterior"].to_dataset())
    except RunInterrupted:
        raise
    except Exception as error:  # a fit that cannot run is a failed fit, listed, never dropped silently
        log.warning("sbc replication %d failed: %s", i, error)
        return {**record, "passed": False, "failed": ["error"], "error": f"{type(error).__name__}: {error}",
                "ranks": None, "gates": {}, "wall_s": time.perf_counter() - t0}
    post = tree.posterior
    total = post.sizes["chain"] * post.sizes["draw"]
    keep = (np.arange(settings["ranks"]) * total) // settings["ranks"]
    ranks = {}
    for name in names:
        draws = post[name].values.reshape(total, *post[name].shape[2:])[keep]
        ranks[name] = (draws < truths[name].values[0, i]).sum(axis=0).tolist()
    gates = diag.convergence(tree, names, settings["gates"])
    failed = [k for k, c in gates["checks"].items() if not c["passed"]]
    return {**record, "passed": not failed, "failed": failed, "error": None, "ranks": ranks,
            "gates": {k: c["value"] for k, c in gates["checks"].items()}, "wall_s": time.perf_counter() - t0}


def rank_tree(done: dict[int, dict[str, Any]], truths: xr.Dataset, names: list[str], L: int) -> xr.DataTree:
    """The ranks as ArviZ's SBC layout: group ``prior_sbc``, one ``chain``, a ``draw`` per replication."""
    order = sorted(i for i, r in done.items() if r["ranks"] is not None)
    data = {}
    for name in names:
        template = truths[name].isel(chain=0, draw=0, drop=True)
        values = np.stack([np.asarray(done[i]["ranks"][name]) for i in order])[None]
        data[name] = xr.DataArray(values, dims=("chain", "draw", *template.dims),
                                  coords={"chain": [0], "draw": order, **template.coords})
    ranks = xr.Dataset(data, attrs={"L": L})
    return xr.DataTree.from_dict({"prior_sbc": ranks})


def pit_tree(ranks: xr.DataTree) -> xr.DataTree:
    """The ranks as PIT values ``(rank + 1/2) / (L + 1)`` in ``(0, 1)``."""
    L = ranks["prior_sbc"].attrs["L"]
    return xr.DataTree.from_dict({"prior_sbc": (ranks["prior_sbc"].to_dataset() + 0.5) / (L + 1)})


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control over all tests)."""
    p = np.asarray(p_values, float)
    order = np.argsort(p)
    m = len(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def uniformity_table(ranks: xr.DataTree, alpha: float) -> pd.DataFrame:
    p_values = diag.uniformity_p_values(pit_tree(ranks)["prior_sbc"].to_dataset())
    rows = []
    for name, da in p_values.data_vars.items():
        flat = da.stack(__e__=da.dims) if da.dims else da.expand_dims(__e__=[0])
        for k in range(flat.sizes["__e__"]):
            element = flat.isel(__e__=k)
            label = ",".join(str(element.coords[d].item()) for d in da.dims)
            rows.append({"parameter": name, "element": label, "p_value": float(element)})
    table = pd.DataFrame(rows)
    table["p_holm"] = holm(table["p_value"].to_numpy())
    table["uniform"] = table["p_holm"] >= alpha
    return table


def _write_results(run, done, truths, names, settings, model_name) -> dict[str, Any]:
    ranks = rank_tree(done, truths, names, settings["ranks"])
    ranks.to_netcdf(run.file("ranks.nc"), engine="netcdf4")
    table = uniformity_table(ranks, settings["alpha"])
    table.to_csv(run.file("tables/uniformity.csv"), index=False)
    reps = pd.DataFrame([{"replication": i, "seed": r["seed"], "passed": r["passed"], "failed": ";".join(r["failed"]),
                          "error": r["error"] or "", **r["gates"], "wall_s": round(r["wall_s"], 2)}
                         for i, r in sorted(done.items())])
    reps.to_csv(run.file("tables/replications.csv"), index=False)
    figures, pit = [], pit_tree(ranks)
    for name in names:
        da = ranks["prior_sbc"][name]
        coords = None
        if da.isel(chain=0, draw=0).size > MAX_PANELS:
            dim = max((d for d in da.dims if d not in ("chain", "draw")), key=lambda d: da.sizes[d])
            coords = {dim: da[dim].values[:MAX_PANELS].tolist()}
        title = f"{model_name}: {name}, ECDF of ranks minus uniform, 95% simultaneous bands"
        if coords:
            title += f" (first {MAX_PANELS} of {da.isel(chain=0, draw=0).size})"
        figures.append(diag.ecdf_difference_plot(pit, name, run.file(f"figures/ecdf_{name}.png"), title, coords))
    failed = [{"replication": i, "failed": r["failed"], "error": r["error"]} for i, r in sorted(done.items())
              if not r["passed"]]
    rejected = table[~table["uniform"]]
    share = len(failed) / max(len(done), 1)
    passed = bool(rejected.empty and share <= settings["max_failed_share"])
    summary = (f"{len(table) - len(rejected)} of {len(table)} parameter elements uniform (Holm, alpha "
               f"{settings['alpha']}); {len(failed)} of {len(done)} fits failed their gates "
               f"(at most {settings['max_failed_share']:.0%} allowed)")
    verdict = {
        "passed": passed, "summary": summary, "n": len(done), "L": settings["ranks"],
        "rule": "each element's PIT (rank + 1/2)/(L + 1) tested for uniformity (ArviZ pot_c); p-values adjusted "
                "by Holm over all elements; fail if any adjusted p < alpha or the share of fits that failed their "
                "gates exceeds max_failed_share. Failed fits stay in the test.",
        "alpha": settings["alpha"], "gates": settings["gates"], "n_failed_fits": len(failed),
        "failed_fits": failed, "rejected": rejected[["parameter", "element", "p_value", "p_holm"]].to_dict("records"),
        "min_p_holm": float(table["p_holm"].min()), "figures": [str(Path(f).name) for f in figures],
        "wall_s_per_replication": float(np.mean([r["wall_s"] for r in done.values()])),
    }
    run.write_json("sbc.json", verdict)
    return verdict


def _report(model_name, data, command, sampler, settings, verdict) -> str:
    lines = [f"# carestar sbc: model={model_name}, data={data.source}", "",
             f"Reproduce with `{command}`.", "",
             f"{verdict['n']} replications; fits: {sampler['nuts_sampler']}, {sampler['chains']} chains x "
             f"({sampler['tune']} tune + {sampler['draws']} draws), thinned to {settings['ranks']} draws.", "",
             f"**Verdict: {'PASSED' if verdict['passed'] else 'FAILED'}**: {verdict['summary']}.", "",
             f"Rule: {verdict['rule']}", ""]
    if verdict["failed_fits"]:
        lines += ["Fits that failed their gates: " + ", ".join(
            f"{f['replication']} ({', '.join(f['failed'])})" for f in verdict["failed_fits"]), ""]
    lines += [f"![{f}](figures/{f})" for f in verdict["figures"]]
    return "\n".join(lines) + "\n"


def _manifest(cfg, clock, data, model, sampler, passed, run: RunDirectory) -> dict[str, Any]:
    from carestar.tasks import command_line

    return {"task": "sbc", "model": model.name, "data": data.source, "data_hash": data.data_hash,
            "config_hash": config_hash(cfg), "seed": int(cfg.seed), "sampler": sampler.get("name"),
            "diagnostics_passed": passed, "git": run.git_record(), "versions": package_versions(),
            "command": command_line(), "argv": sys.argv, "wall_time_s": {**clock.times, "total": clock.total()}}

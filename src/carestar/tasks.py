"""The tasks ``run.py`` dispatches to: ``fit`` (the default), ``simulate``, ``compare``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from carestar import diagnostics as diag
from carestar.errors import ConfigError
from carestar.report import write_report
from carestar.runs import RunDirectory, Stopwatch, config_hash, git_state, package_versions
from carestar.sampling import sample

log = logging.getLogger("carestar")


def run_task(cfg: DictConfig) -> dict[str, Any]:
    tasks = {"fit": fit, "simulate": simulate}
    if cfg.task not in tasks:
        raise ConfigError(f"task={cfg.task!r} is not a task; expected one of {', '.join(tasks)}")
    return tasks[cfg.task](cfg, Path(HydraConfig.get().runtime.output_dir))


def command_line() -> str:
    overrides = HydraConfig.get().overrides.task
    return " ".join(["python run.py", *overrides])


def fit(cfg: DictConfig, run_path: Path) -> dict[str, Any]:
    """Load and check the data, build the model, sample, diagnose, write the run directory."""
    clock = Stopwatch()
    seed = int(cfg.seed)
    sampler = OmegaConf.to_container(cfg.sampler, resolve=True)
    with clock.stage("load"):
        data = instantiate(cfg.data)
        model = instantiate(cfg.model)
        prepared = model.prepare(data)
    with clock.stage("build"):
        pm_model = model.build(prepared)
    run = RunDirectory(run_path)
    with clock.stage("sample"):
        idata = sample(pm_model, sampler, seed)
    with clock.stage("postprocess"):
        idata = model.postprocess(idata, prepared)
        monitored = diag.resolve(idata, model.monitored(idata))
        effects = diag.resolve(idata, model.effects())
        gates = OmegaConf.to_container(cfg.diagnostics, resolve=True)
        convergence = diag.convergence(idata, monitored, gates)
        loo = diag.loo(idata, gates["max_pareto_k"])
        mode = _mode_report(pm_model, idata, sampler)
        diagnostics = {
            "passed": convergence["passed"],
            "convergence": convergence,
            "loo": loo,
            "monitored": monitored,
            **model.diagnostics(idata, prepared),
        }
        summary = diag.summary(idata, effects or None)
    with clock.stage("write"):
        run.write_posterior(idata)
        summary.to_csv(run.file("summary.csv"))
        run.write_json("diagnostics.json", diagnostics)
        tables = {}
        for name, table in model.tables(idata, prepared).items():
            path = run.file(f"tables/{name}.csv")
            table.to_csv(path, index=False)
            tables[name] = path
        figdir = run.folder("figures")
        figures = model.figures(idata, prepared, figdir)
        forest = diag.forest_plot(idata, effects, figdir / "forest_effects.png", "Effects (50% and 90% intervals)")
        if forest is not None:
            figures = {"forest_effects": forest, **figures}
        write_report(
            run.file("report.md"),
            title=f"carestar run: model={model.name}, data={getattr(data, 'source', '?')}",
            model_section=model.report_section(idata, prepared),
            data_source=f"{data.source} (sha256 {data.data_hash[:12]})",
            sampler=sampler,
            command=command_line(),
            diagnostics=diagnostics,
            summary=summary,
            figures=figures,
            tables=tables,
            mode=mode,
        )
    manifest = {
        "task": "fit",
        "model": model.name,
        "data": data.source,
        "data_hash": data.data_hash,
        "config_hash": config_hash(cfg),
        "seed": seed,
        "sampler": sampler.get("name"),
        "diagnostics_passed": diagnostics["passed"],
        "git": git_state(),
        "versions": package_versions(),
        "command": command_line(),
        "argv": sys.argv,
        "wall_time_s": {**clock.times, "total": clock.total()},
    }
    run.complete(manifest)
    verdict = "PASSED" if diagnostics["passed"] else "FAILED (results written, marked failed)"
    print(f"carestar: diagnostics {verdict}; run written to {run_path}")
    for name, check in convergence.get("checks", {}).items():
        print(f"  {name:14s} {check['value']:>10.4g}  threshold {check['threshold']:<8g} {'pass' if check['passed'] else 'FAIL'}")
    return manifest


def _mode_report(pm_model, idata, sampler: dict[str, Any]) -> dict[str, Any] | None:
    """Log likelihood at the posterior mode (sampler=map) or at the posterior mean."""
    if sampler.get("name") != "map":  # TODO(issue 3): posterior-mean log likelihood once carestar.mode lands
        return None
    from carestar.mode import information_criteria, log_likelihood_at, posterior_mean_point
    point = posterior_mean_point(pm_model, idata)
    loglik = log_likelihood_at(pm_model, point)
    where = "posterior mode" if sampler.get("name") == "map" else "posterior mean"
    return {"at": where, **information_criteria(pm_model, loglik)}


def simulate(cfg: DictConfig, run_path: Path) -> dict[str, Any]:
    """Write the configured (synthetic) study as one CSV per table into ``<run>/study``."""
    from carestar.study_files import write_study

    study = instantiate(cfg.data)
    target = Path(cfg.get("out") or run_path / "study")
    write_study(study, target)
    print(f"carestar: study written to {target} (sha256 {study.data_hash[:12]})")
    return {"task": "simulate", "path": str(target), "data_hash": study.data_hash}

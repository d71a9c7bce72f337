"""The tasks ``run.py`` dispatches to: ``fit`` (the default), ``simulate``, ``compare``,
``select_classes``, ``reproduce``."""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from carestar import diagnostics as diag
from carestar import mle
from carestar.config_checks import check_config
from carestar.errors import ConfigError
from carestar.forest import panels_record
from carestar.interrupts import RunInterrupted, check_complete, interruptible
from carestar.mode import (
    information_criteria,
    log_likelihood_at,
    n_free_parameters,
    n_observations,
    posterior_mean_point,
)
from carestar.modelling import Model
from carestar.report import write_report
from carestar.run_figures import sampled_run_figures, write_run_figures
from carestar.runs import RunDirectory, Stopwatch, config_hash, package_versions
from carestar.sampling import check_sampler, sample
from carestar.terminal import print_verdict, stage_line

log = logging.getLogger("carestar")


def tasks() -> dict[str, Any]:
    """``task=NAME`` -> its function (``carestar.catalogue.TASKS`` describes each for ``--help``)."""
    from carestar.compare import compare_task
    from carestar.reproduce import reproduce_task
    from carestar.sbc import sbc_task

    return {
        "fit": fit,
        "simulate": simulate,
        "compare": compare_task,
        "select_classes": select_classes_task,
        "reproduce": reproduce_task,
        "sbc": sbc_task,
    }


def run_task(cfg: DictConfig) -> dict[str, Any]:
    tasks_ = tasks()
    if cfg.task not in tasks_:
        raise ConfigError(f"task={cfg.task!r} is not a task; expected one of {', '.join(tasks_)}")
    check_config(cfg)
    return tasks_[cfg.task](cfg, Path(HydraConfig.get().runtime.output_dir))


def command_line() -> str:
    """The command that made this run, each override quoted so that it pastes into bash
    (a formula's spaces, ``~``, ``|`` and parentheses reach Hydra intact)."""
    overrides = HydraConfig.get().overrides.task
    return " ".join(["python run.py", *(shlex.quote(o) for o in overrides)])


def fit(cfg: DictConfig, run_path: Path) -> dict[str, Any]:
    """Load and check the data, build the model, sample, diagnose, write the run directory."""
    clock = Stopwatch(say=stage_line)
    seed = int(cfg.seed)
    sampler = OmegaConf.to_container(cfg.sampler, resolve=True)
    check_sampler(sampler)
    with clock.stage("load"):
        data = instantiate(cfg.data)
        model = instantiate(cfg.model)
        if sampler.get("name") == "mle":
            mle.check_supported(model)
        prepared = model.prepare(data)
    if not model.samples:
        return _fit_without_sampling(cfg, run_path, clock, data, model, prepared)
    with clock.stage("build"):
        pm_model = model.build(prepared)
    run = RunDirectory(run_path)
    try:
        with interruptible() as received:
            manifest = _sample_and_write(cfg, run, run_path, clock, data, model, prepared, pm_model, sampler, seed,
                                         received)
    except RunInterrupted as stop:
        run.interrupted({**_manifest(cfg, clock, data, model, sampler, passed=None, run=run), "interrupted": str(stop)})
        print(f"carestar: run {stop} (exit status {stop.exit_status}); marked interrupted in {run_path}",
              file=sys.stderr)
        raise
    return manifest


def _sample_and_write(cfg, run, run_path, clock, data, model, prepared, pm_model, sampler, seed, received):
    with clock.stage("sample"):
        if sampler.get("name") == "mle":
            idata = mle.maximum_likelihood(model, prepared, sampler, seed)
        else:
            idata = sample(
                pm_model,
                sampler,
                seed,
                initvals=model.initvals(prepared),
                pointwise=lambda tree, s: model.pointwise(tree, prepared, s),
            )
        check_complete(idata, sampler, received)
    with clock.stage("postprocess"):
        sampled = idata["posterior"].to_dataset() if "posterior" in idata.children else None
        idata = model.postprocess(idata, prepared)
        stage_line("diagnostics")
        gates = OmegaConf.to_container(cfg.diagnostics, resolve=True)
        convergence = diag.convergence(idata, diag.resolve(idata, model.monitored(idata)), gates)
        model_checks = model.diagnostics(idata, prepared)
        # a model whose likelihood is not an observed variable (latent classes) reports its own
        loglik = model_checks.pop("log_likelihood", None) or mle.statistics(idata) or _log_likelihood_report(
            pm_model, idata, sampler, prepared
        )

        def moment_matching():
            stage_line("moment matching the LOO units whose Pareto k is high")
            return model.loo_moment_matching(pm_model, sampled, prepared)

        can_match = type(model).loo_moment_matching is not Model.loo_moment_matching
        loo = label_unreliable(diag.loo(idata, gates["max_pareto_k"], moment_matching if can_match else None,
                                        gates.get("max_moment_matched", 10)),
                               model.observation_labels(prepared))
        diagnostics = {
            "passed": convergence["passed"] and (loo is None or loo["passed"]),
            "convergence": convergence,
            "loo": loo,
            "log_likelihood": loglik,
            **model_checks,
        }
        if sampler.get("name") != "mle" and (marginal := mle.marginal_at_posterior_mean(model, prepared, idata)):
            diagnostics["marginal_log_likelihood"] = marginal
        effects = diag.resolve(idata, model.effects())
        summary = mle.summary(idata) if sampler.get("name") == "mle" else diag.summary(idata, effects or None)
    with clock.stage("write"):
        run.write_posterior(idata)
        summary.to_csv(run.file("summary.csv"))
        run.write_json("diagnostics.json", diagnostics)
        tables = _write_tables(run, model.tables(idata, prepared))
        figures = write_run_figures(sampled_run_figures(model, idata, prepared), run.folder("figures"),
                                    diagnostics)
        write_report(
            run.file("report.md"),
            title=f"carestar run: model={model.name}, data={data.source}",
            model_section=model.report_section(idata, prepared),
            data_source=f"{data.source} (sha256 {data.data_hash[:12]})",
            sampler=sampler,
            command=command_line(),
            diagnostics=diagnostics,
            summary=summary,
            figures=figures,
            tables=tables,
        )
    manifest = {**_manifest(cfg, clock, data, model, sampler, passed=diagnostics["passed"], run=run),
                "forest_panels": panels_record(model.forest_panels(prepared))}
    run.complete(manifest)
    print_verdict(run_path, diagnostics, summary)
    return manifest


def _fit_without_sampling(cfg, run_path, clock, data, model, prepared) -> dict[str, Any]:
    """Models fitted by an estimator of their own (the k-means baseline)."""
    run = RunDirectory(run_path)
    with clock.stage("fit"):
        result = model.fit(prepared, seed=int(cfg.seed))
    with clock.stage("write"):
        tables = _write_tables(run, result.tables())
        figures = write_run_figures(model.figures(result, prepared), run.folder("figures"), None)
        lines = [f"# carestar run: model={model.name}, data={data.source}", "",
                 f"Reproduce with `{command_line()}`.", "", model.report_section(result, prepared), ""]
        lines += [f"![{name}](figures/{path.name})" for name, path in figures.items()]
        lines += [f"- `tables/{path.name}`" for path in tables.values()]
        run.file("report.md").write_text("\n".join(lines) + "\n")
    manifest = _manifest(cfg, clock, data, model, {"name": "none"}, passed=True, run=run)
    run.complete(manifest)
    print(f"carestar: {model.name} fitted; run written to {run_path}")
    return manifest


def _write_tables(run: RunDirectory, tables: dict[str, Any]) -> dict[str, Path]:
    """A DataFrame as ``tables/<name>.csv``, a markdown string as ``tables/<name>.md``."""
    paths = {}
    for name, table in tables.items():
        if isinstance(table, str):
            path = run.file(f"tables/{name}.md")
            path.write_text(table)
        else:
            path = run.file(f"tables/{name}.csv")
            table.to_csv(path, index=False)
        paths[name] = path
    return paths


def _manifest(cfg, clock, data, model, sampler, *, passed: bool | None, run: RunDirectory) -> dict[str, Any]:
    return {
        "task": "fit",
        "model": model.name,
        "data": data.source,
        "data_hash": data.data_hash,
        "config_hash": config_hash(cfg),
        "seed": int(cfg.seed),
        "sampler": sampler.get("name"),
        "diagnostics_passed": passed,
        "git": run.git_record(),
        "versions": package_versions(),
        "command": command_line(),
        "argv": sys.argv,
        "wall_time_s": {**clock.times, "total": clock.total()},
    }


def label_unreliable(loo: dict[str, Any] | None, labels: list[str] | None) -> dict[str, Any] | None:
    """The observations with Pareto k above the gate, named as the user knows them."""
    if loo is None:
        return loo
    name = lambda i: labels[i] if labels else f"observation {i}"  # noqa: E731
    if "moment_matched" in loo:
        loo = {**loo, "moment_matched": [{"name": name(m["obs"]), **m} for m in loo["moment_matched"]]}
    if not loo["high_k_obs"]:
        return loo
    return {**loo, "unreliable": [name(i) for i in loo["high_k_obs"]]}


def _log_likelihood_report(pm_model, idata, sampler: dict[str, Any], prepared) -> dict[str, Any] | None:
    """Log likelihood (weights included) at the posterior mode (sampler=map) or mean, AIC, BIC.

    ``n_obs`` for BIC is the sum of frequency weights where there are weights (as R's
    ``BIC`` for ``polr``). Models whose likelihood is not an observed variable (latent
    classes) report their own fit statistics instead.
    """
    if not pm_model.observed_RVs:
        return None
    point = posterior_mean_point(pm_model, idata)
    loglik = log_likelihood_at(pm_model, point)
    weights = getattr(prepared, "weights", None)
    n_obs = float(weights.sum()) if weights is not None else n_observations(pm_model)
    where = "posterior mode" if sampler.get("name") == "map" else "posterior mean"
    groups = getattr(prepared, "groups", ())
    kind = ("conditional on the group effects at that point (every group effect counted as a parameter)"
            if groups else "the likelihood (no group effects)")
    return {"at": where, "kind": kind, **information_criteria(loglik, n_free_parameters(pm_model), n_obs)}


def simulate(cfg: DictConfig, run_path: Path) -> dict[str, Any]:
    """Write the configured (synthetic) study as one CSV per table into ``<run>/study``.

    ``out=DIR`` must be new or empty, or ``overwrite=true`` replaces only the study's files.
    """
    from carestar.run_folders import prepare_output_folder
    from carestar.study_files import study_file_names, write_study

    target = Path(cfg.get("out") or run_path / "study")
    prepare_output_folder(target, study_file_names(), overwrite=bool(cfg.get("overwrite", False)))
    study = instantiate(cfg.data)
    write_study(study, target)
    print(f"carestar: study written to {target} (sha256 {study.data_hash[:12]})")
    return {"task": "simulate", "path": str(target), "data_hash": study.data_hash}


def select_classes_task(cfg: DictConfig, run_path: Path) -> dict[str, Any]:
    """Read a multirun over ``model.n_classes`` (``runs=MULTIRUN_DIR``) and say which K wins."""
    from carestar.class_selection import TABLE, select_classes

    if not cfg.get("runs") or not isinstance(cfg.runs, str):
        raise ConfigError(
            "task=select_classes needs runs=MULTIRUN_DIR, the folder written by "
            "`python run.py -m model=lca model.n_classes=1,2,3,4,5`"
        )
    table, figure, message = select_classes(cfg.runs)
    print(message)
    print(f"table: {Path(cfg.runs) / TABLE}\nfigure: {figure}")
    return {"task": "select_classes", "runs": cfg.runs, "choice": message}

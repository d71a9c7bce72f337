"""``task=compare``'s inputs: the runs found, labelled, checked and loaded.

A source is a run directory or a Hydra multirun folder (expanded to its complete jobs, in
job order; incomplete ones skipped and listed). Each run is labelled by the overrides in
which it differs from the others, and ``load_runs`` refuses, as ``CarestarError`` and
before anything is written, fewer than two runs, a path that is not a complete fitted run,
the same run twice, different data or no log likelihood when LOO is asked for. The
comparison itself is ``carestar.compare``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import yaml

from carestar import diagnostics as diag
from carestar.errors import CarestarError
from carestar.runs import MANIFEST, POSTERIOR, STAGING, load_run

log = logging.getLogger("carestar")

SAMPLE_DIMS = ("chain", "draw")


@dataclass
class Run:
    """One complete run to compare."""

    path: Path
    label: str
    manifest: dict[str, Any]
    tree: xr.DataTree
    overrides: list[str] = field(default_factory=list)



# --- finding the runs ---------------------------------------------------------------------


def _is_complete(path: Path) -> bool:
    manifest = path / MANIFEST
    if not manifest.is_file():
        return False
    try:
        return json.loads(manifest.read_text()).get("status") == "complete"
    except json.JSONDecodeError:
        return False


def _looks_like_run(path: Path) -> bool:
    return (path / MANIFEST).exists() or (path / STAGING).exists() or (path / ".hydra").is_dir()


def _job_order(path: Path) -> tuple[int, int | str]:
    return (0, int(path.name)) if path.name.isdigit() else (1, path.name)


def expand_sources(sources: list[str | Path]) -> tuple[list[Path], list[dict[str, str]]]:
    """The complete run directories named by ``sources``, and the multirun jobs skipped.

    A source is a run directory (it must be complete: ``run.json`` with
    ``status: complete``) or a Hydra multirun folder, whose job folders are taken in job
    order; incomplete jobs (interrupted or failed: no ``run.json``) are skipped and listed.
    """
    runs: list[Path] = []
    skipped: list[dict[str, str]] = []
    for source in sources:
        path = Path(source)
        if not path.exists():
            raise CarestarError(f"{path}: no such run directory or multirun folder")
        if not path.is_dir():
            raise CarestarError(f"{path} is a file; expected a run directory or a multirun folder")
        if _looks_like_run(path):
            if not _is_complete(path):
                raise CarestarError(
                    f"{path} is not a complete run (no run.json with status complete: "
                    "the run was interrupted or failed); rerun it or leave it out"
                )
            runs.append(path)
            continue
        jobs = sorted((p for p in path.iterdir() if p.is_dir() and _looks_like_run(p)), key=_job_order)
        if not jobs:
            raise CarestarError(
                f"{path} is neither a complete run (no run.json) nor a multirun folder of runs"
            )
        for job in jobs:
            if _is_complete(job):
                runs.append(job)
            else:
                skipped.append({"path": str(job), "reason": "incomplete (no run.json): interrupted or failed"})
                log.warning("compare: skipping incomplete run %s", job)
    resolved = [p.resolve() for p in runs]
    duplicates = sorted({str(p) for p in resolved if resolved.count(p) > 1})
    if duplicates:
        raise CarestarError(f"the same run is named more than once: {', '.join(duplicates)}")
    return runs, skipped


def _overrides(path: Path) -> list[str]:
    file = path / ".hydra" / "overrides.yaml"
    if not file.is_file():
        return []
    try:
        items = yaml.safe_load(file.read_text()) or []
    except yaml.YAMLError:
        return []
    return [str(o) for o in items if not str(o).lstrip("+~").startswith("hydra")]


def run_labels(paths: list[Path], overrides: list[list[str]]) -> list[str]:
    """Short unique names for the runs: the overrides in which they differ, else folder names."""
    common = set.intersection(*(set(o) for o in overrides)) if overrides else set()
    candidates = [
        " ".join(o for o in ovr if o not in common) for ovr in overrides
    ]
    for labels in (
        candidates,
        [p.name for p in paths],
        [f"{p.parent.name}/{p.name}" for p in paths],
    ):
        if all(labels) and len(set(labels)) == len(labels):
            return labels
    return [f"{i}: {p.name}" for i, p in enumerate(paths)]


# --- the checks made before any work ------------------------------------------------------


def _check_manifests(paths: list[Path], labels: list[str], loo: bool) -> None:
    manifests = {label: json.loads((path / MANIFEST).read_text()) for path, label in zip(paths, labels)}
    for (label, manifest), path in zip(manifests.items(), paths):
        if manifest.get("task", "fit") != "fit":
            raise CarestarError(f"{path} is a task={manifest['task']} run, not a fitted model; compare fitted runs")
        if not (path / POSTERIOR).is_file():
            raise CarestarError(
                f"{path} (model={manifest.get('model')}) has no {POSTERIOR}: the model was not fitted "
                "by sampling, so it has no posterior to compare"
            )
    if loo:
        hashes = {label: m.get("data_hash") for label, m in manifests.items()}
        if len(set(hashes.values())) > 1:
            lines = [f"  {label} ({path}): data_hash {hashes[label]}" for label, path in zip(labels, paths)]
            raise CarestarError(
                "runs fitted to different data cannot be compared by LOO:\n" + "\n".join(lines)
                + "\n  hint: compare runs fitted to the same data, or set compare.loo=false "
                "to compare posteriors only"
            )


def _check_trees(runs: list[Run], loo: bool) -> str | None:
    """Refuse runs without draws or (for LOO) a log likelihood; the likelihood variable to use."""
    for run in runs:
        if "posterior" not in run.tree.children:
            raise CarestarError(f"run {run.label} ({run.path}) has no posterior group")
        if diag.is_mode_only(run.tree):
            raise CarestarError(
                f"run {run.label} ({run.path}) holds a point estimate, not posterior draws "
                "(sampler=map or sampler=mle); compare sampled runs"
            )
    if not loo:
        return None
    missing = [run for run in runs if "log_likelihood" not in run.tree.children]
    if missing:
        names = ", ".join(f"{r.label} ({r.path})" for r in missing)
        raise CarestarError(
            f"runs without a log_likelihood group cannot be compared by LOO: {names}\n"
            "  hint: refit them with this version of carestar (every fit stores the pointwise log likelihood)"
        )
    variables = [set(run.tree.log_likelihood.data_vars) for run in runs]
    shared = set.intersection(*variables)
    if len(shared) != 1 or any(v != shared for v in variables):
        lines = [f"  {r.label}: {sorted(v)}" for r, v in zip(runs, variables)]
        raise CarestarError(
            "LOO needs one and the same observed variable in every run; log likelihood variables:\n"
            + "\n".join(lines)
        )
    (name,) = shared
    sizes = {r.label: int(np.prod([n for d, n in r.tree.log_likelihood[name].sizes.items() if d not in SAMPLE_DIMS]))
             for r in runs}
    if len(set(sizes.values())) > 1:
        raise CarestarError(
            f"the runs have different numbers of observations of {name!r}: "
            + ", ".join(f"{k}: {v}" for k, v in sizes.items())
        )
    return name



# --- loading them ------------------------------------------------------------------------


def load_runs(sources: list[str | Path], *, loo: bool = True) -> tuple[list[Run], list[dict[str, str]], str | None]:
    """Find, check and load the runs; every refusal happens here, before anything is written."""
    if isinstance(sources, (str, Path)):
        sources = [sources]
    paths, skipped = expand_sources(list(sources))
    if len(paths) < 2:
        found = ", ".join(str(p) for p in paths) or "none"
        extra = f"; skipped as incomplete: {', '.join(s['path'] for s in skipped)}" if skipped else ""
        raise CarestarError(f"compare needs at least two complete runs; found {len(paths)} ({found}){extra}")
    overrides = [_overrides(p) for p in paths]
    labels = run_labels(paths, overrides)
    _check_manifests(paths, labels, loo)
    runs = []
    for path, label, ovr in zip(paths, labels, overrides):
        manifest, tree = load_run(path)
        runs.append(Run(path=path, label=label, manifest=manifest, tree=tree, overrides=ovr))
    loglik_var = _check_trees(runs, loo)
    return runs, skipped, loglik_var

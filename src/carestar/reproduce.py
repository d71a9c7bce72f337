"""``task=reproduce``: rerun a recorded run, or a recorded experiment, and say whether it matched.

``python run.py task=reproduce run=RUN_DIR`` reads the run's own record (``run.json``:
seed, sampler, data hash, config hash, git commit; ``.hydra/overrides.yaml``: the command's
overrides) and, before any sampling, composes the config those overrides give today and
loads its data: a different config hash or data hash stops it there, with what changed.
Otherwise it reruns the command into ``<this run>/rerun`` and compares the posteriors and
the gates by the rule in ``carestar.reproduce_compare``.

``python run.py task=reproduce experiment=NAME`` runs the steps recorded in
``experiments/NAME/expected.json`` (the experiment's sweep and the script that collects it;
the same commands as its README) and compares the numbers the README quotes with theirs,
each within the tolerance the file states and explains. ``reduced=true`` runs the smaller
version the file describes (fewer draws or studies), with its own, wider tolerances; the
verdict says so.

Both write ``reproduce.md`` and ``reproduce.json`` into the task's run directory and exit
0 only when everything matched, else ``EXIT_NOT_REPRODUCED`` (4). A git commit other than
the recorded one is reported (it is not by itself a mismatch).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr
import yaml
from omegaconf import DictConfig, OmegaConf

from carestar.config_checks import check_config
from carestar.errors import EXIT_GATES_FAILED, CarestarError, ConfigError
from carestar.reproduce_compare import gate_agreement, posterior_agreement
from carestar.reproduce_report import write_reproduce_report
from carestar.runs import MANIFEST, POSTERIOR, REPO_ROOT, config_hash, git_state

EXPERIMENTS = REPO_ROOT / "experiments"
RUN_PY = REPO_ROOT / "run.py"


def reproduce_task(cfg: DictConfig, run_path: Path) -> dict[str, Any]:
    from hydra.core.hydra_config import HydraConfig

    experiment = HydraConfig.get().runtime.choices.get("experiment")
    if cfg.get("run") and experiment not in (None, "null"):
        raise ConfigError("task=reproduce takes run=RUN_DIR or experiment=NAME, not both")
    if cfg.get("run"):
        result = reproduce_run(Path(str(cfg.run)), run_path)
    elif experiment not in (None, "null"):
        result = reproduce_experiment(str(experiment), run_path, reduced=bool(cfg.get("reduced")))
    else:
        raise ConfigError("task=reproduce needs run=RUN_DIR (a complete run) or experiment=NAME "
                          f"(one of: {', '.join(recorded_experiments())})")
    write_reproduce_report(run_path, result)
    print(f"carestar: {result['verdict']}; report: {run_path / 'reproduce.md'}")
    return {"task": "reproduce", "reproduced": result["matched"], "verdict": result["verdict"]}


# -- a recorded run --------------------------------------------------------------------------
def read_record(run_dir: Path) -> dict[str, Any]:
    """What a complete run recorded: its manifest, overrides and config."""
    manifest = run_dir / MANIFEST
    if not manifest.exists():
        raise CarestarError(f"run={run_dir}: not a complete run (no {MANIFEST}); expected the folder a "
                            "finished `python run.py` wrote")
    record = json.loads(manifest.read_text())
    if record.get("status") != "complete":
        raise CarestarError(f"run={run_dir}: its run.json says status {record.get('status')!r}, not a complete "
                            "run; nothing to compare with")
    hydra_dir = run_dir / ".hydra"
    if not (hydra_dir / "overrides.yaml").exists():
        raise CarestarError(f"run={run_dir}: no .hydra/overrides.yaml; cannot tell which command made it")
    overrides = yaml.safe_load((hydra_dir / "overrides.yaml").read_text()) or []
    record["overrides"] = [o for o in overrides if not o.lstrip("+~").startswith("hydra.")]
    record["config"] = OmegaConf.load(hydra_dir / "config.yaml")
    if record.get("task", "fit") != "fit":
        raise CarestarError(f"run={run_dir} is a task={record.get('task')} run; task=reproduce reruns fits")
    return record


def config_changes(recorded: DictConfig, current: DictConfig) -> list[str]:
    """Every setting that differs, as ``key: recorded -> now`` lines."""
    def flat(cfg: DictConfig) -> dict[str, Any]:
        return pd.json_normalize(OmegaConf.to_container(cfg, resolve=True), sep=".").iloc[0].to_dict()

    a, b = flat(recorded), flat(current)
    return [f"{key}: {a.get(key, '(absent)')!r} -> {b.get(key, '(absent)')!r}"
            for key in sorted(set(a) | set(b)) if repr(a.get(key)) != repr(b.get(key))]


def check_record(record: dict[str, Any]) -> list[str]:
    """Compose today's config from the recorded overrides and load its data: what changed."""
    from hydra import compose
    from hydra.utils import instantiate

    current = compose(config_name="config", overrides=record["overrides"])
    check_config(current)  # a run folder is input too: its overrides instantiate only carestar's code
    changes = []
    if config_hash(current) != record["config_hash"]:
        lines = config_changes(record["config"], current)
        changes.append("config hash differs: " + ("; ".join(lines) if lines else "(same settings, other hash)"))
    data = instantiate(current.data)
    if data.data_hash != record["data_hash"]:
        changes.append(f"data hash differs: recorded {record['data_hash'][:12]}, now {data.data_hash[:12]} "
                       f"({data.source})")
    return changes


def reproduce_run(run_dir: Path, out: Path) -> dict[str, Any]:
    record = read_record(run_dir)
    git = _git_note(record.get("git", {}))
    result: dict[str, Any] = {"kind": "run", "run": str(run_dir), "command": record.get("command"),
                              "git": git, "seed": record.get("seed"), "sampler": record.get("sampler")}
    changes = check_record(record)
    if changes:
        return {**result, "matched": False, "changes": changes,
                "verdict": "NOT REPRODUCED: the recorded command no longer means the same run (stopped before "
                           "sampling)"}
    rerun_dir = out / "rerun"
    status = run_command(["python", "run.py", *record["overrides"], f"hydra.run.dir={rerun_dir}"], out / "rerun.log")
    result["rerun"] = str(rerun_dir)
    if not (rerun_dir / MANIFEST).exists():
        return {**result, "matched": False, "verdict": f"NOT REPRODUCED: the rerun failed (exit status {status}; "
                                                        f"log {out / 'rerun.log'})"}
    posteriors = posterior_agreement(_posterior(run_dir), _posterior(rerun_dir))
    gates = gate_agreement(*(json.loads((d / "diagnostics.json").read_text()) for d in (run_dir, rerun_dir)))
    matched = posteriors["agree"] and gates["agree"]
    how = ("identical: every draw matches" if posteriors["identical"]
           else "the posteriors agree within Monte Carlo error" if posteriors["agree"]
           else f"the posteriors differ ({posteriors.get('n_disagree', '?')} parameters beyond the rule)")
    gate_note = "" if gates["agree"] else "; a gate's verdict differs"
    verdict = f"{'REPRODUCED' if matched else 'NOT REPRODUCED'}: {how}{gate_note}"
    return {**result, "matched": matched, "posteriors": posteriors, "gates": gates, "verdict": verdict}


def _posterior(run_dir: Path) -> xr.Dataset:
    with xr.open_datatree(run_dir / POSTERIOR, engine="netcdf4") as tree:
        return tree.posterior.to_dataset().load()


def _git_note(recorded: dict[str, Any]) -> dict[str, Any]:
    now = git_state()
    same = recorded.get("commit") == now["commit"]
    note = (f"same commit {str(now['commit'])[:10]}" if same else
            f"a different commit: recorded {str(recorded.get('commit'))[:10]}, now {str(now['commit'])[:10]}")
    if recorded.get("dirty") or now["dirty"]:
        note += f" (uncommitted changes: recorded {recorded.get('dirty')}, now {now['dirty']})"
    return {"recorded": recorded, "now": now, "same_commit": same, "note": note}


def run_command(argv: list[str], log_path: Path) -> int:
    """``python run.py ...`` or ``python SCRIPT ...`` with this interpreter, from where the user is
    (relative data paths stay valid); output to ``log_path`` and to this terminal."""
    print(f"carestar: running {shlex.join(argv)}", flush=True)
    argv = [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]
    if len(argv) > 1 and not Path(argv[1]).is_absolute() and (REPO_ROOT / argv[1]).exists():
        argv[1] = str(REPO_ROOT / argv[1])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as log:
        log.write(f"$ {shlex.join(argv)}\n")
        log.flush()
        return subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT).returncode


# -- a recorded experiment -------------------------------------------------------------------
def recorded_experiments() -> list[str]:
    return sorted(p.parent.name for p in EXPERIMENTS.glob("*/expected.json"))


def load_expected(name: str) -> dict[str, Any]:
    path = EXPERIMENTS / name / "expected.json"
    if not path.exists():
        raise ConfigError(f"experiment={name} records no expected result ({path} is missing); "
                          f"recorded: {', '.join(recorded_experiments())}")
    return json.loads(path.read_text())


def experiment_commands(spec: dict[str, Any], out: Path, *, reduced: bool) -> list[list[str]]:
    """The steps of ``expected.json`` with ``{out}`` and ``{sweep}`` filled in."""
    steps = spec["reduced"]["steps"] if reduced else spec["steps"]
    places = {"out": str(out), "sweep": str(out / "sweep")}
    return [[arg.format(**places) for arg in step] for step in steps]


def read_quantity(out: Path, quantity: dict[str, Any]) -> float:
    """The value of one expected quantity: a cell of a CSV the steps wrote (with
    ``"aggregate": "sum"`` / ``"max"`` / ``"min"``, that of a column, e.g. how many true
    values were covered, or the largest latent class whatever its label;
    with ``"minus": {where}``, the difference from another row's cell)."""
    if "minus" in quantity:
        rest = {k: v for k, v in quantity.items() if k != "minus"}
        return read_quantity(out, rest) - read_quantity(out, {**rest, "where": quantity["minus"]})
    table = pd.read_csv(out / quantity["file"])
    rows = table
    for column, value in quantity.get("where", {}).items():
        rows = rows[rows[column].astype(str) == str(value)]
    if quantity.get("aggregate") in ("sum", "max", "min"):  # e.g. a count, or a label-free share
        return float(getattr(rows[quantity["column"]].astype(float), quantity["aggregate"])())
    if len(rows) != 1:
        raise CarestarError(f"{quantity['file']}: {len(rows)} rows match {quantity.get('where')}; expected 1")
    return float(rows[quantity["column"]].iloc[0])


def reproduce_experiment(name: str, out: Path, *, reduced: bool) -> dict[str, Any]:
    spec = load_expected(name)
    result: dict[str, Any] = {"kind": "experiment", "experiment": name, "reduced": reduced,
                              "recorded": spec.get("recorded"), "git": _git_note(spec.get("git", {})),
                              "reduced_note": spec["reduced"]["note"] if reduced else None, "steps": []}
    for argv in experiment_commands(spec, out, reduced=reduced):
        status = run_command(argv, out / "steps.log")
        result["steps"].append({"command": shlex.join(argv), "exit_status": status})
        if status not in spec.get("accept_exit", [0, 3]):
            return {**result, "matched": False,
                    "verdict": f"NOT REPRODUCED: step `{shlex.join(argv)}` failed (exit status {status}; "
                               f"log {out / 'steps.log'})"}
    tolerance = "tolerance_reduced" if reduced else "tolerance"
    rows = []
    checked = spec["reduced"].get("quantities") if reduced else None  # a reduced run may cover fewer
    for quantity in (q for q in spec["quantities"] if checked is None or q["name"] in checked):
        value = read_quantity(out, quantity)
        gap = abs(value - quantity["expected"])
        rows.append({"name": quantity["name"], "expected": quantity["expected"], "got": value,
                     "tolerance": quantity[tolerance], "within": bool(gap <= quantity[tolerance]),
                     "why": quantity.get("why", "")})
    matched = all(r["within"] for r in rows)
    size = "reduced run (" + spec["reduced"]["note"] + ")" if reduced else "full run"
    verdict = (f"{'REPRODUCED' if matched else 'NOT REPRODUCED'} ({size}): "
               f"{sum(r['within'] for r in rows)} of {len(rows)} recorded numbers within tolerance")
    gate_failures = [s["command"] for s in result["steps"] if s["exit_status"] == EXIT_GATES_FAILED]
    if gate_failures:
        verdict += f"; {len(gate_failures)} of {len(result['steps'])} steps failed their diagnostic gates (exit 3)"
    return {**result, "matched": matched, "quantities": rows, "tolerance_rule": spec.get("tolerance_rule"),
            "verdict": verdict}

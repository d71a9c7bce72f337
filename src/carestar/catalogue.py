"""What ``python run.py --help`` lists: the tasks, and every option of every config group
with its one-line description, the first comment line of its YAML file (after an
experiment's ``# @package _global_``), so the list cannot drift from ``conf/``.
Rendered through the ``${carestar.catalogue:}`` resolver in ``hydra.help.template``."""

from __future__ import annotations

from pathlib import Path

import yaml

CONF = Path(__file__).resolve().parents[2] / "conf"

# task=NAME: what it does (carestar.tasks dispatches on the same names; tests/test_terminal.py)
TASKS = {
    "fit": "fit the model to the data; write a run folder (posterior, summary, diagnostics, figures, report)",
    "simulate": "write the synthetic study as study CSV files (out=FOLDER)",
    "compare": "compare finished runs: PSIS-LOO table, shared forest plot (runs=[RUN,...] or a multirun folder)",
    "select_classes": "choose the number of latent classes from a model=lca multirun (runs=MULTIRUN)",
    "reproduce": "rerun a recorded run (run=RUN) or experiment (experiment=NAME) and say if it matches",
    "sbc": "simulation-based calibration of the configured model (sbc.n replications)",
}

GROUPS = (("model", "Models"), ("data", "Data sources"), ("sampler", "Samplers"), ("experiment", "Experiments"))


def description(path: Path) -> str:
    """The first comment line of a config file, ``# @package`` lines skipped."""
    for line in path.read_text().splitlines():
        if line.startswith("#") and not line.startswith("# @package"):
            return line.lstrip("#").strip()
        if line.strip() and not line.startswith("#"):
            break
    return ""


def defaults(conf: Path = CONF) -> dict[str, str]:
    """The option each group takes by default (``conf/config.yaml``'s defaults list)."""
    listed = yaml.safe_load((conf / "config.yaml").read_text())["defaults"]
    return {k: v for item in listed if isinstance(item, dict) for k, v in item.items() if v is not None}


def options(group: str, conf: Path = CONF) -> dict[str, str]:
    return {p.stem: description(p) for p in sorted((conf / group).glob("*.yaml"))}


def catalogue(conf: Path = CONF) -> str:
    chosen = {**defaults(conf), "task": "fit"}
    sections = [("task", "Tasks", TASKS)] + [(g, title, options(g, conf)) for g, title in GROUPS]
    lines = []
    for group, title, entries in sections:
        lines.append(f"== {title} ({group}=...) ==")
        width = max(len(name) for name in entries) + len(" (default)")
        for name, text in entries.items():
            label = f"{name} (default)" if chosen.get(group) == name else name
            lines.append(f"  {label:<{width}}  {text}")
        lines.append("")
    return "\n".join(lines)

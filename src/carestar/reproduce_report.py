"""``reproduce.md`` and ``reproduce.json``: the verdict of ``task=reproduce`` and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SHOWN_PARAMETERS = 15


def write_reproduce_report(folder: Path, result: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "reproduce.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    lines = run_lines(result) if result["kind"] == "run" else experiment_lines(result)
    path = folder / "reproduce.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"# Reproduction of {result['run']}", "", f"**{result['verdict']}**", "",
             f"- command: `{result['command']}`", f"- seed {result['seed']}, sampler {result['sampler']}",
             f"- git: {result['git']['note']}"]
    if result.get("rerun"):
        lines.append(f"- rerun: `{result['rerun']}`")
    lines.append("")
    if result.get("changes"):
        lines += ["## What changed (stopped before sampling)", ""] + [f"- {c}" for c in result["changes"]] + [""]
        return lines
    if posteriors := result.get("posteriors"):
        lines += ["## Posteriors", "", f"Rule: {posteriors['rule']}.", ""]
        if posteriors.get("problem"):
            lines += [posteriors["problem"], ""]
        shown = posteriors["parameters"][:SHOWN_PARAMETERS]
        if shown and "z" in shown[0]:
            lines += [f"The {len(shown)} largest differences of {posteriors['n_parameters']} parameters "
                      f"({posteriors['n_disagree']} beyond z* = {posteriors['z_star']:.2f}):", "",
                      "| parameter | recorded mean | rerun mean | combined MCSE | z | agrees |", "|---|---|---|---|---|---|"]
            lines += [f"| {r['parameter']} | {r['recorded_mean']:.5g} | {r['rerun_mean']:.5g} | "
                      f"{r['combined_mcse']:.3g} | {r['z']:+.2f} | {'yes' if r['agree'] else 'NO'} |" for r in shown]
            lines.append("")
        elif shown:
            lines += ["| parameter | recorded | rerun | agrees |", "|---|---|---|---|"]
            lines += [f"| {r['parameter']} | {r['recorded_mean']:.8g} | {r['rerun_mean']:.8g} | "
                      f"{'yes' if r['agree'] else 'NO'} |" for r in shown] + [""]
    if gates := result.get("gates"):
        lines += ["## Diagnostic gates", "", "Rule: each gate gives the same pass/fail as recorded.", "",
                  "| gate | recorded | rerun | same verdict |", "|---|---|---|---|"]
        lines += [f"| {g['gate']} | {_value(g['recorded'], g['recorded_passed'])} | "
                  f"{_value(g['rerun'], g['rerun_passed'])} | {'yes' if g['agree'] else 'NO'} |"
                  for g in gates["gates"]] + [""]
    return lines


def experiment_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"# Reproduction of experiment {result['experiment']}", "", f"**{result['verdict']}**", "",
             f"- recorded: {result.get('recorded')}", f"- git: {result['git']['note']}"]
    if result["reduced"]:
        lines.append(f"- REDUCED (`reduced=true`): {result['reduced_note']}; tolerances for the reduced size")
    lines += ["", "## Steps", ""] + [f"- `{s['command']}`: exit status {s['exit_status']}" for s in result["steps"]]
    if result.get("quantities"):
        lines += ["", "## Recorded numbers", ""]
        if result.get("tolerance_rule"):
            lines += [f"Rule: {result['tolerance_rule']}", ""]
        lines += ["| quantity | expected | got | tolerance | within | why this tolerance |", "|---|---|---|---|---|---|"]
        lines += [f"| {q['name']} | {q['expected']:.4g} | {q['got']:.4g} | {q['tolerance']:.3g} | "
                  f"{'yes' if q['within'] else 'NO'} | {q['why']} |" for q in result["quantities"]]
    return lines + [""]


def _value(value: Any, passed: Any) -> str:
    if value is None:
        return "(absent)"
    return f"{value:.4g} ({'pass' if passed else 'FAIL'})"

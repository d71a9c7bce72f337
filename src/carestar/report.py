"""The run's ``report.md``: what was fit, on which data, whether it converged, the figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from carestar.diagnostics import gate_lines, moment_matched_line


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 class``, ``3 classes``: a number and its noun, agreeing."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def _markdown_table(frame: pd.DataFrame, floatfmt: str = ".3f") -> str:
    cols = [frame.index.name or ""] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for index, row in frame.iterrows():
        cells = [str(index)] + [format(v, floatfmt) if isinstance(v, float) else str(v) for v in row]
        cells = [c.replace("|", "\\|") for c in cells]  # cutpoint names (Low|Medium) are not cell borders
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def diagnostics_table(diagnostics: dict[str, Any]) -> str:
    """Every gate of the verdict (``carestar.diagnostics.gate_lines``), as printed at the end."""
    lines = gate_lines(diagnostics)
    if not lines:
        return diagnostics["convergence"].get("note", "")
    frame = pd.DataFrame(
        {
            "value": [value for _, value, _, _ in lines],
            "threshold": [threshold for _, _, threshold, _ in lines],
            "result": ["pass" if passed else "FAIL" for *_, passed in lines],
        },
        index=pd.Index([name for name, *_ in lines], name="check"),
    )
    return _markdown_table(frame, ".4g")


def write_report(
    path: Path,
    *,
    title: str,
    model_section: str,
    data_source: str,
    sampler: dict[str, Any],
    command: str,
    diagnostics: dict[str, Any],
    summary: pd.DataFrame,
    figures: dict[str, Path],
    tables: dict[str, Path],
) -> Path:
    status = "PASSED" if diagnostics["passed"] else "FAILED"
    parts = [
        f"# {title}",
        "",
        f"Reproduce with `{command}` (see `run.json` for the commit, data hash and versions).",
        "",
        "## What was fit",
        "",
        model_section,
        "",
        f"Data: {data_source}.",
        "",
        f"Sampler: {sampler.get('name')} ({_sampler_line(sampler)}).",
        "",
        f"## Diagnostics: {status}",
        "",
        diagnostics_table(diagnostics),
        "",
    ]
    loo = diagnostics.get("loo")
    if loo:
        parts += [
            f"PSIS-LOO: elpd {loo['elpd_loo']:.1f} (SE {loo['se']:.1f}), p_loo {loo['p_loo']:.1f}, "
            f"{loo['n_pareto_k_high']} observations with Pareto k > {loo['pareto_k_threshold']}"
            + (f": the LOO estimate is unreliable for {', '.join(loo['unreliable'])}." if loo.get("unreliable")
               else "."),
            "",
        ]
        if line := moment_matched_line(loo):
            parts += [line + ".", ""]
    logliks = [diagnostics[k] for k in ("log_likelihood", "marginal_log_likelihood") if diagnostics.get(k)]
    if logliks:
        parts += ["## Log likelihood", ""]
        for loglik in logliks:
            parts += [
                f"At the {loglik['at']}: log likelihood {loglik['loglik']:.4f}, AIC {loglik['aic']:.2f}, "
                f"BIC {loglik['bic']:.2f} ({loglik['n_params']} free parameters, n = {loglik['n_obs']:g}); "
                f"{loglik.get('kind', 'kind not recorded')}.",
                "",
            ]
    shown = summary[["mean", "sd", "eti90_lb", "eti90_ub", "r_hat", "ess_bulk"]] if "eti90_lb" in summary else summary
    parts += ["## Effects", "", _markdown_table(shown), ""]
    if figures:
        parts += ["## Figures", ""]
        for name, fig in figures.items():
            parts += [f"### {name}", "", f"![{name}](figures/{fig.name})", ""]
    if tables:
        parts += ["## Tables", ""] + [f"- `{p.name}`" for p in tables.values()] + [""]
    path.write_text("\n".join(parts))
    return path


def _sampler_line(sampler: dict[str, Any]) -> str:
    if sampler.get("name") == "map":
        return "posterior mode: priors included, not the maximum likelihood estimate"
    if sampler.get("name") == "mle":
        return "maximum likelihood, no prior: standard errors from the observed information"
    return (
        f"{sampler.get('chains')} chains x ({sampler.get('tune')} tuning + "
        f"{sampler.get('draws')} draws), {sampler.get('cores')} cores"
    )

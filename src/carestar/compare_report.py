"""``task=compare``'s ``report.md``: the runs, LOO ranking, shared parameters, differences
and diagnostics as markdown (the tables themselves are written by ``carestar.compare``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def best_run(loo_table: pd.DataFrame | None) -> str | None:
    """The best run by LOO among those that passed their gates (None if none did)."""
    if loo_table is None:
        return None
    ranked = loo_table[loo_table["passed_gates"].astype(bool)]
    return str(ranked.index[0]) if len(ranked) else None


def _cell(value: Any, fmt: str) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "NO"
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else format(float(value), fmt)
    return str(value).replace("|", "\\|")


def markdown_table(frame: pd.DataFrame, fmt: str = ".3g", index: bool = True) -> str:
    cols = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for key, row in frame.iterrows():
        cells = ([_cell(key, fmt)] if index else []) + [_cell(v, fmt) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_compare_report(
    path: Path, *, runs, skipped, loo_table, loglik_var, variables, left_out, differences, diagnostics,
    forest: bool, command, pareto_k_max: float, max_elements: int, max_rows: int = 40,
) -> Path:
    inputs = pd.DataFrame(
        [{"run": r.label, "model": r.manifest.get("model"), "data": r.manifest.get("data"),
          "data hash": str(r.manifest.get("data_hash"))[:12], "sampler": r.manifest.get("sampler"),
          "path": str(r.path)} for r in runs]
    ).set_index("run")
    parts = [f"# carestar comparison of {len(runs)} runs", ""]
    if command:
        parts += [f"Reproduce with `{command}` (see `run.json` for the inputs' hashes).", ""]
    parts += ["## Runs", "", markdown_table(inputs), ""]
    if skipped:
        parts += ["Skipped (incomplete):", ""] + [f"- `{s['path']}`: {s['reason']}" for s in skipped] + [""]
    parts += ["## Predictive accuracy (PSIS-LOO)", ""]
    if loo_table is None:
        parts += ["Not computed (LOO comparison turned off; the runs may have been fitted to different data).", ""]
    else:
        best = best_run(loo_table)
        failed = [str(name) for name, ok in loo_table["passed_gates"].items() if not ok]
        parts += [
            f"All runs were fitted to the same data (variable `{loglik_var}`). Only runs that passed their "
            "diagnostic gates are ranked"
            + (f"; best by elpd_loo: **{best}**." if best else ": none did, so none is ranked.")
            + " `elpd_diff` is each ranked run's elpd minus the best one's, `dse` its standard error; a "
            "difference within about 2-4 SE is not a clear preference. Weights are stacking weights among "
            "the ranked runs.",
            "",
            markdown_table(loo_table[["rank", "elpd_loo", "se", "elpd_diff", "dse", "weight", "p_loo",
                                      "n_pareto_k_high", "max_pareto_k", "passed_gates"]], ".4g"),
            "",
        ]
        if failed:
            parts += [f"Not ranked, because they failed their diagnostic gates (their elpd is shown, not "
                      f"compared): {', '.join(failed)}.", ""]
        high = loo_table[loo_table["n_pareto_k_high"] > 0]
        if len(high):
            parts += [
                f"Caution: Pareto k > {pareto_k_max} for some observations in "
                + ", ".join(f"{name} ({int(n)})" for name, n in high["n_pareto_k_high"].items())
                + "; their elpd estimates may be biased.", "",
            ]
    parts += ["## Shared parameters", ""]
    if variables:
        parts += [f"Parameters in every run with the same coordinates: {', '.join(f'`{v}`' for v in variables)}."]
    else:
        parts += ["The runs share no parameter (same name and coordinates)."]
    if left_out:
        parts += [f"Shared but left out (more than {max_elements} elements): {', '.join(f'`{v}`' for v in left_out)}."]
    parts += [""]
    if forest:
        parts += ["![forest_shared](figures/forest_shared.png)", ""]
    if len(differences):
        lo, hi = [c for c in differences.columns if c.startswith("eti")]
        shown = differences.sort_values("prob_direction", ascending=False).head(max_rows)
        parts += [
            "Differences (run b minus run a), 90% intervals treating the runs' draws as independent; "
            "probability of direction = max(P(b > a), P(b < a)). A difference means something only where "
            "the parameter means the same in both runs: e.g. probit and logit effects are on different "
            "latent scales (logit about 1.6-1.8 times probit)"
            + (f"; the {max_rows} most certain of {len(differences)} rows (all in `tables/differences.csv`)"
               if len(differences) > max_rows else "") + ":",
            "",
            markdown_table(shown[["parameter", "run_a", "run_b", "difference", lo, hi, "prob_direction"]],
                           ".3g", index=False),
            "",
        ]
    parts += ["## Diagnostics", "", markdown_table(diagnostics, ".4g"), ""]
    failed = [str(name) for name, ok in diagnostics["passed"].items() if not ok]
    if failed:
        parts += [f"Runs that failed their convergence gates: {', '.join(failed)}; read their comparisons with care.", ""]
    files = ["tables/loo.csv"] if loo_table is not None else []
    files += ["tables/differences.csv", "tables/diagnostics.csv"] + (["figures/forest_shared.png"] if forest else [])
    parts += ["## Files", ""] + [f"- `{f}`" for f in files] + [""]
    path.write_text("\n".join(parts))
    return path

"""Choosing the number of latent classes from a multirun over ``model.n_classes``.

``python run.py -m model=lca model.n_classes=1,2,3,4,5`` writes one run directory per
number of classes into a multirun folder. ``select_classes(multirun_dir)`` reads every
complete run in it (``run.json``, ``diagnostics.json``, ``.hydra/config.yaml``) and writes

* ``class_selection.csv``: per number of classes, PSIS-LOO elpd and its SE, ``elpd_diff``
  (its elpd minus the best one's, <= 0, as ArviZ and ``task=compare`` give it) and its SE, the log
  likelihood at the mode, AIC, BIC, relative entropy, the smallest class share, and whether
  the run passed its diagnostics (r_hat, ESS, chains agreeing after relabelling);
* ``class_selection.png``: elpd minus the best with its SE and the one-SE band, BIC and AIC,
  entropy and the smallest share against K (``carestar.class_selection_figure``);

and returns ``(table, figure path, message)``. The rule the message states:

* **LOO**: the fewest classes whose elpd is within one standard error of the best elpd
  (the "one-standard-error rule": extra classes must improve the expected predictive
  fit by more than its uncertainty). The SE is that of the pairwise difference from the
  best (``dse`` of ``az.compare``, through ``carestar.diagnostics.compare_loo``, from the
  runs' pointwise log likelihoods); where a run's posterior cannot be read, the best
  model's own elpd SE stands in for it;
* **BIC**: the number of classes with the smallest BIC (n = units, the sum of weights);
* runs that failed their diagnostics, or whose smallest class holds under 5% of the
  organisations, are marked in the table and named in the message: a choice resting on
  them needs a second look.

Runs fitted with ``sampler=map`` have no LOO; the choice then rests on BIC alone.
Command line (also wired as ``python run.py task=select_classes runs=MULTIRUN_DIR``)::

    python -m carestar.class_selection MULTIRUN_DIR
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from carestar.class_selection_figure import selection_figure
from carestar.errors import ConfigError
from carestar.figures import save_figure

SMALL_CLASS = 0.05
TABLE = "class_selection.csv"
FIGURE = "class_selection.png"


def _run_dirs(multirun_dir: Path) -> list[Path]:
    return sorted((p.parent for p in multirun_dir.rglob("run.json")), key=lambda p: str(p))


def _read_run(run: Path) -> dict[str, Any] | None:
    manifest = json.loads((run / "run.json").read_text())
    if manifest.get("status") != "complete" or manifest.get("model") != "lca":
        return None
    config = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    diagnostics = json.loads((run / "diagnostics.json").read_text())
    loo = diagnostics.get("loo") or {}
    loglik = diagnostics.get("log_likelihood") or {}
    classes = diagnostics.get("latent_classes") or {}
    shares_file = run / "tables" / "class_shares.csv"
    smallest = classes.get("smallest_class_share")
    if smallest is None and shares_file.exists():
        smallest = float(pd.read_csv(shares_file)["mean"].min())
    fit_file = run / "tables" / "fit.csv"
    fit = pd.read_csv(fit_file).iloc[0].to_dict() if fit_file.exists() else {}
    return {
        "n_classes": int(config["model"]["n_classes"]),
        "elpd_loo": loo.get("elpd_loo", math.nan),
        "elpd_se": loo.get("se", math.nan),
        "p_loo": loo.get("p_loo", math.nan),
        "n_pareto_k_high": loo.get("n_pareto_k_high", math.nan),
        "loglik_mode": loglik.get("loglik", fit.get("loglik_mode", math.nan)),
        "n_params": loglik.get("n_params", fit.get("n_params", math.nan)),
        "aic": loglik.get("aic", fit.get("aic", math.nan)),
        "bic": loglik.get("bic", fit.get("bic", math.nan)),
        "relative_entropy": classes.get("relative_entropy", fit.get("relative_entropy",
                                                                    math.nan)),
        "smallest_class_share": smallest if smallest is not None else math.nan,
        "diagnostics_passed": bool(diagnostics.get("passed", False)),
        "chains_agree": classes.get("chains_agree"),
        "sampler": manifest.get("sampler"),
        "data_hash": manifest.get("data_hash"),
        "run": str(run),
    }


def selection_table(multirun_dir: str | Path) -> pd.DataFrame:
    """One row per complete LCA run under ``multirun_dir``, sorted by ``n_classes``."""
    multirun_dir = Path(multirun_dir)
    if not multirun_dir.is_dir():
        raise ConfigError(f"{multirun_dir}: not a folder (expected a multirun folder of "
                          "`python run.py -m model=lca model.n_classes=1,2,3`)")
    rows = [row for run in _run_dirs(multirun_dir) if (row := _read_run(run)) is not None]
    if not rows:
        raise ConfigError(f"{multirun_dir} holds no complete model=lca runs (no run.json with "
                          "status complete); run `python run.py -m model=lca "
                          "model.n_classes=1,2,3,4` first")
    table = pd.DataFrame(rows).sort_values("n_classes", kind="stable").reset_index(drop=True)
    dup = table["n_classes"].duplicated(keep=False)
    if dup.any():
        raise ConfigError(f"{multirun_dir}: several runs with n_classes "
                          f"{sorted(set(table.loc[dup, 'n_classes']))}; keep one run per number "
                          "of classes")
    if table["data_hash"].nunique() > 1:
        raise ConfigError(f"{multirun_dir}: the runs were fitted to different data "
                          "(data_hash differs); compare numbers of classes on the same data")
    table["elpd_diff"], table["elpd_diff_se"] = math.nan, math.nan
    diffs = _loo_differences(table)
    if diffs is not None:
        table["elpd_diff"] = table["n_classes"].map(diffs["elpd_diff"])
        table["elpd_diff_se"] = table["n_classes"].map(diffs["dse"])
    return table


def _loo_differences(table: pd.DataFrame) -> pd.DataFrame | None:
    """elpd difference from the best run and its SE, by n_classes (None if not computable)."""
    from carestar import diagnostics as diag
    from carestar.runs import POSTERIOR, load_run

    if table["elpd_loo"].isna().any() or len(table) < 2:
        return None
    elpds = {}
    try:
        for row in table.itertuples():
            if not (Path(row.run) / POSTERIOR).exists():
                return None
            _, tree = load_run(row.run)
            elpds[int(row.n_classes)] = diag.loo_pointwise(tree, "responses")
        out = diag.compare_loo(elpds)
    except Exception:  # noqa: BLE001 - fall back to the per-model SE
        return None
    out.index = out.index.astype(int)
    out["elpd_diff"] = out["elpd_loo"] - out["elpd_loo"].max()  # <= 0, as in task=compare's loo.csv
    return out


def choose(table: pd.DataFrame) -> dict[str, Any]:
    """The LOO (one-SE rule) and BIC choices; see the module docstring."""
    out: dict[str, Any] = {"loo": None, "loo_best": None, "bic": None, "loo_se": None}
    with_loo = table.dropna(subset=["elpd_loo"])
    if len(with_loo):
        best = with_loo.loc[with_loo["elpd_loo"].idxmax()]
        if with_loo["elpd_diff_se"].notna().all():
            near = with_loo[-with_loo["elpd_diff"] <= with_loo["elpd_diff_se"]]
            out["loo_se"] = "SE of the difference"
        else:
            se = best["elpd_se"] if math.isfinite(best["elpd_se"]) else 0.0
            near = with_loo[with_loo["elpd_loo"] >= best["elpd_loo"] - se]
            out["loo_se"] = "SE of the best elpd"
        out["loo_best"] = int(best["n_classes"])
        out["loo"] = int(near["n_classes"].min())
    with_bic = table.dropna(subset=["bic"])
    if len(with_bic):
        out["bic"] = int(with_bic.loc[with_bic["bic"].idxmin(), "n_classes"])
    return out


def message(table: pd.DataFrame, picks: dict[str, Any]) -> str:
    parts = []
    if picks["loo"] is not None:
        parts.append(
            f"LOO favours {classes(picks['loo'])}: the fewest classes whose elpd lies within "
            f"one SE ({picks['loo_se']}) of the best (the best elpd is at {classes(picks['loo_best'])})")
    else:
        parts.append("there is no LOO in these runs (sampler=map): the choice rests on BIC")
    if picks["bic"] is not None:
        parts.append(f"BIC favours {classes(picks['bic'])} (smallest BIC)")
    chosen = {v for k, v in picks.items() if k in ("loo", "bic") and v is not None}
    if len(chosen) == 1:
        head = f"The evidence favours {classes(chosen.pop(), 'latent class')}."
    else:
        head = (f"LOO and BIC disagree ({picks['loo']} vs {classes(picks['bic'])}): BIC penalises"
                " parameters more heavily; prefer the smaller number unless the extra class is"
                " substantively meaningful.")
    notes = []
    for row in table.to_dict("records"):
        flags = []
        if not row["diagnostics_passed"] and row["sampler"] != "map":
            flags.append("failed its diagnostics")
        if row["chains_agree"] is False and row["n_classes"] > 1:
            flags.append("chains disagree")
        if row["n_classes"] > 1 and row["smallest_class_share"] < SMALL_CLASS:
            flags.append(f"a class under {SMALL_CLASS:.0%}")
        if flags:
            notes.append(f"{classes(row['n_classes'])}: {', '.join(flags)}")
    detail = "; ".join(parts)
    text = f"{head} {detail[0].upper()}{detail[1:]}."
    if notes:
        text += " Check: " + "; ".join(notes) + "."
    return text


def classes(n: int, noun: str = "class") -> str:
    """``1 class``, ``2 classes``."""
    from carestar.report import count

    return count(n, noun, noun + "es")


def select_classes(multirun_dir: str | Path) -> tuple[pd.DataFrame, Path, str]:
    """Read the multirun, write ``class_selection.csv`` and ``.png`` into it; say the choice."""
    multirun_dir = Path(multirun_dir)
    table = selection_table(multirun_dir)
    picks = choose(table)
    table.drop(columns=["data_hash"]).to_csv(multirun_dir / TABLE, index=False)
    path = save_figure(selection_figure(table, picks, SMALL_CLASS), multirun_dir / FIGURE)
    return table.drop(columns=["data_hash"]), path, message(table, picks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m carestar.class_selection",
        description="Choose the number of latent classes from a multirun over model.n_classes.")
    parser.add_argument("multirun_dir", help="folder written by `python run.py -m model=lca "
                                             "model.n_classes=1,2,3,4,5`")
    args = parser.parse_args(argv)
    try:
        table, path, text = select_classes(args.multirun_dir)
    except ConfigError as error:
        print(f"carestar: error: {error}", file=sys.stderr)
        return 2
    cols = ["n_classes", "elpd_loo", "elpd_se", "bic", "relative_entropy",
            "smallest_class_share", "diagnostics_passed"]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\n{text}\n\ntable: {Path(args.multirun_dir) / TABLE}\nfigure: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

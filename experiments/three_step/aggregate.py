"""Bias and 90%-interval coverage of the class effects: joint model vs the three-step shortcuts.

Each run of ``python run.py -m experiment=three_step seed=...`` writes, for one synthetic
study, ``tables/class_effects.csv`` (joint model), ``tables/three_step_class_effects.csv``
(EM modal class -> ordinal model with class indicators) and
``tables/three_step_kmeans_class_effects.csv`` (k-means cluster -> the same ordinal model),
each with the true effect and whether the 90% interval covers it, and
``tables/three_step_agreement.csv`` (adjusted Rand index between the classifications and
the true classes). This script collects them:

    python experiments/three_step/aggregate.py multirun/three_step/<date> [MORE ...] [--out DIR | --record]

(several sweeps, for example of seeds 1-30 and 31-60 run on different days from one commit,
are pooled; a seed found twice stops it) and writes ``DIR/results.md`` (tables), ``DIR/summary.csv`` (the bias and coverage table),
``DIR/fits.csv`` (every fit's class effects), ``DIR/agreement.csv``, ``DIR/convergence.csv`` and
``DIR/three_step.png`` (figure). DIR defaults to the (first) sweep's own folder; ``--record``
writes into ``experiments/three_step``, replacing the repository's recorded result. A run missing
a table (an older run without k-means) simply lacks that approach. The functions are
imported by tests/test_joint.py and tests/test_three_step.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from carestar.figures import save_figure

APPROACHES = {"joint": "class_effects.csv",
              "three-step (EM)": "three_step_class_effects.csv",
              "three-step (k-means)": "three_step_kmeans_class_effects.csv"}
AGREEMENT = "three_step_agreement.csv"
RECORDED = Path(__file__).resolve().parent


def read_tables(run_dirs: list[Path], name: str, **labels: str) -> list[pd.DataFrame]:
    """``tables/<name>`` of each completed run (with ``run.json``) that has it, with its seed."""
    out = []
    for run in run_dirs:
        manifest, path = run / "run.json", run / "tables" / name
        if manifest.exists() and path.exists():
            seed = json.loads(manifest.read_text())["seed"]
            out.append(pd.read_csv(path).assign(seed=seed, **labels, run=str(run)))
    return out


def collect(run_dirs: list[Path]) -> pd.DataFrame:
    """One row per (seed, approach, class) from completed runs; incomplete runs skipped."""
    rows = [t for approach, name in APPROACHES.items()
            for t in read_tables(run_dirs, name, approach=approach)]
    if not rows:
        raise SystemExit(f"no completed three_step runs under {run_dirs[:1]}...")
    return pd.concat(rows, ignore_index=True)


def agreement_summary(run_dirs: list[Path]) -> pd.DataFrame:
    """Per comparison of classifications: studies, mean and range of the adjusted Rand index."""
    tables = read_tables(run_dirs, AGREEMENT)
    if not tables:
        return pd.DataFrame(columns=["comparison", "n_studies", "mean", "min", "max"])
    ari = pd.concat(tables).groupby("comparison", sort=False)["adjusted_rand_index"]
    return ari.agg(n_studies="count", mean="mean", min="min", max="max").reset_index()


def joint_convergence(run_dirs: list[Path]) -> pd.DataFrame:
    """Per completed run: the seed, and whether the joint fit passed its diagnostic gates
    (``diagnostics.json``: r_hat, ESS, divergences, BFMI; the chains' agreement on the
    latent classes), with the worst r_hat and bulk ESS."""
    rows = []
    for run in run_dirs:
        manifest, diagnostics = run / "run.json", run / "diagnostics.json"
        if not (manifest.exists() and diagnostics.exists()):
            continue
        d = json.loads(diagnostics.read_text())
        checks = d["convergence"]["checks"]
        rows.append({"seed": json.loads(manifest.read_text())["seed"],
                     "passed": bool(d["convergence"]["passed"]),
                     "chains_agree": bool(d.get("latent_classes", {}).get("chains_agree", True)),
                     "max_rhat": checks["max_rhat"]["value"],
                     "min_ess_bulk": checks["min_ess_bulk"]["value"]})
    return pd.DataFrame(rows, columns=["seed", "passed", "chains_agree", "max_rhat",
                                       "min_ess_bulk"])


def convergence_markdown(conv: pd.DataFrame) -> str:
    if conv.empty:
        return ""
    return (f"Joint fits passing every convergence gate: {int(conv['passed'].sum())} of"
            f" {len(conv)}; chains agreeing on the classes: {int(conv['chains_agree'].sum())};"
            f" max r_hat median {conv['max_rhat'].median():.3f} (worst"
            f" {conv['max_rhat'].max():.3f}); min bulk ESS median"
            f" {conv['min_ess_bulk'].median():.0f} (worst {conv['min_ess_bulk'].min():.0f}).")


def bias_coverage(fits: pd.DataFrame) -> pd.DataFrame:
    """Per approach and (non-reference) class: bias, RMSE, coverage, their Monte Carlo SEs.

    ``fits`` has columns approach, class, mean, q05, q95, truth (one row per fit and class).
    """
    fits = fits[fits["class"] != fits["class"].min()].copy()  # the reference class is 0
    fits["error"] = fits["mean"] - fits["truth"]
    fits["covered"] = (fits["q05"] <= fits["truth"]) & (fits["truth"] <= fits["q95"])
    fits["width"] = fits["q95"] - fits["q05"]
    out = []
    for (approach, cls), g in fits.groupby(["approach", "class"], sort=True):
        n = len(g)
        cover = g["covered"].mean()
        out.append({
            "approach": approach, "class": cls, "n_studies": n,
            "truth": g["truth"].mean(),
            "bias": g["error"].mean(),
            "bias_mcse": g["error"].std(ddof=1) / np.sqrt(n) if n > 1 else np.nan,
            "rmse": float(np.sqrt((g["error"] ** 2).mean())),
            "coverage_90": cover,
            "coverage_mcse": float(np.sqrt(cover * (1 - cover) / n)),
            "mean_width": g["width"].mean(),
        })
    return pd.DataFrame(out)


def markdown(summary: pd.DataFrame) -> str:
    lines = ["| approach | class | studies | truth | bias (MCSE) | RMSE | 90% coverage (MCSE) |"
             " mean width |", "|---|---|---|---|---|---|---|---|"]
    for r in summary.to_dict("records"):
        lines.append(
            f"| {r['approach']} | {r['class']} | {r['n_studies']} | {r['truth']:.2f} |"
            f" {r['bias']:+.3f} ({r['bias_mcse']:.3f}) | {r['rmse']:.3f} |"
            f" {r['coverage_90']:.2f} ({r['coverage_mcse']:.2f}) | {r['mean_width']:.2f} |")
    return "\n".join(lines)


def agreement_markdown(agreement: pd.DataFrame) -> str:
    """The agreement summary as a markdown table ("" when no run recorded it)."""
    if agreement.empty:
        return ""
    lines = ["Agreement of the classifications (adjusted Rand index; 1 = the same partition,"
             " 0 = chance):", "", "| comparison | studies | mean ARI | range |",
             "|---|---|---|---|"]
    lines += [f"| {r['comparison']} | {r['n_studies']} | {r['mean']:.2f} |"
              f" {r['min']:.2f} to {r['max']:.2f} |" for r in agreement.to_dict("records")]
    return "\n".join(lines)


def figure(fits: pd.DataFrame):
    """Per class: each study's 90% interval and mean, by approach, against the truth; the
    studies on the x axis by their seed, the legend outside the data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from carestar.figures import legend_outside

    fits = fits[fits["class"] != fits["class"].min()]
    classes = sorted(fits["class"].unique())
    approaches = [a for a in APPROACHES if a in set(fits["approach"])]
    seeds = sorted(int(s) for s in fits["seed"].unique())
    study = {s: i for i, s in enumerate(seeds)}  # x position
    step = 0.8 / len(approaches)
    fig, axes = plt.subplots(1, len(classes), figsize=(4.5 * len(classes) + 2.2, 4), squeeze=False)
    for ax, cls in zip(axes[0], classes):
        for j, approach in enumerate(approaches):
            g = fits[(fits["class"] == cls) & (fits["approach"] == approach)].sort_values("seed")
            x = g["seed"].astype(int).map(study).to_numpy() + (j - (len(approaches) - 1) / 2) * step
            ax.errorbar(x, g["mean"], yerr=np.clip([g["mean"] - g["q05"], g["q95"] - g["mean"]],
                                                   0, None),
                        fmt="o", ms=3, capsize=2, color=f"C{j}", label=approach)
        truth = fits.loc[fits["class"] == cls, "truth"].iloc[0]
        ax.axhline(truth, color="black", lw=1, ls="--", label="truth")
        ax.set_xticks(range(len(seeds)), minor=True)
        labelled = [i for i, s in enumerate(seeds) if len(seeds) <= 20 or i == 0 or s % 5 == 0]
        ax.set_xticks(labelled, [str(seeds[i]) for i in labelled], fontsize="small")
        ax.set_xlim(-0.6, len(seeds) - 0.4)
        ax.set_title(f"class {cls} effect (vs class 1)", fontsize="medium")
        ax.set_xlabel("synthetic study (seed)")
    axes[0][0].set_ylabel("effect on the latent logit scale (90% interval)")
    legend_outside(axes[0][-1], fontsize="small")
    return fig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", type=Path, nargs="+", help="the multirun folder(s) of the sweep")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, help="folder to write into (default: the sweep's folder)")
    where.add_argument("--record", action="store_true",
                       help=f"write into {RECORDED} (the repository's recorded result)")
    args = parser.parse_args(argv)
    args.out = RECORDED if args.record else args.out or args.sweeps[0]
    runs = [p for sweep in args.sweeps for p in sorted(sweep.iterdir()) if p.is_dir()]
    fits = collect(runs)
    twice = sorted(fits.groupby("seed")["run"].nunique().loc[lambda n: n > 1].index)
    if twice:
        raise SystemExit(f"seeds {twice} were run in more than one of {[str(s) for s in args.sweeps]}")
    summary = bias_coverage(fits)
    agreement_table = agreement_summary(runs)
    agreement = agreement_markdown(agreement_table)
    conv = joint_convergence(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    fits.to_csv(args.out / "fits.csv", index=False)
    summary.to_csv(args.out / "summary.csv", index=False)
    agreement_table.to_csv(args.out / "agreement.csv", index=False)
    conv.to_csv(args.out / "convergence.csv", index=False)
    save_figure(figure(fits), args.out / "three_step.png")
    sweeps = ", ".join(f"`{sweep}`" for sweep in args.sweeps)
    text = (f"# Three-step comparison: result\n\nSweep: {sweeps} "
            f"({fits['seed'].nunique()} synthetic studies).\n\n{markdown(summary)}\n\n"
            + (f"{convergence_markdown(conv)}\n\n" if not conv.empty else ""))
    passed = set(conv.loc[conv["passed"], "seed"])
    if 0 < len(passed) < len(conv):
        text += ("Only the studies whose joint fit passed every gate:\n\n"
                 + markdown(bias_coverage(fits[fits["seed"].isin(passed)])) + "\n\n")
    text += (f"{agreement}\n\n" if agreement else "") + "![intervals per study](three_step.png)\n"
    (args.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

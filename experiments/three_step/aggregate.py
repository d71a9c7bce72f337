"""Bias and 90%-interval coverage of the class effects: joint model vs the three-step shortcut.

Each run of ``python run.py -m experiment=three_step seed=...`` writes, for one synthetic
study, ``tables/class_effects.csv`` (joint model) and ``tables/three_step_class_effects.csv``
(EM modal class -> ordinal model with class indicators), both with the true effect and
whether the 90% interval covers it. This script collects them:

    python experiments/three_step/aggregate.py multirun/three_step/<date> [--out DIR]

and writes ``DIR/results.md`` (table) and ``DIR/three_step.png`` (figure); DIR defaults to
``experiments/three_step``. The functions are imported by tests/test_joint.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

APPROACHES = {"joint": "class_effects.csv", "three-step": "three_step_class_effects.csv"}


def collect(run_dirs: list[Path]) -> pd.DataFrame:
    """One row per (seed, approach, class) from completed runs; incomplete runs skipped."""
    rows = []
    for run in run_dirs:
        manifest = run / "run.json"
        if not manifest.exists():
            continue
        seed = json.loads(manifest.read_text())["seed"]
        for approach, name in APPROACHES.items():
            path = run / "tables" / name
            if path.exists():
                t = pd.read_csv(path)
                rows.append(t.assign(seed=seed, approach=approach, run=str(run)))
    if not rows:
        raise SystemExit(f"no completed three_step runs under {run_dirs[:1]}...")
    return pd.concat(rows, ignore_index=True)


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


def figure(fits: pd.DataFrame, path: Path) -> Path:
    """Per class: each study's 90% interval and mean, by approach, against the truth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fits = fits[fits["class"] != fits["class"].min()]
    classes = sorted(fits["class"].unique())
    fig, axes = plt.subplots(1, len(classes), figsize=(5 * len(classes), 4), squeeze=False)
    for ax, cls in zip(axes[0], classes):
        for j, approach in enumerate(APPROACHES):
            g = fits[(fits["class"] == cls) & (fits["approach"] == approach)].sort_values("seed")
            x = np.arange(len(g)) + (j - 0.5) * 0.35
            ax.errorbar(x, g["mean"], yerr=np.clip([g["mean"] - g["q05"], g["q95"] - g["mean"]],
                                                   0, None),
                        fmt="o", ms=3, capsize=2, color=f"C{j}", label=approach)
        truth = fits.loc[fits["class"] == cls, "truth"].iloc[0]
        ax.axhline(truth, color="black", lw=1, ls="--", label="truth")
        ax.set_title(f"class {cls} effect (vs class 1)")
        ax.set_xlabel("synthetic study")
    axes[0][0].set_ylabel("effect on the latent rating scale (90% interval)")
    axes[0][0].legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="the multirun folder of the sweep")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    runs = sorted(p for p in args.sweep.iterdir() if p.is_dir())
    fits = collect(runs)
    summary = bias_coverage(fits)
    args.out.mkdir(parents=True, exist_ok=True)
    fits.to_csv(args.out / "fits.csv", index=False)
    figure(fits, args.out / "three_step.png")
    text = (f"# Three-step comparison: result\n\nSweep: `{args.sweep}` "
            f"({fits['seed'].nunique()} synthetic studies).\n\n{markdown(summary)}\n\n"
            "![intervals per study](three_step.png)\n")
    (args.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

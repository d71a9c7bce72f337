"""What a run reports of its monotonic effects ``mo(x)`` (``carestar.monotonic``): the table
(total effect ``b D``, the effect per step ``b``, each step's share ``zeta_k`` and the
cumulative share ``c(k)`` reached at each level), its report section, and the figure of the
step pattern (cumulative share of the whole effect at each level, 90% intervals)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from carestar.figures import plt
from carestar.monotonic import cumulative

__all__ = ["monotonic_table", "monotonic_markdown", "step_pattern_figure"]


def _samples(post, name: str) -> np.ndarray:
    values = post[name].values
    return values.reshape(-1, *values.shape[2:])  # (samples, ...)


def _row(term: str, quantity: str, level: str, x: np.ndarray) -> dict:
    q05, q95 = np.quantile(x, [0.05, 0.95]) if x.size > 1 else (np.nan, np.nan)
    return {"term": f"mo({term})", "quantity": quantity, "level": level, "mean": float(x.mean()),
            "sd": float(x.std(ddof=1)) if x.size > 1 else np.nan, "q05": float(q05), "q95": float(q95)}


def monotonic_table(idata, design) -> pd.DataFrame | None:
    """One row per quantity of each term: ``total`` (``b D``, lowest level to highest, on the
    latent scale), ``per_step`` (``b``), ``simplex`` (``zeta_k``, the share of the total
    gained in the step to level k) and ``cumulative`` (``c(k)``, the share reached at level k):
    posterior mean, SD and 90% interval (a point estimate: its value; ``sampler=mle`` adds
    the SEs of ``summary.csv``)."""
    if not design.monotonic:
        return None
    post = idata.posterior
    b, total = _samples(post, "mo_b"), _samples(post, "mo_total")
    rows = []
    for j, term in enumerate(design.monotonic):
        zeta = _samples(post, term.simplex_name)
        cum = cumulative(zeta)
        rows.append(_row(term.name, "total", f"{term.levels[0]}->{term.levels[-1]}", total[:, j]))
        rows.append(_row(term.name, "per_step", "", b[:, j]))
        rows += [_row(term.name, "simplex", step, zeta[:, k]) for k, step in enumerate(term.steps)]
        rows += [_row(term.name, "cumulative", level, cum[:, k]) for k, level in enumerate(term.levels)]
    table = pd.DataFrame(rows)
    if "maximum_likelihood" in idata.children:
        ml = idata["maximum_likelihood"].to_dataset()
        se = pd.Series(ml["se"].values, index=[str(p) for p in ml["parameter"].values])

        def name(r):
            bare = r["term"][3:-1]
            return {"total": f"mo_total[{bare}]", "per_step": f"mo_b[{bare}]",
                    "simplex": f"mo_simplex_{bare}[{r['level']}]"}.get(r["quantity"])

        table["se"] = [se.get(name(r), np.nan) for _, r in table.iterrows()]
    return table


def monotonic_markdown(table: pd.DataFrame) -> str:
    """The report's section on the monotonic terms."""
    lines = ["Monotonic effects `mo(x)` (brms's parametrisation: `b * D * sum_{k<=x} zeta_k`): the total "
             "effect from the lowest level to the highest, the effect per step, and the share of the "
             "total gained in each step (mean [90% interval]):", ""]
    for term, rows in table.groupby("term", sort=False):
        def cell(r):
            if np.isnan(r["q05"]):
                se = f" (SE {r['se']:.3g})" if "se" in r and np.isfinite(r["se"]) else ""
                return f"{r['mean']:.3g}{se}"
            return f"{r['mean']:.3g} [{r['q05']:.3g}, {r['q95']:.3g}]"

        total = rows[rows.quantity == "total"].iloc[0]
        step = rows[rows.quantity == "per_step"].iloc[0]
        lines.append(f"- `{term}`: total effect ({total['level']}) {cell(total)}; per step {cell(step)}")
        lines.append("")
        lines += ["  | step to level | share of the total effect |", "  |---|---|"]
        lines += [f"  | {r['level']} | {cell(r)} |" for _, r in rows[rows.quantity == "simplex"].iterrows()]
        lines.append("")
    return "\n".join(lines)


def step_pattern_figure(table: pd.DataFrame) -> Figure:
    """For each term: the cumulative share of its total effect reached at each level, with
    90% intervals, against the straight line of equal steps (a linear effect)."""
    terms = list(dict.fromkeys(table["term"]))
    fig, axes = plt.subplots(1, len(terms), figsize=(4.2 * len(terms), 3.6), squeeze=False)
    for ax, term in zip(axes[0], terms):
        rows = table[(table.term == term) & (table.quantity == "cumulative")]
        x = np.arange(len(rows))
        mean = rows["mean"].to_numpy()
        ax.plot(x, x / x[-1], color="0.6", ls="--", lw=1, label="equal steps (linear)")
        if rows["q05"].notna().all():
            err = np.vstack([mean - rows["q05"].to_numpy(), rows["q95"].to_numpy() - mean])
            ax.errorbar(x, mean, yerr=np.clip(err, 0, None), fmt="o-", color="C0", capsize=3,
                        label="estimate, 90% interval")
        else:
            ax.plot(x, mean, "o-", color="C0", label="estimate")
        total = table[(table.term == term) & (table.quantity == "total")].iloc[0]
        ax.set_xticks(x, rows["level"].tolist())
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel(term[3:-1])
        ax.set_ylabel("share of the total effect reached")
        ax.set_title(f"{term}: total effect {total['mean']:.2f}", fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
    return fig

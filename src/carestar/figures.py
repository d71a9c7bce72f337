"""Shared figure helpers (matplotlib, no display): forest panels, the failed-gates mark,
saving a run's figures.

Every figure-making function of carestar and ``models/`` returns a matplotlib ``Figure``
(tests read its labels and legends without images); the run writes them all in one place
(``save_figures``), marking the figures of a run that failed its diagnostic gates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

CI_LABEL = "90% interval"
FAILED_COLOUR = "#b2182b"


@dataclass(frozen=True)
class ForestPanel:
    """One panel of a forest plot: parameters on one scale.

    ``var_names``: posterior variables (globs); ``xlabel``: the scale, as a reader needs it
    ("effect on the latent logit scale, vs defender"); ``zero_line``: a reference line at 0
    (effects; not for probabilities or SDs)."""

    title: str
    var_names: tuple[str, ...]
    xlabel: str
    zero_line: bool = True


LINK_SCALES = {"logit": "latent logit", "probit": "latent probit (normal)", "cloglog": "latent cloglog"}


def effects_note(design, reference: dict[str, str] | None = None) -> str:
    """What one unit of a regression's effects is: for the study, "strategy types vs
    defender; the other predictors per SD of their column"; for a CSV's formula, per unit
    of each column, a factor's levels against its reference (first) level."""
    names = list(design.effects)
    strategy = [n for n in names if n.startswith("strategy_type[")]
    if not strategy and not design.scales:
        return "per unit of each column; a factor's levels vs its first level"
    parts = []
    if strategy:
        parts.append(f"strategy types vs {(reference or {}).get('strategy_type', 'defender')}")
    others = [n for n in names if n not in strategy]
    if others:
        per_sd = all(n in design.scales for n in others)
        parts.append(("the other predictors" if parts else "predictors")
                     + (" per SD" if per_sd else " per unit of their column"))
    return "; ".join(parts)


def mark_failed(fig: Figure, failed: list[str]) -> None:
    """A red banner above a figure of a run that failed its gates, naming them (above the
    figure's own titles: ``save_figure`` saves with a tight bounding box, which takes it in)."""
    fig.text(0.5, 1.0, "FAILED GATES: " + ", ".join(failed) + " (see diagnostics.json)",
             ha="center", va="bottom", color="white", fontsize="small", fontweight="bold",
             bbox={"facecolor": FAILED_COLOUR, "edgecolor": "none", "pad": 2},
             gid="failed_gates")


def legend_outside(ax, **kwargs):
    """A legend to the right of the axes, clear of the data and of every title."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
                     frameon=False, **kwargs)


def save_figure(fig: Figure, path: Path, *, failed: list[str] | None = None) -> Path:
    """Save a figure at a readable resolution and close it; ``failed``: the gates the run
    failed, marked on the figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fig.get_layout_engine() is None:  # a figure laid out by constrained layout keeps it
        fig.tight_layout()
    if failed:
        mark_failed(fig, failed)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def save_figures(figures: dict[str, Figure], figdir: Path, *, failed: list[str] | None = None
                 ) -> dict[str, Path]:
    """Every figure of a run as ``figdir/<name>.png``."""
    return {name: save_figure(fig, Path(figdir) / f"{name}.png", failed=failed)
            for name, fig in figures.items()}

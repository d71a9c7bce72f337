"""Every figure of a run, made in one place and saved in one place.

A sampled run gets the model's own figures (``model.figures``), the forest plot of its
effects with one panel per scale (``model.forest_panels``), rank plots of the monitored
parameters and, where the model has a pointwise likelihood with posterior predictive
draws, the LOO-PIT calibration figure. A run that failed its diagnostic gates gets every
figure marked with the gates it failed (``failed_gates``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import xarray as xr
from matplotlib.figure import Figure

from carestar import diagnostics as diag
from carestar.figures import save_figures
from carestar.forest import forest_figure

FOREST_TITLE = "Posterior of the parameters, one panel per scale"


def failed_gates(diagnostics: dict[str, Any]) -> list[str]:
    """The names of the gates a run failed (``diagnostics.json``'s verdict)."""
    return [name for name, _, _, passed in diag.gate_lines(diagnostics) if not passed]


def sampled_run_figures(model, idata: xr.DataTree, prepared: Any) -> dict[str, Figure]:
    """Every figure of a sampled run (or a point estimate: then only the model's own)."""
    figures: dict[str, Figure] = {}
    forest = forest_figure(idata, model.forest_panels(prepared), FOREST_TITLE)
    if forest is not None:
        figures["forest_effects"] = forest
    figures.update(model.figures(idata, prepared))
    monitored = diag.resolve(idata, model.monitored(idata))
    if (rank := diag.rank_figure(idata, monitored)) is not None:
        figures["rank_plots"] = rank
    if (pit := diag.loo_pit_figure(idata)) is not None:
        figures["loo_pit"] = pit
    return figures


def write_run_figures(figures: dict[str, Figure], figdir: Path, diagnostics: dict[str, Any] | None
                      ) -> dict[str, Path]:
    """Save the figures as ``figdir/<name>.png``, marked if the run failed its gates."""
    failed = failed_gates(diagnostics) if diagnostics is not None else []
    return save_figures(figures, figdir, failed=failed or None)

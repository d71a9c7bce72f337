"""The shape every model in ``models/`` has: prepare, build, postprocess, report.

A run calls, in order and never back:
``prepared = model.prepare(data)`` (checks the config against the data, builds the design;
raises ``CarestarError`` before any sampling), ``model.build(prepared) -> pm.Model``,
sampling, ``model.postprocess(idata, prepared)`` (relabelling, derived quantities),
then ``tables``, ``figures`` and ``report_section`` for the run directory.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pymc as pm
import pytensor
import xarray as xr
from matplotlib.figure import Figure

from carestar.figures import ForestPanel


def reproducible_compilation() -> None:
    """The same seed gives the same draws on a new machine as on one that has run before.

    With numba's fastmath, a kernel compiled afresh (an empty compile cache: inlined into
    its caller) and the same kernel loaded from the cache rounded differently, and the
    chains parted after a few hundred draws. PyTensor keys its cache on the setting, so
    kernels compiled with fastmath on are never loaded with it off.
    """
    pytensor.config.numba__fastmath = False


reproducible_compilation()  # every model subclasses Model: set before any graph compiles


class Model:
    """Base class: subclasses set ``name`` and implement ``prepare`` and ``build``."""

    name: str = "model"
    samples: bool = True  # False: fitted by ``fit(prepared, seed)`` instead (k-means)

    def prepare(self, data: Any) -> Any:
        raise NotImplementedError

    def build(self, prepared: Any) -> pm.Model:
        raise NotImplementedError

    def postprocess(self, idata: xr.DataTree, prepared: Any) -> xr.DataTree:
        return idata

    def initvals(self, prepared: Any) -> dict[str, Any] | None:
        """Starting values for every chain (e.g. EM estimates of latent classes); None: PyMC's."""
        return None

    def pointwise(self, idata: xr.DataTree, prepared: Any, seed: int) -> dict[str, xr.Dataset] | None:
        """``log_likelihood`` and ``posterior_predictive`` groups computed over all draws at
        once (fast); None lets PyMC compute them draw by draw."""
        return None

    def monitored(self, idata: xr.DataTree) -> list[str] | None:
        """Posterior variables the diagnostic gates look at (None: all of them)."""
        return None

    def effects(self) -> list[str]:
        """Posterior variables shown in the forest plot and compared across runs."""
        return []

    def forest_panels(self, prepared: Any) -> list[ForestPanel]:
        """The forest plot's panels: the ``effects`` grouped by scale, each x axis naming
        its scale (and the reference category of a contrast). Default: one panel."""
        return [ForestPanel("Parameters", tuple(self.effects()), "posterior value", zero_line=True)]

    def tables(self, idata: xr.DataTree, prepared: Any) -> dict[str, pd.DataFrame | str]:
        """The model's own tables, by file stem: a DataFrame is written as
        ``tables/<name>.csv``, a markdown string as ``tables/<name>.md``."""
        return {}

    def figures(self, idata: xr.DataTree, prepared: Any) -> dict[str, Figure]:
        """The model's own figures, by file stem (``figures/<name>.png``), as matplotlib
        figures; the run saves them (``carestar.figures.save_figures``)."""
        return {}

    def report_section(self, idata: xr.DataTree, prepared: Any) -> str:
        return ""

    def observation_labels(self, prepared: Any) -> list[str] | None:
        """How a user names each observation of the log likelihood (e.g. ``org/year``, a CSV
        line): for the rows PSIS-LOO cannot estimate reliably. None: positions."""
        rows = getattr(prepared, "rows", None)
        if rows is None:  # latent class models: one LOO unit per organisation
            responses = getattr(prepared, "responses", None)
            return [str(o) for o in responses.orgs] if responses is not None else None
        if "line" in rows:
            return [f"CSV line {line}" for line in rows["line"]]
        keys = [c for c in ("org", "year") if c in rows]
        return rows[keys].astype(str).agg("/".join, axis=1).tolist() if keys else None

    def loo_moment_matching(self, pm_model: pm.Model, sampled: xr.Dataset, prepared: Any):
        """``carestar.moment_matching.MomentMatching`` for the units of the log likelihood, from
        the draws as sampled (``sampled``, before ``postprocess``); None: PSIS-LOO reports
        its Pareto k as it is."""
        return None

    def diagnostics(self, idata: xr.DataTree, prepared: Any) -> dict[str, Any]:
        """Model-specific checks for diagnostics.json (e.g. latent class chain agreement)."""
        return {}

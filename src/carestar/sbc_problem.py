"""What ``task=sbc`` fits, and to what: the truths, the simulated data sets, the refitter.

Two kinds of model:

- **An observed variable** (ordinal, binomial, country): ``theta_i`` and ``y_i`` are draw
  ``i`` of PyMC's prior predictive of the model built on the configured design; the
  refitter swaps ``y_i`` in (``carestar.refit``).
- **A likelihood in a** ``pm.Potential`` (the latent class models): PyMC's prior predictive
  ignores a Potential, so its draws are prior draws of the parameters and nothing more. The
  model then gives a :class:`Generator` (``model.sbc_generator(prepared)``): its graph with
  the data as ``pm.Data``, its own simulator of data given one draw, the start its pipeline
  would use for a data set (EM), and a **canonical labelling**: every draw's classes put in
  an order that depends on the parameters alone (by use), applied alike to the truths and
  to the posterior draws. The ranks are then those of a function of the parameters that
  does not change under a relabelling of the classes, so they are uniform if the fit is
  right, whichever of the equivalent modes the chains visit.

  The modes are equivalent only where the prior is symmetric in the class labels. Where it is
  not (the joint model's class effects are relative to class 1, whose effect is 0), the
  pipeline's own labelling (EM's: class 1 the lowest use) picks one mode, and the prior of
  what it reports is the prior restricted to that labelling. ``Generator.as_fitted`` then
  puts each prior draw in that labelling before its data are simulated, so that the truths
  come from the prior the fit's posterior is made with.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import xarray as xr

from carestar.refit import Refitter, observed_name


@dataclass(frozen=True)
class Generator:
    """A model's own simulator for ``task=sbc`` (see the module docstring)."""

    graph: pm.Model
    data_names: tuple[str, ...]  # its pm.Data; simulate returns an array (one) or a dict by name
    simulate: Callable[[xr.Dataset, np.random.Generator], np.ndarray | dict[str, np.ndarray]]
    canonical: Callable[[xr.Dataset], xr.Dataset]
    initvals: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None
    as_fitted: Callable[[xr.Dataset], xr.Dataset] | None = None  # prior draws in the fit's labelling


@dataclass
class Problem:
    """Replication ``i``: fit ``simulated[i]``, rank ``truths`` at draw ``i``."""

    refit: Refitter
    truths: xr.Dataset  # (chain=1, draw=n, ...) every parameter, canonical labels
    simulated: Sequence[Any]  # the n data sets: arrays, or dicts of arrays by data name
    names: list[str] | None  # monitored parameters (None: the model's patterns, ``sbc._monitored``)
    canonical: Callable[[xr.Dataset], xr.Dataset] = lambda ds: ds
    initvals: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None

    def start(self, values: np.ndarray) -> dict[str, np.ndarray] | None:
        return self.initvals(values) if self.initvals is not None else None


def data_seed(seed: int, i: int) -> np.random.Generator:
    """Replication ``i``'s simulator stream (a generator's data), apart from its fit's seed."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), i, 1]))


def problem(model: Any, design: Any, simulating: Any, sim_design: Any, n: int, sampler: dict[str, Any],
            seed: int) -> Problem:
    """Build the fit once and draw ``n`` truths and data sets from ``simulating`` (the
    model itself, or one with ``sbc.simulator``'s settings)."""
    if hasattr(model, "sbc_generator"):
        fitting = model.sbc_generator(design)
        generating = fitting if simulating is model else simulating.sbc_generator(sim_design)
        with warnings.catch_warnings():  # ignoring the Potential is the point: these are prior draws
            warnings.filterwarnings("ignore", "The effect of Potentials", UserWarning)
            prior = pm.sample_prior_predictive(draws=n, model=generating.graph, random_seed=seed).prior.to_dataset()
        if generating.as_fitted is not None:
            prior = generating.as_fitted(prior)
        simulated = [generating.simulate(prior.isel(chain=0, draw=i), data_seed(seed, i)) for i in range(n)]
        names = model.monitored(xr.DataTree.from_dict({"posterior": prior}))  # the model's own rule
        return Problem(Refitter(fitting.graph, sampler, data_names=fitting.data_names), fitting.canonical(prior),
                       simulated, names, fitting.canonical, fitting.initvals)
    fit_graph, sim_graph = model.build(design), simulating.build(sim_design)
    outcome = observed_name(fit_graph)
    refit = Refitter(fit_graph, sampler)
    prior = pm.sample_prior_predictive(draws=n, model=sim_graph, random_seed=seed)
    return Problem(refit, prior.prior.to_dataset(), prior.prior_predictive[outcome].values[0], None)

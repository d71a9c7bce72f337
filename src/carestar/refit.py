"""One model compiled once and fitted to many simulated data sets (``task=sbc``).

The model is built once on the configured design; its observed variable is then made to
observe a shared variable (``pm.observe``), so that a new data set of the same shape is a
new value of that variable, not a new model. With ``sampler=nutpie`` the log density and
gradient are compiled once and each fit swaps the data in (``CompiledModel.with_data``):
a fit costs its sampling only. The other NUTS samplers (``pymc``, ``numpyro``) are given
the new value and sample as usual, which recompiles (from PyTensor's cache) in every fit.

A model whose likelihood is a ``pm.Potential`` (the latent class models) has no observed
variable: its data are ``pm.Data`` variables, named by ``data_names``, given new values the
same way. ``fit(values, seed, initvals)`` starts every chain (jittered, as PyMC's nutpie
path does) at ``initvals``, the start the model's own pipeline would use for those data.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import numpy as np
import pymc as pm
import pytensor
import xarray as xr
from pymc.initial_point import make_initial_point_fn

from carestar.errors import ConfigError
from carestar.sampling import check_sampler, sample

DATA_NAME = "sbc_observed"


def observed_name(model: pm.Model) -> str:
    """The one observed variable a simulated data set replaces."""
    if len(model.observed_RVs) != 1:
        raise ConfigError(
            f"task=sbc needs a model with one observed variable; this one has "
            f"{len(model.observed_RVs)} ({', '.join(v.name for v in model.observed_RVs) or 'none'})"
        )
    return model.observed_RVs[0].name


def check_refit_sampler(sampler: dict[str, Any]) -> None:
    """Refuse, before any work, a sampler that cannot refit (the optimisers)."""
    if sampler.get("name") in ("map", "mle"):
        raise ConfigError(f"task=sbc needs a NUTS sampler (nutpie, pymc, numpyro), not sampler={sampler['name']}")
    check_sampler(sampler)


class Refitter:
    """Fit ``model`` to new values of its observed variable (or of its ``pm.Data`` variables
    ``data_names``), compiling once where it can."""

    def __init__(self, model: pm.Model, sampler: dict[str, Any],
                 data_names: tuple[str, ...] | None = None) -> None:
        check_refit_sampler(sampler)
        if data_names is None:
            name = observed_name(model)
            rv = model[name]
            self.data = {DATA_NAME: pytensor.shared(np.asarray(model.rvs_to_values[rv].data, dtype=rv.dtype),
                                                    name=DATA_NAME)}
            self.model = pm.observe(model, {name: self.data[DATA_NAME]})
        else:
            self.data, self.model = {name: model[name] for name in data_names}, model
        self.sampler = sampler
        self.compiled = None
        if sampler["nuts_sampler"] == "nutpie":
            import nutpie

            self.compiled = nutpie.compile_pymc_model(self.model, backend=sampler.get("backend", "numba"))

    def fit(self, values: np.ndarray | dict[str, np.ndarray], seed: int,
            initvals: dict[str, np.ndarray] | None = None) -> xr.DataTree:
        """The posterior given ``values`` (same shape and type as the configured data; a
        dict by data name for a model with several)."""
        if not isinstance(values, dict):
            (name,) = self.data
            values = {name: values}
        values = {name: np.asarray(values[name], dtype=var.dtype) for name, var in self.data.items()}
        if self.compiled is None:
            for name, var in self.data.items():
                var.set_value(values[name])
            return sample(self.model, self.sampler, seed, initvals=initvals, pointwise=lambda tree, s: {})
        import nutpie

        compiled = self.compiled.with_data(**values)
        if initvals:
            compiled = dataclasses.replace(compiled, initial_point_func=self._initial_point(initvals))
        return nutpie.sample(
            compiled,
            draws=int(self.sampler["draws"]),
            tune=int(self.sampler["tune"]),
            chains=int(self.sampler["chains"]),
            cores=int(self.sampler.get("cores", 1)),
            seed=int(seed),
            save_warmup=False,
            progress_bar=False,
            target_accept=float(self.sampler.get("target_accept", 0.8)),
            adaptation=self.sampler.get("adaptation", "diag"),
        )

    def _initial_point(self, initvals: dict[str, np.ndarray]):
        """nutpie's start: a flat array of the transformed free variables, in the model's order."""
        point = make_initial_point_fn(model=self.model, overrides=initvals, jitter_rvs=set(self.model.free_RVs),
                                      return_transformed=True)
        names = [self.model.rvs_to_values[rv].name for rv in self.model.free_RVs]
        lock = threading.Lock()  # nutpie starts its chains from several threads

        def flat(seed=None) -> np.ndarray:
            with lock:
                values = point(seed)
            return np.concatenate([np.asarray(values[n], dtype="float64").ravel() for n in names])

        return flat

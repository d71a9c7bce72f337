"""One model compiled once and fitted to many simulated data sets (``task=sbc``).

The model is built once on the configured design; its observed variable is then made to
observe a shared variable (``pm.observe``), so that a new data set of the same shape is a
new value of that variable, not a new model. With ``sampler=nutpie`` the log density and
gradient are compiled once and each fit swaps the data in (``CompiledModel.with_data``):
a fit costs its sampling only. The other NUTS samplers (``pymc``, ``numpyro``) are given
the new value and sample as usual, which recompiles (from PyTensor's cache) in every fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pymc as pm
import pytensor
import xarray as xr

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
    """Fit ``model`` to new values of its observed variable, compiling once where it can."""

    def __init__(self, model: pm.Model, sampler: dict[str, Any]) -> None:
        check_refit_sampler(sampler)
        name = observed_name(model)
        rv = model[name]
        self.data = pytensor.shared(np.asarray(model.rvs_to_values[rv].data, dtype=rv.dtype), name=DATA_NAME)
        self.model = pm.observe(model, {name: self.data})
        self.sampler = sampler
        self.compiled = None
        if sampler["nuts_sampler"] == "nutpie":
            import nutpie

            self.compiled = nutpie.compile_pymc_model(self.model, backend=sampler.get("backend", "numba"))

    def fit(self, values: np.ndarray, seed: int) -> xr.DataTree:
        """The posterior given ``values`` (same shape and type as the configured data)."""
        values = np.asarray(values, dtype=self.data.dtype)
        if self.compiled is None:
            self.data.set_value(values)
            return sample(self.model, self.sampler, seed, pointwise=lambda tree, s: {})
        import nutpie

        return nutpie.sample(
            self.compiled.with_data(**{DATA_NAME: values}),
            draws=int(self.sampler["draws"]),
            tune=int(self.sampler["tune"]),
            chains=int(self.sampler["chains"]),
            cores=int(self.sampler.get("cores", 1)),
            seed=int(seed),
            save_warmup=False,
            progress_bar=False,
            target_accept=float(self.sampler.get("target_accept", 0.8)),
        )

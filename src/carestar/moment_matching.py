r"""The PyMC side of PSIS-LOO moment matching (Paananen et al. 2021) for a model whose
pointwise log likelihood is not an observed variable (a ``pm.Potential``, with units the
model computes itself): the draws on the sampler's unconstrained scale, the log posterior
density there, and the constrained variables at any unconstrained point.

Moment matching moves the draws :math:`\theta^{(s)}` (unconstrained) by an affine map
towards the leave-one-out posterior of a unit :math:`i`, and reweights them with

.. math::

    \log w^{(s)} = \log p(T\theta^{(s)} \mid y) - \log p(y_i \mid T\theta^{(s)})
                   - \log g(T\theta^{(s)}),

so it needs :math:`\log p(\theta \mid y)` up to a constant at unconstrained points
(``UnconstrainedPosterior.log_prob``, Jacobian included) and the unit's log likelihood
there, which the model computes from the constrained variables
(``UnconstrainedPosterior.constrained``). ArviZ runs the algorithm
(``carestar.diagnostics.loo``); ``arviz_stats``'s own builder needs an observed variable.

The draws must be the sampler's own: a model that relabels its latent classes after
sampling passes the draws as sampled (the log likelihood of a unit does not change under
relabelling, but the prior of a re-referenced class effect does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor
import xarray as xr


@dataclass(frozen=True)
class MomentMatching:
    """What ``arviz_stats.loo_moment_match`` needs: the sampled draws on the unconstrained
    scale ``upars`` (chain, draw, upar), ``log_prob(upars)`` -> (chain, draw) and
    ``log_lik_i(upars, i)`` -> (chain, draw), unit ``i``'s log likelihood."""

    upars: xr.DataArray
    log_prob: Callable[[xr.DataArray], xr.DataArray]
    log_lik_i: Callable[[xr.DataArray, int], xr.DataArray]


@dataclass(frozen=True)
class UnconstrainedPosterior:
    """A PyMC model's posterior on its unconstrained scale (the module docstring).

    ``upars``: (chain, draw, upar) the sampled draws; ``log_prob(upars)`` and
    ``constrained(upars, names)`` evaluate any such array draw by draw.
    """

    upars: xr.DataArray
    _blocks: tuple[tuple[str, tuple[int, ...]], ...]
    _log_prob: Callable
    _values: Callable
    _value_names: tuple[str, ...]

    def split(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """(S, P) flat unconstrained draws -> {value var: (S, *shape)}."""
        out, start = {}, 0
        for name, shape in self._blocks:
            size = int(np.prod(shape, dtype=int))
            out[name] = flat[:, start:start + size].reshape((-1, *shape))
            start += size
        return out

    def _each_draw(self, upars: xr.DataArray, fn: Callable) -> tuple[list, tuple[int, int]]:
        upars = upars.transpose("chain", "draw", ...)
        n_chain, n_draw = upars.sizes["chain"], upars.sizes["draw"]
        values = self.split(np.asarray(upars.values, dtype=float).reshape(n_chain * n_draw, -1))
        return [fn(**{n: v[s] for n, v in values.items()}) for s in range(n_chain * n_draw)], (n_chain, n_draw)

    def log_prob(self, upars: xr.DataArray) -> xr.DataArray:
        """(chain, draw) log p(theta, y) at unconstrained draws, the transforms' Jacobian included."""
        out, shape = self._each_draw(upars, self._log_prob)
        return xr.DataArray(np.asarray(out, dtype=float).reshape(shape), dims=("chain", "draw"),
                            coords={"chain": upars["chain"], "draw": upars["draw"]})

    def constrained(self, upars: xr.DataArray) -> dict[str, np.ndarray]:
        """{free variable or Deterministic: (chain, draw, *shape)} at unconstrained draws."""
        out, (n_chain, n_draw) = self._each_draw(upars, self._values)
        return {name: np.stack([draw[k] for draw in out]).reshape((n_chain, n_draw, *np.shape(out[0][k])))
                for k, name in enumerate(self._value_names)}

    def moment_matching(self, unit_log_lik: Callable[[dict[str, np.ndarray], int], np.ndarray]
                        ) -> MomentMatching:
        """``MomentMatching`` with ``log_lik_i`` from ``unit_log_lik(values, i)`` -> (S,), where
        ``values`` are ``constrained``'s arrays with (chain, draw) flattened to S."""
        def log_lik_i(upars: xr.DataArray, i: int) -> xr.DataArray:
            values = {n: v.reshape((-1, *v.shape[2:])) for n, v in self.constrained(upars).items()}
            return xr.DataArray(np.asarray(unit_log_lik(values, int(i))).reshape(
                upars.sizes["chain"], upars.sizes["draw"]), dims=("chain", "draw"),
                coords={"chain": upars["chain"], "draw": upars["draw"]})

        return MomentMatching(self.upars, self.log_prob, log_lik_i)


def unconstrained_posterior(model: pm.Model, posterior: xr.Dataset) -> UnconstrainedPosterior:
    """``posterior`` (the sampled draws, constrained) of ``model`` on its unconstrained scale."""
    value_vars = list(model.value_vars)
    point = model.initial_point()
    blocks = tuple((v.name, tuple(np.shape(point[v.name]))) for v in value_vars)
    forward = _forward_transforms(model)
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    rvs = [model.values_to_rvs[v].name for v in value_vars]
    draws = {n: posterior[n].transpose("chain", "draw", ...).values for n in rvs}
    flat = np.stack([
        np.concatenate([np.ravel(u) for u in forward(*(draws[n][c, d] for n in rvs))])
        for c in range(n_chain) for d in range(n_draw)]).reshape(n_chain, n_draw, -1)
    labels = [name if not shape else f"{name}[{','.join(map(str, i))}]"
              for name, shape in blocks for i in np.ndindex(*shape)]
    upars = xr.DataArray(flat, dims=("chain", "draw", "upar"),
                         coords={"chain": posterior["chain"], "draw": posterior["draw"], "upar": labels})
    log_prob = model.compile_fn(model.logp(jacobian=True), inputs=value_vars, on_unused_input="ignore",
                                point_fn=False)
    outputs = model.unobserved_value_vars
    named = [o for o in outputs if o.name and o.name in set(posterior.data_vars)]
    values = model.compile_fn(named, inputs=value_vars, on_unused_input="ignore", point_fn=False)
    return UnconstrainedPosterior(upars, blocks, log_prob, values, tuple(o.name for o in named))


def _forward_transforms(model: pm.Model) -> Callable:
    """A compiled function: each free variable's constrained value -> its value variable."""
    inputs, outputs = [], []
    for value in model.value_vars:
        rv = model.values_to_rvs[value]
        x = rv.type()
        x.name = rv.name
        transform = model.rvs_to_transforms[rv]
        inputs.append(x)
        outputs.append(x if transform is None else transform.forward(x, *rv.owner.inputs))
    return pytensor.function(inputs, outputs, on_unused_input="ignore")

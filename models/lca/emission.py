r"""The ordered-logit item emission of a latent class model, as a PyMC graph.

Ordinal items (the same categories :math:`0..C-1` for all of them) get shared cutpoints
per item and one location per class and item, the locations summing to zero over classes:

.. math::

    P(y_{ij} \le c \mid z_i = k) = \text{logit}^{-1}(\tau_{jc} - \eta_{kj}),\quad
    \tau_{j\cdot} \text{ ordered } \sim N(0, \sigma_\tau^2),\quad
    \eta_{\cdot j} \sim \text{ZeroSumNormal}(\sigma_\eta)\ \text{(over classes)}

so :math:`C - 1 + K - 1` parameters per item instead of :math:`K (C - 1)` free
probabilities. ``model=lca`` (``ordinal_emission: true``) and ``model=joint`` use it; the
numpy second implementation is ``models.lca.ordinal_probs`` and the starting values
from an EM solution ``models.lca.ordinal_initial_values``.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from carestar.priors import iid_cutpoints

__all__ = ["ordered_logit_emission"]


def ordered_logit_emission(model: pm.Model, items: list[str], n_categories: int,
                           n_classes: int, *, cutpoint_sigma: float, location_sigma: float,
                           cutpoints: str = "cutpoints", location: str = "class_location",
                           item_dim: str = "item_ordinal", cutpoint_dim: str = "cutpoint"):
    """Add the emission's variables to ``model`` (inside its context); return the
    (class, item, category) probabilities, clipped off 0 so their log stays finite.

    ``cutpoints`` (item_dim, cutpoint_dim), ordered; ``location`` (item_dim, class): the
    class is the *last* axis because ZeroSumNormal sums to zero over its last axes (each
    item's class locations sum to zero).
    """
    J, C, K = len(items), n_categories, n_classes
    model.add_coord(item_dim, list(items))
    model.add_coord(cutpoint_dim, list(range(C - 1)))
    start = np.tile(np.linspace(-1.0, 1.0, C - 1), (J, 1))  # chains start at the EM solution
    tau = iid_cutpoints(cutpoints, pm.Normal, {"mu": 0.0, "sigma": cutpoint_sigma}, start,
                        (item_dim, cutpoint_dim))
    if K > 1:
        eta = pm.ZeroSumNormal(location, sigma=location_sigma, dims=(item_dim, "class")).T
    else:
        eta = pt.zeros((1, J))
    cdf = pm.math.sigmoid(tau[None] - eta[..., None])  # (K, J, C-1)
    cdf = pt.concatenate([pt.zeros((K, J, 1)), cdf, pt.ones((K, J, 1))], axis=-1)
    return pt.clip(pt.diff(cdf, axis=-1), 1e-300, 1.0)

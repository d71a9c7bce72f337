r"""``task=sbc model=lca``: the latent class model's own generator (``carestar.sbc_problem``).

The likelihood is a ``pm.Potential``, so PyMC's prior predictive gives the parameters only:
``class_shares`` :math:`\pi`, the free ``item_probs_C{c}`` and the ordinal emission's
``cutpoints`` (sorted i.i.d. normals: ``carestar.priors.iid_cutpoints``) and
``class_location``, with the Deterministic ``item_probs`` :math:`\theta` (class, item,
category) of all of them. Given draw :math:`s`, a data set of the configured data's shape:

.. math::

    z_i \sim \text{Categorical}(\pi^{(s)}), \qquad
    y_{ij} \sim \text{Categorical}(\theta^{(s)}_{z_i j \cdot}) \quad (j \text{ answered by } i
    \text{ in the configured data: the same missing answers}),

as one-hot answers, the model's ``pm.Data`` ``answers``. Each fit starts where ``model=lca``
starts, at the EM solution of its own data set (``model.em_starts`` starts and the rule to
reach the best twice). Canonical labels: every draw's classes ordered by use
(``models.lca.em.class_use`` of its item probabilities, as EM orders its classes), in the
truths and the posterior draws alike.

Not supported (refused before any work): covariates of class membership (the coefficients
are relative to class 1, which a relabelling changes) and frequency weights.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from carestar import relabel
from carestar.errors import ConfigError
from carestar.sbc_problem import Generator
from models.lca.em import class_use, fit_em
from models.lca.initial_values import initial_values
from models.lca.simulate import categorical

if TYPE_CHECKING:
    from models.lca.data import PreparedLCA
    from models.lca.model import LatentClassModel


def generator(model: LatentClassModel, prepared: PreparedLCA) -> Generator:
    from models.lca.model import ANSWERS

    r = prepared.responses
    if prepared.design is not None:
        raise ConfigError("task=sbc of model=lca: covariates of class membership are not supported (their "
                          "coefficients are relative to class 1, which the canonical relabelling changes); "
                          "expected model.covariates=[]")
    if r.weights is not None:
        raise ConfigError("task=sbc simulates one organisation per row: it does not take frequency weights "
                          "(data.weights); expand the rows instead")
    graph = model.build(prepared)

    def simulate(theta: xr.Dataset, rng: np.random.Generator) -> np.ndarray:
        return classes_and_answers(theta, r.observed, rng)[1]

    def initvals(values: np.ndarray) -> dict[str, np.ndarray]:
        codes = np.where(r.observed, values.argmax(axis=-1), -1)
        resp = replace(r, codes=codes)
        em = fit_em(resp, prepared.n_classes, seed=model.seed, n_init=model.em_starts,
                    max_starts=model.em_max_starts)
        return initial_values(replace(prepared, responses=resp, em=em))

    return Generator(graph, (ANSWERS,), simulate, lambda ds: by_use(ds, r.n_categories), initvals)


def classes_and_answers(theta: xr.Dataset, answered: np.ndarray, rng: np.random.Generator
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Each organisation's class drawn from ``class_shares`` and its answers from that
    class's ``item_probs`` (class, item, category), where ``answered`` (org, item):
    (classes, one-hot answers (org, item, category), zeros where not answered)."""
    probs = np.asarray(theta["item_probs"].values, float)
    shares = np.asarray(theta["class_shares"].values, float)
    z = rng.choice(len(shares), size=answered.shape[0], p=shares)
    codes = categorical(probs[z], rng)  # (N, J)
    return z, ((codes[..., None] == np.arange(probs.shape[-1])) & answered[..., None]).astype(float)


def by_use(ds: xr.Dataset, n_categories) -> xr.Dataset:
    """Every draw's classes ordered by use (lowest first), every variable with a class dim."""
    use = class_use(np.asarray(ds["item_probs"].values, float), n_categories)  # (chain, draw, K)
    return relabel.relabel_dataset(ds, np.argsort(use, axis=-1))

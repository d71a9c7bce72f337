r"""``task=sbc model=joint``: the joint model's own generator (``carestar.sbc_problem``).

The likelihood is a ``pm.Potential``, so PyMC's prior predictive gives the parameters only.
Given draw :math:`s`, a data set of the configured study's shape (its organisations, their
missing answers, rating years, regimes, strategy types and resources):

.. math::

    z_i \sim \text{Categorical}(\pi^{(s)}),\quad
    y_{ij} \sim \text{Categorical}(\theta^{(s)}_{z_i j \cdot}),\quad
    P(s_{it} \le c) = F\big(c^{(s)}_c - \eta^{(s)}_{it} - \gamma^{(s)}_{z_i}\big)

(``models.lca.sbc.classes_and_answers``; ``models.joint.likelihood.linear_predictor``;
``models.ordinal_likelihood.category_probabilities`` with each year's regime), as the model's
``pm.Data`` ``answers`` (one-hot) and ``stars``. Each fit starts where ``model=joint`` starts,
at the EM solution of its own answers. Canonical labels: every draw's classes ordered by use
(``models.lca.sbc.by_use``), then class 1 made the reference of the class effects again,
the cutpoints shifted with them (``models.joint.relabelling.rereference``), in the truths
and the posterior draws alike.

The prior is not symmetric in the labels (class 1's effect is 0, the others' Normal), and
the fit reports the mode its EM start labels, class 1 the lowest use. So each prior draw is
first put in that labelling (``as_fitted``): its classes (shares, item parameters) ordered
by use, its class effects left where they were drawn, so that the lowest-use class has effect
0 as in the fit. Without it, a draw whose class 1 was not the lowest use gave a truth from
another prior (relative to the lowest-use class, the effects then have prior variance
:math:`2\sigma^2` and are correlated), and the high-use class's effect ranked too low
(experiments/sbc, 2026-12-04).

Not supported (refused before any work): latent strategy stances (``model.strategy=latent``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from carestar.errors import ConfigError
from carestar.sbc_problem import Generator
from models.joint.likelihood import linear_predictor
from models.joint.relabelling import rereference
from models.lca import fit_em
from models.lca.sbc import by_use, classes_and_answers
from models.lca.simulate import categorical
from models.ordinal_likelihood import category_probabilities

if TYPE_CHECKING:
    from models.joint.model import JointModel
    from models.joint.prepared import PreparedJoint


def generator(model: JointModel, prep: PreparedJoint) -> Generator:
    from models.joint.model import ANSWERS, STARS

    if prep.likert is not None:
        raise ConfigError("task=sbc of model=joint: latent strategy stances (model.strategy=latent) are not "
                          "supported; expected model.strategy=type")
    graph = model.build(prep)
    d, r = prep.design, prep.responses
    lowest = None if d.lowest is None else np.asarray(d.lowest)

    def simulate(theta: xr.Dataset, rng: np.random.Generator) -> dict[str, np.ndarray]:
        z, answers = classes_and_answers(theta, r.observed, rng)
        v = {name: np.asarray(theta[name].values, float)[None] for name in ("beta", "org_effect", "year_effect")}
        eta = linear_predictor(v, prep)[0] + np.asarray(theta["class_effects"].values, float)[z[prep.org_of_row]]
        p = category_probabilities(model.link, eta, np.asarray(theta["cutpoints"].values, float), lowest)
        return {ANSWERS: answers, STARS: categorical(p, rng).astype("int64")}

    def initvals(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        resp = replace(r, codes=np.where(r.observed, values[ANSWERS].argmax(axis=-1), -1))
        em = fit_em(resp, prep.n_classes, seed=model.seed, n_init=model.em_starts)
        return model.initvals(replace(prep, responses=resp, em=em))

    def canonical(ds: xr.Dataset) -> xr.Dataset:
        return rereference(by_use(ds, r.n_categories))

    def as_fitted(prior: xr.Dataset) -> xr.Dataset:
        return by_use(prior, r.n_categories).assign(class_effects=prior["class_effects"])

    return Generator(graph, (ANSWERS, STARS), simulate, canonical, initvals, as_fitted)

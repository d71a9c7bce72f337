"""The three-step shortcut for ``experiments/three_step``: classify the organisations
(EM modal class or k-means, ordered by use), then regress the ratings on the classes with
the ordinal model; how the classifications agree with each other and the truth."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from carestar.design import RegressionDesign
from carestar.errors import ConfigError
from carestar.item_responses import ItemResponses
from models.joint.prepared import PreparedJoint
from models.joint.summaries import draws_table
from models.lca import LCATruth

# classification method (model.three_step.classify) -> table of its class effects
THREE_STEP_TABLES = {"em": "three_step_class_effects",
                     "kmeans": "three_step_kmeans_class_effects"}


def three_step_methods(three_step: dict[str, Any]) -> tuple[str, ...]:
    """The classification methods of ``model.three_step.classify`` (default ``[em]``).

    A single name counts as a one-item list; an unknown name raises ``ConfigError``.
    """
    methods = three_step.get("classify", ["em"])
    methods = [methods] if isinstance(methods, str) else list(methods)
    bad = [m for m in methods if m not in THREE_STEP_TABLES]
    if bad:
        raise ConfigError(f"model.three_step.classify: unknown method(s) {bad}; expected a"
                          f" list of {list(THREE_STEP_TABLES)}")
    return tuple(dict.fromkeys(methods))


def order_clusters_by_use(labels: np.ndarray, responses: ItemResponses) -> np.ndarray:
    """Cluster labels recoded 0..K-1 by increasing use of local practice.

    A cluster's use is the mean over items j of the (weighted) mean, over its members who
    answered j (codes >= 0), of code / (C_j - 1): 0 = never used, 1 = fully used. It is
    ``class_use`` with each cluster's answer frequencies in place of a class's item
    probabilities, so clusters get the order of the EM and joint model classes; the
    result does not depend on the labels' values (ties: in the order of those values).
    """
    values, index = np.unique(np.asarray(labels), return_inverse=True)
    scaled = np.where(responses.observed,
                      responses.codes / (np.asarray(responses.n_categories) - 1.0), 0.0)
    member = (index[:, None] == np.arange(len(values))) * responses.row_weights[:, None]
    total, answered = member.T @ scaled, member.T @ responses.observed  # (K, J) each
    item_use = np.divide(total, answered, out=np.full(total.shape, np.nan),
                         where=answered > 0)
    rank = np.empty(len(values), dtype=int)
    rank[np.argsort(np.nanmean(item_use, axis=1), kind="stable")] = np.arange(len(values))
    return rank[index]


def three_step_classes(prep: PreparedJoint, method: str, seed: int) -> np.ndarray:
    """Each organisation's class 0..K-1, ordered by increasing use, by ``method``.

    ``em``: the modal class of the EM solution (``prep.em``, already ordered by use);
    ``kmeans``: the study's k-means clusters (``models.kmeans.KMeansBaseline``, K clusters,
    random state ``seed``) ordered by ``order_clusters_by_use``.
    """
    if method == "em":
        return prep.em.posterior.argmax(axis=1)
    if method != "kmeans":
        raise ValueError(f"unknown classification method {method!r}")
    from models.kmeans import KMeansBaseline

    labels = KMeansBaseline(n_clusters=prep.n_classes).fit(prep.responses, seed=seed).labels
    return order_clusters_by_use(labels, prep.responses)


def true_classes(prep: PreparedJoint) -> np.ndarray | None:
    """Each organisation's generating class (simulated data), or None when unknown."""
    truth = LCATruth.from_study(SimpleNamespace(truth=prep.truth), prep.responses)
    return None if truth is None else truth.classes


def classification_agreement(classes: dict[str, np.ndarray]) -> pd.DataFrame:
    """Adjusted Rand index (1 = the same partition, 0 = chance) of each pair of labellings."""
    from itertools import combinations

    from models.kmeans import adjusted_rand

    pairs = list(combinations(classes, 2))
    return pd.DataFrame({"comparison": [f"{a} vs {b}" for a, b in pairs],
                         "adjusted_rand_index": [adjusted_rand(classes[a], classes[b])
                                                 for a, b in pairs]})


def three_step_tables(prep: PreparedJoint, methods: tuple[str, ...], sampler: dict[str, Any],
                      seed: int, link: str = "logit", priors: dict[str, Any] | None = None
                      ) -> dict[str, pd.DataFrame]:
    """Classify by each method, regress, tabulate; and how the classifications agree.

    ``THREE_STEP_TABLES[method]``: the class effects of the ordinal fit on that method's
    classes (``draws_table``); ``three_step_agreement``: adjusted Rand indices between
    the methods' classes and the true classes (``truth``, simulated data), when there
    are at least two labellings.
    """
    classes = {m: three_step_classes(prep, m, seed) for m in methods}
    out = {}
    for method, c in classes.items():
        fit = fit_three_step(prep, sampler, seed, classes=c, link=link, priors=priors)
        out[THREE_STEP_TABLES[method]] = draws_table(
            three_step_class_effects(fit, prep.n_classes), prep)
    truth = true_classes(prep)
    labellings = classes if truth is None else {**classes, "truth": truth}
    if len(labellings) > 1:
        out["three_step_agreement"] = classification_agreement(labellings)
    return out


def three_step_design(prep: PreparedJoint, classes: np.ndarray) -> RegressionDesign:
    """The joint model's ratings design plus class indicators (class 1 the reference).

    ``classes``: one class code 0..K-1 per organisation (``prep.orgs`` order), e.g. the EM
    modal class; columns ``class[k]`` for k = 2..K.
    """
    d = prep.design
    row_class = np.asarray(classes)[prep.org_of_row]
    extra = {f"class[{k}]": (row_class == k - 1).astype(float) for k in prep.class_labels[1:]}
    return replace(d, X=d.X.assign(**extra))


def fit_three_step(prep: PreparedJoint, sampler: dict[str, Any], seed: int,
                   classes: np.ndarray | None = None, link: str = "logit",
                   priors: dict[str, Any] | None = None) -> xr.DataTree:
    """Classify (EM modal class unless ``classes`` given), then the ordinal model on classes.

    The regression is ``model=ordinal`` as a user would fit it: its own default priors for
    the effects (class indicators included) and cutpoints; the joint model's group SD and
    year-effect priors, which mean the same in both, are passed on.
    """
    from carestar.sampling import sample
    from models.ordinal import OrdinalModel

    if classes is None:
        classes = three_step_classes(prep, "em", seed)
    design = three_step_design(prep, classes)
    shared = {block: values for block, values in (priors or {}).items() if block in ("group_sd", "year_effects")}
    ordinal = OrdinalModel(link=link, priors=shared)
    return sample(ordinal.build(design), {**sampler, "posterior_predictive": False}, seed)


def three_step_class_effects(idata: xr.DataTree, n_classes: int) -> np.ndarray:
    """(K, S) class effect draws of a three-step fit (class 1 = 0)."""
    beta = idata["posterior"]["beta"]
    rows = [np.zeros(beta.sizes["chain"] * beta.sizes["draw"])]
    for k in range(2, n_classes + 1):
        rows.append(beta.sel(effect=f"class[{k}]").stack(sample=("chain", "draw")).values)
    return np.array(rows)

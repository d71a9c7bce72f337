"""What a latent class fit is given: item responses (and covariates) from a study or a
CSV, the prepared inputs of ``build``, and the generating classes of simulated data."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from carestar import relabel
from carestar.errors import ConfigError
from carestar.item_responses import ItemResponses
from models.lca.em import EMFit
from models.lca.relabelling import class_features


@dataclass(frozen=True)
class PreparedLCA:
    """What ``build`` and the post-processing need: responses, design, EM solution."""

    responses: ItemResponses
    n_classes: int
    design: np.ndarray | None
    coef_names: tuple[str, ...]
    em: EMFit
    ordinal_items: tuple[int, ...]  # item indices with an ordered-logit emission
    truth: LCATruth | None = None  # simulated data: the generating classes and parameters
    item_labels: dict[str, str] | None = None  # item name -> label for figures

    @property
    def class_labels(self) -> list[int]:
        return list(range(1, self.n_classes + 1))


@dataclass(frozen=True)
class LCATruth:
    """The generating latent classes of a simulated study, aligned with the responses.

    names:   true class names (e.g. low / medium / high)
    classes: (N,) index into ``names`` of each row's true class
    shares:  (K_true,) class shares; probs: (K_true, J, max_categories), 0 beyond an item
    """

    names: tuple[str, ...]
    classes: np.ndarray
    shares: np.ndarray
    probs: np.ndarray

    @classmethod
    def from_study(cls, study: Any, responses: ItemResponses) -> LCATruth | None:
        """From ``study.truth["local_practice"]`` (the synthetic study), or None."""
        truth = (getattr(study, "truth", None) or {}).get("local_practice")
        if not truth or "class_of_org" not in truth:
            return None
        names = tuple(truth.get("classes") or truth["class_shares"])
        index = {n: k for k, n in enumerate(names)}
        of_org = truth["class_of_org"]
        if any(o not in of_org for o in responses.orgs):
            return None
        probs = np.zeros((len(names), responses.n_item, responses.max_categories))
        table = truth.get("item_probabilities", {})
        for j, item in enumerate(responses.items):
            if item in table.get("degree_of_use", {}):
                for n, p in table["degree_of_use"][item].items():
                    probs[index[n], j, : len(p)] = p
            elif item in table.get("used", {}):
                for n, p in table["used"][item].items():
                    probs[index[n], j, :2] = [1.0 - p, p]
            else:
                return None
        return cls(names, np.array([index[of_org[o]] for o in responses.orgs]),
                   np.array([truth["class_shares"][n] for n in names], float), probs)

    def match(self, probs: np.ndarray, shares: np.ndarray) -> np.ndarray | None:
        """``perm`` with estimated class ``perm[t]`` matched to true class ``t`` (None if K differs)."""
        if len(shares) != len(self.shares):
            return None
        return relabel.match_classes(class_features(probs[None, None], shares[None, None])[0, 0],
                                     class_features(self.probs[None, None],
                                                    self.shares[None, None])[0, 0])


def item_responses(data: Any, items: list[str] | None, covariates: list[str]) -> ItemResponses:
    """ItemResponses from a Study, a TidyTable-like object (``.frame``) or itself."""
    if isinstance(data, ItemResponses):
        resp = data if items is None else data.select(items)
        return resp
    if hasattr(data, "local_practice"):
        resp = ItemResponses.from_study(data, items)
        if covariates:
            resp = with_study_covariates(resp, data, covariates)
        return resp
    if hasattr(data, "frame"):
        frame = data.frame
        weights = getattr(data, "weights", None)
        if weights is not None and not isinstance(weights, str):
            weights = np.asarray(weights, float)
        levels = getattr(data, "levels", None)
        return ItemResponses.from_frame(
            frame,
            items,
            weights=weights,
            covariates=covariates,
            source=str(getattr(data, "source", getattr(data, "path", "data"))),
            levels=levels if isinstance(levels, dict) else None,
        )
    raise ConfigError(
        f"model=lca needs study data or a tidy CSV, got {type(data).__name__}"
    )


def with_study_covariates(resp: ItemResponses, study, names: list[str]) -> ItemResponses:
    """Attach per-organisation numeric covariates found in the study's tables."""
    cols = {}
    for name in names:
        for table in ("strategy", "organisations", "resources"):
            t = getattr(study, table, None)
            if t is not None and name in t.columns:
                vals = pd.to_numeric(t[name], errors="coerce")
                if vals.notna().sum() < t[name].notna().sum():
                    raise ConfigError(f"model.covariates: '{name}' in {table} is not numeric")
                cols[name] = vals.groupby(t["org"]).mean()  # years averaged
                break
        else:
            raise ConfigError(
                f"model.covariates: '{name}' is not a column of strategy, organisations or"
                " resources"
            )
    cov = pd.DataFrame({n: c.reindex(list(resp.orgs)).to_numpy() for n, c in cols.items()})
    keep = cov.notna().all(axis=1).to_numpy()
    if not keep.all():
        warnings.warn(f"{int((~keep).sum())} organisation(s) without covariates dropped",
                      stacklevel=2)
    return ItemResponses(
        orgs=tuple(o for o, k in zip(resp.orgs, keep, strict=True) if k),
        items=resp.items, codes=resp.codes[keep], n_categories=resp.n_categories,
        category_labels=resp.category_labels, kinds=resp.kinds,
        weights=None if resp.weights is None else resp.weights[keep],
        covariates=cov.loc[keep].reset_index(drop=True), source=resp.source,
    )

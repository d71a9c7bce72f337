"""What a latent class fit is given: item responses (and covariates) from a study or a
CSV, the prepared inputs of ``build``, and the generating classes of simulated data."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from carestar import relabel
from carestar.errors import ConfigError, DataError
from carestar.item_responses import ItemResponses
from models.lca.covariates import formula_columns, is_formula, with_formula_columns
from models.lca.em import EMFit
from models.lca.relabelling import class_features

log = logging.getLogger(__name__)


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
    n_dropped: int = 0  # rows (organisations) data.dropna=true dropped

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


def item_responses(data: Any, items: list[str] | None, covariates: list[str] | str,
                   dropna: bool | None = None) -> ItemResponses:
    """ItemResponses from a Study, a TidyTable-like object (``.frame``) or itself.

    ``covariates``: column names or a formula right-hand side (``models.lca.covariates``).
    ``dropna`` (None: the data's own ``dropna``, ``data.dropna``): drop rows with a missing
    item or covariate, else a missing covariate is an error (``ItemResponses.from_frame``).
    """
    if dropna is None:
        dropna = bool(getattr(data, "dropna", False))
    if isinstance(data, ItemResponses):
        resp = data if items is None else data.select(items)
        return resp
    if hasattr(data, "local_practice"):
        resp = ItemResponses.from_study(data, items)
        if is_formula(covariates):
            raise ConfigError("model.covariates as a formula needs a CSV (data=csv); give the"
                              " study's covariates as a list, e.g. [spend_per_head]")
        if covariates:
            resp = with_study_covariates(resp, data, covariates, dropna)
        elif dropna:
            resp = drop_missing_items(resp)
        return resp
    if hasattr(data, "frame"):
        frame = data.frame
        weights = getattr(data, "weights", None)
        if weights is not None and not isinstance(weights, str):
            weights = np.asarray(weights, float)
        levels = getattr(data, "levels", None)
        source = str(getattr(data, "source", getattr(data, "path", "data")))
        names = list(covariates or [])
        if is_formula(covariates):
            used = formula_columns(covariates, list(map(str, frame.columns)))
            if items is None:
                skip = set(used) | ({weights} if isinstance(weights, str) else set())
                items = [c for c in map(str, frame.columns) if c not in skip]
            frame, names, _ = with_formula_columns(frame, covariates, source)
        return ItemResponses.from_frame(
            frame,
            items,
            weights=weights,
            covariates=names,
            source=source,
            levels=levels if isinstance(levels, dict) else None,
            dropna=dropna,
        )
    raise ConfigError(
        f"model=lca needs study data or a tidy CSV, got {type(data).__name__}"
    )


def drop_missing_items(resp: ItemResponses) -> ItemResponses:
    """Organisations with every item answered (``data.dropna=true``), with a log line."""
    keep = (resp.codes >= 0).all(axis=1)
    if not keep.all():
        log.warning("data.dropna=true: dropped %d of %d organisations with a missing item",
                    int((~keep).sum()), resp.n_org)
    return _subset(resp, keep, resp.covariates)


def _subset(resp: ItemResponses, keep: np.ndarray, cov: pd.DataFrame | None) -> ItemResponses:
    return ItemResponses(
        orgs=tuple(o for o, k in zip(resp.orgs, keep, strict=True) if k),
        items=resp.items, codes=resp.codes[keep], n_categories=resp.n_categories,
        category_labels=resp.category_labels, kinds=resp.kinds,
        weights=None if resp.weights is None else resp.weights[keep],
        covariates=None if cov is None else cov.loc[keep].reset_index(drop=True),
        source=resp.source,
    )


def with_study_covariates(resp: ItemResponses, study, names: list[str],
                          dropna: bool = False) -> ItemResponses:
    """Attach per-organisation numeric covariates found in the study's tables.

    An organisation without a covariate value is an error (naming them) unless ``dropna``;
    then it is dropped, as is one with a missing item, with a log line."""
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
        lacking = [str(o) for o, k in zip(resp.orgs, keep, strict=True) if not k]
        cols = [n for n in names if cov[n].isna().any()]
        if not dropna:
            raise DataError(f"{len(lacking)} organisation(s) have no value of {cols}",
                            file="study", column=", ".join(cols),
                            expected="a covariate value for every organisation",
                            hint="orgs: " + ", ".join(lacking[:10]))
        log.warning("data.dropna=true: dropped %d of %d organisations without %s",
                    len(lacking), resp.n_org, cols)
    out = _subset(resp, keep, cov)
    return drop_missing_items(out) if dropna else out

"""The study's original method, k-means clustering of local practice items: a baseline.

The organisations' item codes (degree of use 0-5, used 0/1) are treated as numbers,
standardised per item (z-scores; a missing answer gets the item's mean, i.e. 0), and
clustered with scikit-learn's ``KMeans`` (``n_init`` restarts). ``n_clusters`` fixes k;
``n_clusters: null`` picks k in ``k_range`` with the best mean silhouette.

It does not sample. How a run uses it (the run machinery wires this):

    model = KMeansBaseline(**cfg.model)
    prepared = model.prepare(data)           # Study, TidyTable-like (.frame) or ItemResponses
    result = model.fit(prepared, seed)       # KMeansResult
    result.profiles / result.silhouettes / result.labels -> tables/*.csv
    adjusted_rand(result.labels, other_labels)   # e.g. the LCA's modal classes

``KMeansResult.tables()`` gives the tables for the run directory (``cluster_sizes``,
``cluster_profiles`` (mean raw code of each item per cluster), ``assignments``,
``silhouette``) and ``compare_with(labels)`` the adjusted Rand index against another
labelling of the same organisations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score

from carestar.errors import ConfigError
from carestar.item_responses import ItemResponses


def adjusted_rand(labels_a, labels_b) -> float:
    """Adjusted Rand index of two labellings of the same organisations (1 = identical)."""
    a, b = np.asarray(labels_a), np.asarray(labels_b)
    if a.shape != b.shape:
        raise ValueError(f"labellings differ in length: {a.shape} vs {b.shape}")
    return float(adjusted_rand_score(a, b))


def standardised(responses: ItemResponses) -> np.ndarray:
    """Item codes as z-scores, missing answers at the item mean (0)."""
    x = responses.codes.astype(float)
    x[responses.codes < 0] = np.nan
    mean = np.nanmean(x, axis=0)
    sd = np.nanstd(x, axis=0)
    sd[sd == 0] = 1.0
    z = (x - mean) / sd
    return np.nan_to_num(z, nan=0.0)


@dataclass(frozen=True)
class KMeansResult:
    """Cluster assignments (1..k), profiles, and the silhouette of each k tried."""

    responses: ItemResponses
    k: int
    labels: np.ndarray
    profiles: pd.DataFrame
    silhouettes: dict[int, float]
    inertia: float
    extra: dict[str, Any] = field(default_factory=dict)

    def compare_with(self, other_labels) -> float:
        return adjusted_rand(self.labels, other_labels)

    def tables(self) -> dict[str, pd.DataFrame]:
        sizes = pd.Series(self.labels).value_counts().sort_index()
        return {
            "cluster_sizes": pd.DataFrame({"cluster": sizes.index, "n": sizes.to_numpy(),
                                           "share": sizes.to_numpy() / len(self.labels)}),
            "cluster_profiles": self.profiles.reset_index(),
            "assignments": pd.DataFrame({"org": list(self.responses.orgs),
                                         "cluster": self.labels}),
            "silhouette": pd.DataFrame({"k": list(self.silhouettes),
                                        "silhouette": list(self.silhouettes.values())}),
        }


class KMeansBaseline:
    """k-means on standardised item codes (the study's cluster analysis)."""

    name = "kmeans"

    def __init__(self, n_clusters: int | None = 3, k_range=(2, 6), items=None,
                 standardise: bool = True, n_init: int = 20, **_: Any) -> None:
        if n_clusters is not None and (int(n_clusters) != n_clusters or n_clusters < 1):
            raise ConfigError(f"model.n_clusters must be a whole number >= 1, got {n_clusters!r}")
        lo, hi = (int(v) for v in k_range)
        if n_clusters is None and not 2 <= lo <= hi:
            raise ConfigError(f"model.k_range must be [low, high] with 2 <= low <= high, got {k_range}")
        self.n_clusters = None if n_clusters is None else int(n_clusters)
        self.k_range = (lo, hi)
        self.items = items
        self.standardise = bool(standardise)
        self.n_init = int(n_init)

    def prepare(self, data: Any) -> ItemResponses:
        from models.lca import LatentClassModel  # same data handling as the LCA

        return LatentClassModel(n_classes=1, items=self.items).responses_from(data)

    def matrix(self, responses: ItemResponses) -> np.ndarray:
        if self.standardise:
            return standardised(responses)
        x = responses.codes.astype(float)
        x[responses.codes < 0] = np.nan
        return np.where(np.isnan(x), np.nanmean(x, axis=0), x)

    def fit(self, prepared: ItemResponses, seed: int = 0) -> KMeansResult:
        x = self.matrix(prepared)
        w = prepared.weights
        fits: dict[int, KMeans] = {}
        sil: dict[int, float] = {}
        ks = [self.n_clusters] if self.n_clusters else range(self.k_range[0], self.k_range[1] + 1)
        for k in ks:
            if k > len(np.unique(x, axis=0)):
                raise ConfigError(f"k={k} clusters but only {len(np.unique(x, axis=0))} distinct rows")
            km = KMeans(n_clusters=k, n_init=self.n_init, random_state=seed).fit(x, sample_weight=w)
            fits[k] = km
            sil[k] = float(silhouette_score(x, km.labels_)) if 1 < k < len(x) else float("nan")
        best = self.n_clusters or max(sil, key=lambda k: sil[k])
        km = fits[best]
        # clusters numbered 1..k by decreasing size
        sizes = np.bincount(km.labels_, minlength=best)
        order = np.argsort(-sizes, kind="stable")
        relabel = np.empty(best, dtype=int)
        relabel[order] = np.arange(1, best + 1)
        labels = relabel[km.labels_]
        raw = prepared.codes.astype(float)
        raw[prepared.codes < 0] = np.nan
        profiles = pd.DataFrame(raw, columns=list(prepared.items)).groupby(labels).mean()
        profiles.index.name = "cluster"
        return KMeansResult(prepared, best, labels, profiles, sil, float(km.inertia_))

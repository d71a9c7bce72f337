"""The study's original method, k-means clustering of local practice items: a baseline.

The organisations' item codes (degree of use 0-5, used 0/1) are treated as numbers,
standardised per item (z-scores; a missing answer gets the item's mean, i.e. 0), and
clustered with scikit-learn's ``KMeans`` (``n_init`` restarts). ``n_clusters`` fixes k;
``n_clusters: null`` picks k in ``k_range`` with the best mean silhouette.

It is a ``carestar.modelling.Model`` that does not sample (``samples = False``);
``python run.py model=kmeans`` runs it as:

    prepared = model.prepare(data)           # KMeansData: responses (+ true classes)
    result = model.fit(prepared, seed)       # KMeansResult
    result.tables()                          # -> tables/*.csv
    model.figures(result, prepared)  # {'cluster_profiles': Figure}
    model.report_section(result, prepared)

``KMeansResult.tables()`` gives the tables for the run directory (``cluster_sizes``,
``cluster_profiles`` (mean raw code of each item per cluster), ``assignments``,
``silhouette``, ``agreement``) and ``compare_with(labels)`` the adjusted Rand index against
another labelling of the same organisations. ``agreement`` holds the ARI against the true
classes (simulated data) and, with ``compare_lca: true``, against the modal classes of the
maximum likelihood latent class model with as many classes (StepMix EM, ``models.lca``).
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
from carestar.modelling import Model


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

    @property
    def agreement(self) -> dict[str, float]:
        """ARI against the true classes / the latent classes, where they were computed."""
        return {k: v for k, v in self.extra.items() if k.startswith("ari_")}

    def tables(self) -> dict[str, pd.DataFrame]:
        sizes = pd.Series(self.labels).value_counts().sort_index()
        out = {
            "cluster_sizes": pd.DataFrame({"cluster": sizes.index, "n": sizes.to_numpy(),
                                           "share": sizes.to_numpy() / len(self.labels)}),
            "cluster_profiles": self.profiles.reset_index(),
            "assignments": pd.DataFrame({"org": list(self.responses.orgs),
                                         "cluster": self.labels}),
            "silhouette": pd.DataFrame({"k": list(self.silhouettes),
                                        "silhouette": list(self.silhouettes.values())}),
        }
        if self.agreement:
            out["agreement"] = pd.DataFrame({
                "comparison": [AGREEMENT_NAMES[k] for k in self.agreement],
                "adjusted_rand_index": list(self.agreement.values())})
        if "true_classes" in self.extra:
            out["assignments"]["true_class"] = self.extra["true_classes"]
        if "lca_classes" in self.extra:
            out["assignments"]["lca_modal_class"] = self.extra["lca_classes"]
        return out


AGREEMENT_NAMES = {
    "ari_truth": "k-means clusters vs true classes",
    "ari_lca": "k-means clusters vs latent classes (ML, modal)",
    "ari_lca_truth": "latent classes (ML, modal) vs true classes",
}


@dataclass(frozen=True)
class KMeansData:
    """Item responses to cluster, the true class of each row (simulated data) and labels."""

    responses: ItemResponses
    true_classes: np.ndarray | None = None
    item_labels: dict[str, str] | None = None


class KMeansBaseline(Model):
    """k-means on standardised item codes (the study's cluster analysis)."""

    name = "kmeans"
    samples = False

    def __init__(self, n_clusters: int | None = 3, k_range=(2, 6), items=None,
                 standardise: bool = True, n_init: int = 20, compare_lca: bool = False,
                 **_: Any) -> None:
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
        self.compare_lca = bool(compare_lca)

    def prepare(self, data: Any) -> KMeansData:
        from models.lca import LatentClassModel, LCATruth  # same data handling as the LCA

        responses = LatentClassModel(n_classes=1, items=self.items).responses_from(data)
        truth = LCATruth.from_study(data, responses) if hasattr(data, "local_practice") else None
        labels = ((getattr(data, "truth", None) or {}).get("local_practice") or {}).get(
            "item_labels")
        return KMeansData(responses,
                          None if truth is None else np.array(truth.names)[truth.classes],
                          labels)

    def matrix(self, responses: ItemResponses) -> np.ndarray:
        if self.standardise:
            return standardised(responses)
        x = responses.codes.astype(float)
        x[responses.codes < 0] = np.nan
        return np.where(np.isnan(x), np.nanmean(x, axis=0), x)

    def fit(self, prepared: KMeansData | ItemResponses, seed: int = 0) -> KMeansResult:
        data = prepared if isinstance(prepared, KMeansData) else KMeansData(prepared)
        prepared = data.responses
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
        extra: dict[str, Any] = {}
        if data.true_classes is not None:
            extra["true_classes"] = data.true_classes
            extra["ari_truth"] = adjusted_rand(labels, data.true_classes)
        if self.compare_lca and best > 1:
            from models.lca import fit_em

            lca = fit_em(prepared, best, seed=seed).posterior.argmax(axis=1) + 1
            extra["lca_classes"] = lca
            extra["ari_lca"] = adjusted_rand(labels, lca)
            if data.true_classes is not None:
                extra["ari_lca_truth"] = adjusted_rand(lca, data.true_classes)
        return KMeansResult(prepared, best, labels, profiles, sil, float(km.inertia_), extra)

    # -- run directory -----------------------------------------------------------------
    def figures(self, result: KMeansResult, prepared: KMeansData) -> dict[str, Any]:
        """``cluster_profiles``: mean answer to each item by cluster (heat map), as % of the
        item's top category (0 = all at the lowest; a yes/no item: % yes), the colour bar on
        the scale of the printed numbers."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        r = result.responses
        labels = (prepared.item_labels or {}) if isinstance(prepared, KMeansData) else {}
        prof = result.profiles
        top = np.array([r.n_categories[j] - 1 for j in range(r.n_item)], float)
        percent = 100 * prof.to_numpy() / top  # 0 = lowest category, 100 = highest
        sizes = np.bincount(result.labels, minlength=result.k + 1)[1:]
        fig, ax = plt.subplots(figsize=(3.2 + 1.3 * result.k, 0.38 * r.n_item + 1.9))
        im = ax.imshow(percent.T, aspect="auto", cmap="viridis", vmin=0, vmax=100)
        for (i, j), v in np.ndenumerate(percent):
            ax.text(i, j, f"{v:.0f}", ha="center", va="center", fontsize="x-small",
                    color="white" if v < 60 else "black")
        ax.set_xticks(range(result.k), [f"cluster {c}\n(n = {n})" for c, n in
                                        zip(prof.index, sizes, strict=True)], fontsize="small")
        ax.set_yticks(range(r.n_item), [labels.get(i, i) for i in r.items], fontsize="small")
        ax.set_xlabel("k-means cluster")
        fig.colorbar(im, ax=ax, label="mean answer, % of the item's top category\n"
                                      "(0-5 degree of use: 100 = all at 5; yes/no: % yes)")
        ax.set_title("k-means cluster profiles (numbers: the colour's value, %)", fontsize="medium")
        return {"cluster_profiles": fig}

    def report_section(self, result: KMeansResult, prepared: KMeansData) -> str:
        r = result.responses
        how = (f"k = {result.k} fixed" if self.n_clusters else
               f"k = {result.k} chosen by the best mean silhouette over k = {self.k_range[0]}"
               f"-{self.k_range[1]}")
        lines = [
            f"## k-means baseline ({how}; {r.n_item} items, {r.n_org} organisations)",
            "",
            f"Items {'standardised (z-scores)' if self.standardise else 'as raw codes'};"
            f" missing answers at the item mean; {self.n_init} restarts. Inertia"
            f" {result.inertia:.1f}; silhouette "
            + ", ".join(f"k={k}: {v:.3f}" for k, v in result.silhouettes.items()) + ".",
            "",
            "| cluster | organisations | share |",
            "|---|---|---|",
        ]
        for row in result.tables()["cluster_sizes"].to_dict("records"):
            lines.append(f"| {row['cluster']} | {row['n']} | {row['share']:.3f} |")
        if result.agreement:
            lines += ["", "Agreement (adjusted Rand index; 1 = identical partitions, 0 = chance):",
                      ""]
            lines += [f"- {AGREEMENT_NAMES[k]}: **{v:.3f}**" for k, v in result.agreement.items()]
        lines += ["", "Cluster profiles: `tables/cluster_profiles.csv`; assignments:"
                  " `tables/assignments.csv`."]
        return "\n".join(lines)

"""The k-means baseline: recovers well-separated clusters, picks k, compares labellings."""

from __future__ import annotations

import numpy as np
import pytest

from carestar.errors import ConfigError
from models.kmeans import KMeansBaseline, adjusted_rand
from models.lca import simulate


def _separated(seed=0):
    probs = np.array([[[0.9, 0.05, 0.05]] * 8, [[0.05, 0.05, 0.9]] * 8])
    return simulate(120, [0.6, 0.4], probs, seed=seed)


def test_fixed_k_recovers_clusters_and_tables():
    r, z = _separated()
    res = KMeansBaseline(n_clusters=2).fit(r, seed=1)
    assert res.k == 2 and res.compare_with(z) > 0.9
    t = res.tables()
    assert t["cluster_sizes"]["n"].sum() == 120
    assert list(t["cluster_profiles"].columns[1:]) == list(r.items)
    assert t["cluster_sizes"]["n"].is_monotonic_decreasing


def test_silhouette_chooses_k():
    r, z = _separated(1)
    res = KMeansBaseline(n_clusters=None, k_range=[2, 4]).fit(r, seed=1)
    assert set(res.silhouettes) == {2, 3, 4} and res.k == 2


def test_adjusted_rand_and_config_errors():
    assert adjusted_rand([1, 1, 2, 2], [2, 2, 1, 1]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        adjusted_rand([1, 2], [1, 2, 3])
    with pytest.raises(ConfigError):
        KMeansBaseline(n_clusters=0)

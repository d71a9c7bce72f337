"""Responses drawn from a latent class model with known shares and item probabilities."""

from __future__ import annotations

import numpy as np

from carestar.item_responses import ItemResponses


def categorical(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One category per row of the last axis of ``p`` (probabilities, summing to 1 up to
    rounding): the number of cumulative probabilities below a uniform draw."""
    cdf = np.cumsum(p, axis=-1)
    u = rng.random(p.shape[:-1])[..., None] * cdf[..., -1:]
    return np.minimum((u > cdf).sum(axis=-1), p.shape[-1] - 1)


def simulate(n_org: int, shares: np.ndarray, probs: np.ndarray, *, seed: int = 0,
             missing: float = 0.0, items: list[str] | None = None) -> tuple[ItemResponses,
                                                                         np.ndarray]:
    """Draw responses from a latent class model: (ItemResponses, true classes).

    ``probs`` (K, J, C) with every item on C categories; ``missing`` is the chance that any
    one answer is missing (at random; an organisation keeps at least one answer).
    """
    rng = np.random.default_rng(seed)
    probs = np.asarray(probs, float)
    K, J, C = probs.shape
    z = rng.choice(K, size=n_org, p=np.asarray(shares, float))
    u = rng.random((n_org, J, 1))
    codes = (u > np.cumsum(probs[z], axis=-1)).sum(axis=-1).clip(max=C - 1)
    if missing > 0:
        drop = rng.random((n_org, J)) < missing
        drop[np.arange(n_org), rng.integers(0, J, n_org)] = False
        codes = np.where(drop, -1, codes)
    names = items or [f"item{j + 1:02d}" for j in range(J)]
    labels = tuple(tuple(range(C)) for _ in range(J))
    kind = "binary" if C == 2 else "ordinal"
    return ItemResponses(
        orgs=tuple(f"org{i + 1:03d}" for i in range(n_org)), items=tuple(names), codes=codes,
        n_categories=(C,) * J, category_labels=labels, kinds=(kind,) * J,
    ), z

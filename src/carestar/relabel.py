"""Label switching in latent class posteriors: match, relabel, check that chains agree.

The likelihood of a latent class model is unchanged when the class labels are permuted, so
each chain (and, rarely, a run of draws inside a chain) may settle on its own labelling.
These pure functions put every draw on one reference labelling (for example the EM
solution that started the chains):

* ``match_classes(profile, reference)``: the permutation of one draw's classes that is
  closest to the reference (Hungarian assignment, ``scipy.optimize.linear_sum_assignment``,
  on squared differences of the class profiles);
* ``draw_permutations(profiles, reference)``: that permutation for every chain and draw;
* ``apply_permutations(values, perms, axis)`` and ``relabel_dataset(ds, perms)``: reorder
  the class axis of arrays / every variable of an xarray Dataset with a ``class`` dim;
* ``chain_agreement(lp, profiles, shares)``: per-chain mean log density and class profiles
  after relabelling, and whether the chains found the same solution (for diagnostics.json).

Convention: a permutation ``perm`` says ``relabelled[k] = original[perm[k]]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from scipy.optimize import linear_sum_assignment


def match_classes(profile: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Permutation ``perm`` with ``profile[perm]`` closest to ``reference``.

    Both arrays have the class on axis 0 and any feature axes after it (item-response
    probabilities, class shares appended as a feature, ...). Cost of putting class ``i``
    of ``profile`` at reference class ``k`` is the summed squared difference.
    """
    p = np.asarray(profile, float).reshape(profile.shape[0], -1)
    r = np.asarray(reference, float).reshape(reference.shape[0], -1)
    if p.shape != r.shape:
        raise ValueError(f"profile {p.shape} and reference {r.shape} differ in shape")
    cost = ((r[:, None, :] - p[None, :, :]) ** 2).sum(axis=-1)  # [ref k, draw i]
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(len(rows), dtype=int)
    perm[rows] = cols
    return perm


def draw_permutations(profiles: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Permutations for every draw: ``profiles`` is (chain, draw, class, ...features).

    Returns an int array (chain, draw, class).
    """
    profiles = np.asarray(profiles, float)
    n_chain, n_draw, n_class = profiles.shape[:3]
    flat = profiles.reshape(n_chain, n_draw, n_class, -1)
    ref = np.asarray(reference, float).reshape(n_class, -1)
    # cost for all draws at once, then one assignment per draw
    cost = ((ref[None, None, :, None, :] - flat[:, :, None, :, :]) ** 2).sum(-1)
    perms = np.empty((n_chain, n_draw, n_class), dtype=int)
    for c in range(n_chain):
        for d in range(n_draw):
            rows, cols = linear_sum_assignment(cost[c, d])
            perms[c, d, rows] = cols
    return perms


def apply_permutations(values: np.ndarray, perms: np.ndarray, axis: int) -> np.ndarray:
    """Reorder the class ``axis`` of ``values`` (chain, draw, ...) by ``perms`` (chain, draw, K)."""
    values = np.asarray(values)
    axis = axis % values.ndim
    if axis < 2:
        raise ValueError("the class axis must come after chain and draw")
    moved = np.moveaxis(values, axis, 2)  # (chain, draw, K, ...)
    idx = perms.reshape(perms.shape + (1,) * (moved.ndim - 3))
    out = np.take_along_axis(moved, np.broadcast_to(idx, idx.shape[:3] + moved.shape[3:]), 2)
    return np.moveaxis(out, 2, axis)


def relabel_dataset(ds: xr.Dataset, perms: np.ndarray, class_dim: str = "class") -> xr.Dataset:
    """Every variable of ``ds`` with dims (chain, draw, ..., class, ...) relabelled."""
    out = ds.copy()
    for name, var in ds.data_vars.items():
        if class_dim not in var.dims:
            continue
        if var.dims[:2] != ("chain", "draw"):
            raise ValueError(f"{name}: expected dims to start with (chain, draw), got {var.dims}")
        axis = var.dims.index(class_dim)
        out[name] = var.copy(data=apply_permutations(var.values, perms, axis))
    return out


def n_switched(perms: np.ndarray) -> dict[str, Any]:
    """How many draws (and chains, by their majority permutation) were relabelled."""
    ident = np.arange(perms.shape[-1])
    moved = ~(perms == ident).all(axis=-1)
    return {
        "draws_relabelled": int(moved.sum()),
        "draws_total": int(moved.size),
        "draws_relabelled_per_chain": moved.sum(axis=1).astype(int).tolist(),
    }


def chain_agreement(
    lp: np.ndarray,
    profiles: np.ndarray,
    shares: np.ndarray | None = None,
    *,
    lp_tol: float = 2.0,
    profile_tol: float = 0.05,
) -> dict[str, Any]:
    """Do the chains agree (after relabelling)? A JSON-ready dict for diagnostics.json.

    lp:        (chain, draw) log density of each draw (``sample_stats.lp``)
    profiles:  (chain, draw, class, ...) relabelled item-response probabilities
    shares:    (chain, draw, class) relabelled class shares (optional)

    The chains agree when their mean log densities differ by at most
    ``max(lp_tol, 0.5 * within-chain SD of lp)`` nats (a chain stuck in a poorer mode sits
    many nats lower; the within-chain SD, about sqrt(parameters / 2), scales the Monte Carlo
    spread of chain means, which exceeded a fixed 2 nats for four well-mixed chains of a
    110-parameter model: r_hat 1.009, profiles within 0.015) and their mean profiles and
    shares differ by at most ``profile_tol`` (absolute probability) everywhere.
    """
    lp = np.asarray(lp, float)
    lp_means = lp.mean(axis=1)
    lp_threshold = max(lp_tol, 0.5 * float(lp.std(axis=1, ddof=1).mean()))
    prof = np.asarray(profiles, float)
    chain_prof = prof.mean(axis=1).reshape(prof.shape[0], prof.shape[2], -1)
    prof_gap = float(np.max(chain_prof.max(axis=0) - chain_prof.min(axis=0)))
    out: dict[str, Any] = {
        "chain_mean_lp": [round(float(x), 4) for x in lp_means],
        "lp_spread": round(float(lp_means.max() - lp_means.min()), 4),
        "max_profile_difference": round(prof_gap, 4),
        "lp_threshold": round(lp_threshold, 4),
        "profile_tol": profile_tol,
    }
    ok = out["lp_spread"] <= lp_threshold and prof_gap <= profile_tol
    if shares is not None:
        chain_shares = np.asarray(shares, float).mean(axis=1)
        share_gap = float(np.max(chain_shares.max(axis=0) - chain_shares.min(axis=0)))
        out["chain_mean_shares"] = np.round(chain_shares, 4).tolist()
        out["max_share_difference"] = round(share_gap, 4)
        ok = ok and share_gap <= profile_tol
    out["chains_agree"] = bool(ok)
    return out

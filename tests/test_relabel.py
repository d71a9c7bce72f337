"""Relabelling latent class draws: constructed permuted draws come back to the reference."""

from __future__ import annotations

import itertools

import numpy as np
import xarray as xr

from carestar import relabel


def _reference(rng, K=3, J=5, C=3):
    return rng.dirichlet(np.full(C, 0.4), size=(K, J))


def test_match_classes_recovers_a_permutation():
    rng = np.random.default_rng(0)
    ref = _reference(rng)
    for perm in itertools.permutations(range(3)):
        shuffled = ref[list(perm)]
        p = relabel.match_classes(shuffled, ref)
        np.testing.assert_allclose(shuffled[p], ref)


def test_draw_permutations_and_apply_undo_switching():
    rng = np.random.default_rng(1)
    K, J, C, chains, draws = 3, 6, 2, 4, 50
    ref = _reference(rng, K, J, C)
    truth = np.empty((chains, draws, K), dtype=int)
    values = np.empty((chains, draws, K, J, C))
    for c in range(chains):
        for d in range(draws):
            perm = rng.permutation(K)
            truth[c, d] = perm
            noisy = ref + rng.normal(0, 0.01, ref.shape)
            values[c, d] = noisy[np.argsort(perm)]  # draw class i = reference class perm^-1
    perms = relabel.draw_permutations(values, ref)
    fixed = relabel.apply_permutations(values, perms, axis=2)
    assert np.abs(fixed - ref).max() < 0.06
    shares = np.broadcast_to(np.array([0.5, 0.3, 0.2]), (chains, draws, K))
    shuffled_shares = np.take_along_axis(shares, np.argsort(truth, axis=-1), axis=-1)
    back = relabel.apply_permutations(shuffled_shares, perms, axis=-1)
    np.testing.assert_allclose(back, shares)
    assert relabel.n_switched(perms)["draws_total"] == chains * draws


def test_relabel_dataset_touches_only_class_variables():
    rng = np.random.default_rng(2)
    ref = _reference(rng, 2, 3, 2)
    probs = np.stack([np.stack([ref, ref[::-1]])])  # chain 0: draw 0 ok, draw 1 swapped
    ds = xr.Dataset({
        "item_probs": (("chain", "draw", "class", "item", "category"), probs),
        "class_shares": (("chain", "draw", "class"), np.array([[[0.7, 0.3], [0.3, 0.7]]])),
        "other": (("chain", "draw"), np.zeros((1, 2))),
    })
    perms = relabel.draw_permutations(ds["item_probs"].values, ref)
    out = relabel.relabel_dataset(ds, perms)
    np.testing.assert_allclose(out["item_probs"].values[0, 1], ref)
    np.testing.assert_allclose(out["class_shares"].values[0, 1], [0.7, 0.3])
    assert out["other"].identical(ds["other"])


def test_chain_agreement_flags_a_chain_in_another_mode():
    rng = np.random.default_rng(3)
    ref = _reference(rng, 2, 4, 2)
    good = np.broadcast_to(ref, (3, 20) + ref.shape).copy()
    lp = rng.normal(-100, 1, (3, 20))
    ok = relabel.chain_agreement(lp, good)
    assert ok["chains_agree"] and len(ok["chain_mean_lp"]) == 3
    bad = good.copy()
    bad[2] = 0.5  # a chain stuck where the classes are not separated
    lp_bad = lp.copy()
    lp_bad[2] -= 15
    out = relabel.chain_agreement(lp_bad, bad)
    assert not out["chains_agree"]
    assert out["lp_spread"] > 10 and out["max_profile_difference"] > 0.05

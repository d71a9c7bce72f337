"""From the posterior draws: each row's log likelihood (per LOO unit), class membership,
chain agreement, and the log likelihood at the posterior mode."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import log_softmax, logsumexp

from carestar import relabel
from carestar.diagnostics import is_mode_only  # a sampler=map (one-draw) posterior

if TYPE_CHECKING:
    from models.lca.data import PreparedLCA
    from models.lca.model import LatentClassModel

MAX_LOO_UNITS = 20_000


def loo_units(ll: np.ndarray, labels: list[str], weights: np.ndarray | None):
    """Pointwise log likelihood per unit: a row with frequency weight w repeated w times.

    PSIS-LOO then leaves out one unit (one person), not a whole response pattern, and its
    elpd is on the scale of the weighted log likelihood. Beyond ``MAX_LOO_UNITS`` units the
    rows are kept as they are (LOO then leaves out patterns; see ``models.lca.model``).
    """
    if weights is None:
        return ll, labels
    w = np.asarray(weights)
    if w.sum() > MAX_LOO_UNITS or not np.allclose(w, np.round(w)):
        warnings.warn(f"LOO over {len(labels)} weighted rows leaves out response patterns, not"
                      " units", stacklevel=3)
        return ll, labels
    reps = np.round(w).astype(int)
    out = np.repeat(ll, reps, axis=-1)
    names = [f"{label}.{c + 1}" for label, n in zip(labels, reps, strict=True)
             for c in range(n)]
    return out, names


def draw_log_joint(post: xr.Dataset, prepared: PreparedLCA, chunk: int = 200):
    """Yield (slice, (S, N, K) log p(class, row | draw)) over the flattened draws, in chunks."""
    r = prepared.responses
    probs = np.asarray(post["item_probs"].values, float)
    n_chain, n_draw, K = probs.shape[:3]
    probs = probs.reshape(n_chain * n_draw, K, -1)
    shares = np.asarray(post["class_shares"].values, float).reshape(n_chain * n_draw, K)
    coefs = None
    if "class_coefs_full" in post:
        coefs = np.asarray(post["class_coefs_full"].values, float)
        coefs = coefs.reshape((n_chain * n_draw,) + coefs.shape[2:])
    one_hot = r.one_hot().reshape(r.n_org, -1)
    for start in range(0, len(shares), chunk):
        sl = slice(start, min(start + chunk, len(shares)))
        log_item = np.einsum("nf,skf->snk", one_hot, np.log(np.maximum(probs[sl], 1e-300)))
        if coefs is None:
            log_pi = np.log(np.maximum(shares[sl], 1e-300))[:, None, :]
        else:
            log_pi = log_softmax(np.einsum("np,skp->snk", prepared.design, coefs[sl]), axis=2)
        yield sl, log_pi + log_item


def pointwise_loglik(post: xr.Dataset, prepared: PreparedLCA) -> np.ndarray:
    """(chain, draw, org) unweighted row log likelihoods from the posterior draws."""
    n_chain, n_draw = post["class_shares"].shape[:2]
    out = np.empty((n_chain * n_draw, prepared.responses.n_org))
    for sl, joint in draw_log_joint(post, prepared):
        out[sl] = logsumexp(joint, axis=2)
    return out.reshape(n_chain, n_draw, -1)


def class_membership(idata: xr.DataTree, prepared: PreparedLCA) -> pd.DataFrame:
    """Each organisation's posterior class probabilities (averaged over draws), modal class."""
    r = prepared.responses
    post = idata["posterior"]
    acc = np.zeros((r.n_org, prepared.n_classes))
    n = 0
    for sl, joint in draw_log_joint(post, prepared):
        acc += np.exp(joint - logsumexp(joint, axis=2, keepdims=True)).sum(axis=0)
        n += joint.shape[0]
    acc /= n
    out = pd.DataFrame(acc, columns=[f"p_class_{k}" for k in prepared.class_labels])
    out.insert(0, "org", list(r.orgs))
    out["modal_class"] = np.array(prepared.class_labels)[acc.argmax(axis=1)]
    out["modal_probability"] = acc.max(axis=1)
    if prepared.truth is not None:
        out["true_class"] = [prepared.truth.names[t] for t in prepared.truth.classes]
    return out


def chain_agreement(idata: xr.DataTree, *, lp_tol: float, profile_tol: float
                    ) -> dict[str, Any]:
    """Per-chain mean log density, shares and profiles; ``chains_agree`` (bool)."""
    post = idata["posterior"]
    stats = idata["sample_stats"] if "sample_stats" in idata.children else None
    name = None if stats is None else next(
        (n for n in ("lp", "logp") if n in stats.data_vars), None)
    if name is not None:
        lp = stats[name].values
    else:
        lp = np.zeros(post["class_shares"].shape[:2])
    return relabel.chain_agreement(
        lp, post["item_probs"].values, post["class_shares"].values,
        lp_tol=lp_tol, profile_tol=profile_tol,
    )


def mode_loglik(model: LatentClassModel, idata: xr.DataTree, prepared: PreparedLCA
                ) -> dict[str, Any]:
    """Weighted log likelihood at the posterior mode, and which point that is.

    * ``sampler=map``: the PyMC mode the run found;
    * free item probabilities (default): the EM (maximum likelihood) point, which is the
      posterior mode under the default flat Dirichlet priors;
    * ordinal emission: ``pm.find_MAP`` started from the draw with the highest log
      density (EM fits the unrestricted model, not this one).
    """
    r = prepared.responses
    if is_mode_only(idata):
        point = idata["posterior"].isel(chain=[0], draw=[0])
        return {"loglik": float(r.row_weights @ pointwise_loglik(point, prepared)[0, 0]),
                "at": "posterior mode (sampler=map, PyMC)"}
    if not prepared.ordinal_items:
        return {"loglik": prepared.em.loglik,
                "at": "maximum likelihood (StepMix EM; the posterior mode under flat priors)"}
    from carestar.mode import fit_map

    post = idata["posterior"]
    stats = idata["sample_stats"] if "sample_stats" in idata.children else None
    flat = post.to_dataset().stack(sample=("chain", "draw"))
    best = int(np.argmax(stats["lp"].values.ravel())) if stats is not None and \
        "lp" in stats else 0
    pm_model = model.build(prepared)
    start = {rv.name: np.asarray(flat[rv.name].isel(sample=best).values)
             for rv in pm_model.free_RVs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mode = fit_map(pm_model, model.seed, initvals=start)
    point = mode["posterior"].to_dataset()
    ll = float(r.row_weights @ pointwise_loglik(point, prepared)[0, 0])
    return {"loglik": ll, "at": "posterior mode (pm.find_MAP from the best draw)"}


def item_scores(probs: np.ndarray, n_categories) -> np.ndarray:
    """(..., K, J) each class's expected answer per item, E[code] / (C_j - 1) (0 to 1)."""
    return np.stack([(probs[..., :, j, :c] * np.arange(c)).sum(axis=-1) / (c - 1)
                     for j, c in enumerate(n_categories)], axis=-1)


def posterior_vs_em(post: xr.Dataset, ll_draws: np.ndarray, prepared: PreparedLCA, *,
                    score_tol: float, share_tol: float, loglik_tol: float) -> dict[str, Any]:
    """Does the posterior (relabelled to the EM labelling) sit at the EM solution?

    ``ll_draws``: (chain, draw) weighted log likelihood of every draw. The posterior is
    *elsewhere* (``posterior_matches_em`` false) when a class's mean share differs from the
    EM share by more than ``share_tol``, a class's mean expected answer to an item
    (``item_scores``, 0-1) by more than ``score_tol``, or a draw's log likelihood exceeds
    the EM maximum by more than ``loglik_tol`` nats (EM then missed the global maximum: no
    point of the model can beat the maximum likelihood). Draws below the EM log likelihood
    are expected (by about half the number of parameters near a well-identified maximum),
    so the mean and range are reported, not judged.
    """
    em, cats = prepared.em, prepared.responses.n_categories
    mean_probs = post["item_probs"].mean(("chain", "draw")).values
    mean_shares = post["class_shares"].mean(("chain", "draw")).values
    score_diff = np.abs(item_scores(mean_probs, cats) - item_scores(em.probs, cats))
    share_diff = np.abs(mean_shares - em.shares)
    ll = np.asarray(ll_draws, float).ravel()
    reasons = []
    if share_diff.max() > share_tol:
        k = int(share_diff.argmax())
        reasons.append(f"class {k + 1}'s share is {mean_shares[k]:.3f} in the posterior,"
                       f" {em.shares[k]:.3f} at the EM point")
    if score_diff.max() > score_tol:
        k, j = np.unravel_index(int(score_diff.argmax()), score_diff.shape)
        reasons.append(f"class {k + 1}'s mean answer to '{prepared.responses.items[j]}'"
                       f" differs by {score_diff[k, j]:.3f} (0-1 scale)")
    if ll.max() > em.loglik + loglik_tol:
        reasons.append(f"a draw's log likelihood {ll.max():.3f} exceeds the EM maximum"
                       f" {em.loglik:.3f}: EM missed the global maximum")
    return {
        "posterior_matches_em": not reasons,
        "reasons": reasons,
        "max_share_difference": float(share_diff.max()),
        "max_item_score_difference": float(score_diff.max()),
        "em_loglik": em.loglik,
        "posterior_loglik_mean": float(ll.mean()),
        "posterior_loglik_range": [float(ll.min()), float(ll.max())],
        "rule": f"shares within {share_tol}, mean answers within {score_tol} (0-1 scale), no"
                f" draw above the EM log likelihood by more than {loglik_tol}",
    }

r"""Posterior predictive check of the item answers of a latent class model (``model=lca``
and the joint model's local practice part).

A run's pointwise log likelihood is one number per organisation: the class summed out of
its whole vector of answers. LOO-PIT, a check of a scalar outcome's predictive
distribution, does not apply to such a vector, so these models are checked on what their
answers look like instead. For ``S`` evenly spaced posterior draws ``s``, every
organisation gets a new class and new answers from the model,

.. math::

    z_i^{(s)} \sim \text{Categorical}(\pi_i^{(s)}), \qquad
    \tilde y_{ij}^{(s)} \sim \text{Categorical}(\theta^{(s)}_{z_i j \cdot})
    \quad (j \text{ answered by } i),

(marginal replication: the class is drawn afresh, not from its posterior given the answers,
so the check asks whether the mixture reproduces the answers, not whether each organisation
reproduces its own) and the statistic is each item's share of answering organisations in
each category (frequency weights counted). The observed share is compared with the 90%
interval of the replicated ones; a model that fits leaves about 90% of the shares inside.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy.special import log_softmax

from carestar.figures import CI_LABEL, FAILED_COLOUR
from carestar.item_responses import ItemResponses
from models.lca.simulate import categorical

N_DRAWS = 200
CHUNK = 25


def answer_check(post: xr.Dataset, responses: ItemResponses, design: np.ndarray | None = None,
                 n_draws: int = N_DRAWS, seed: int = 0) -> pd.DataFrame:
    """One row per (item, category): the observed share of answering organisations, the
    replicated shares' median and 90% interval, and whether the observed one is inside."""
    r = responses
    probs = np.asarray(post["item_probs"].values, float)
    total = probs.shape[0] * probs.shape[1]
    keep = (np.arange(min(n_draws, total)) * total) // min(n_draws, total)
    probs = probs.reshape(total, *probs.shape[2:])[keep]
    if design is not None and "class_coefs_full" in post:
        coefs = np.asarray(post["class_coefs_full"].values, float)
        coefs = coefs.reshape(total, *coefs.shape[2:])[keep]
        class_probs = np.exp(log_softmax(np.einsum("np,skp->snk", design, coefs), axis=2))
    else:
        shares = np.asarray(post["class_shares"].values, float).reshape(total, -1)[keep]
        class_probs = np.broadcast_to(shares[:, None, :], (len(keep), r.n_org, shares.shape[1]))
    rng = np.random.default_rng(seed)
    w = r.row_weights[:, None] * r.observed  # (N, J)
    replicated = np.empty((len(keep), r.n_item, r.max_categories))
    for start in range(0, len(keep), CHUNK):
        sl = slice(start, min(start + CHUNK, len(keep)))
        z = categorical(class_probs[sl], rng)  # (s, N)
        p = np.take_along_axis(probs[sl], z[:, :, None, None], axis=1)  # (s, N, J, C)
        y = categorical(p, rng)  # (s, N, J)
        one_hot = y[..., None] == np.arange(r.max_categories)
        replicated[sl] = np.einsum("snjc,nj->sjc", one_hot, w)
    answered = w.sum(axis=0)[:, None]
    replicated /= answered
    observed = np.einsum("njc,nj->jc", r.one_hot(), w) / answered
    q05, q50, q95 = np.quantile(replicated, [0.05, 0.5, 0.95], axis=0)
    rows = [{"item": r.items[j], "category": c, "label": str(r.category_labels[j][c]),
             "observed": observed[j, c], "q05": q05[j, c], "median": q50[j, c], "q95": q95[j, c],
             "inside": bool(q05[j, c] <= observed[j, c] <= q95[j, c])}
            for j in range(r.n_item) for c in range(r.n_categories[j])]
    return pd.DataFrame(rows)


def answer_check_figure(table: pd.DataFrame, item_labels: dict[str, str] | None = None) -> Figure:
    """A panel per item: each category's observed share (dot) against the replicated
    shares' 90% interval (bar); dots outside their bar in red."""
    items = list(dict.fromkeys(table["item"]))
    ncols = min(4, len(items))
    nrows = -(-len(items) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.1 * ncols, 2.3 * nrows + 0.9), squeeze=False,
                             layout="constrained", sharey=True)
    for ax, item in zip(axes.ravel(), items):
        rows = table[table["item"] == item]
        x = np.arange(len(rows))
        ax.vlines(x, 100 * rows["q05"], 100 * rows["q95"], color="C0", lw=5, alpha=0.45)
        colours = np.where(rows["inside"], "black", FAILED_COLOUR)
        ax.scatter(x, 100 * rows["observed"], c=colours, s=16, zorder=3)
        ax.set_xticks(x, rows["label"], fontsize="x-small", rotation=30 if len(rows) > 4 else 0)
        title = (item_labels or {}).get(item, item)
        ax.set_title(title if len(title) <= 32 else title[:31] + "…", fontsize="small", loc="left")
        ax.set_xlabel("answer", fontsize="small")
        ax.set_ylim(0, 100)
    for ax in axes.ravel()[len(items):]:
        ax.remove()
    for ax in axes[:, 0]:
        ax.set_ylabel("% of answering\norganisations", fontsize="small")
    handles = [Line2D([], [], color="C0", lw=5, alpha=0.45), Line2D([], [], marker="o", ls="none", color="black"),
               Line2D([], [], marker="o", ls="none", color=FAILED_COLOUR)]
    fig.legend(handles, [f"replicated shares ({CI_LABEL})", "observed share, inside", "observed share, outside"],
               loc="outside lower center", ncols=3, fontsize="small", frameon=False)
    inside = table["inside"].mean()
    fig.suptitle(f"Posterior predictive check of the answers: {inside:.0%} of the observed shares inside "
                 f"their {CI_LABEL}", fontsize="medium")
    return fig

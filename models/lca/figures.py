"""Figures of a latent class run (``models.lca``).

* ``item_profiles_figure``: the study's Figure 2 by class. The first panel is what the
  study showed, the observed % of all organisations in each category ("degree of use"
  0-5, or not used / used) of each item; then one panel per latent class, classes in
  order of use (class 1 the lowest), with the posterior mean % of that class's
  organisations in each category and the 90% posterior interval of the % at 0 (not
  used / no).
* ``class_membership_figure``: how sure the model is of each organisation's class (the
  posterior probability of its modal class), by modal class.
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from carestar.figures import CI_LABEL, legend_outside  # noqa: E402


def _category_colours(n_categories: tuple[int, ...]) -> tuple[np.ndarray, list[str]]:
    cmax = max(n_categories)
    return plt.get_cmap("viridis")(np.linspace(0.05, 0.95, cmax)), [str(c) for c in range(cmax)]


def _stacked(ax, shares: np.ndarray, n_categories, labels_widest, colours) -> None:
    """Horizontal stacked bars: ``shares`` (J, C) in %; binary items use the end colours."""
    J, cmax = shares.shape
    y = np.arange(J)
    left = np.zeros(J)
    for c in range(cmax):
        width = shares[:, c]
        colour = np.array([colours[-1] if n == 2 and c == 1 else colours[c]
                           for n in n_categories])
        ax.barh(y, width, left=left, color=colour, label=str(labels_widest[c])
                if c < len(labels_widest) else str(c))
        left += width
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of organisations")


def _display_order(r, item_labels: dict[str, str] | None) -> list[int]:
    """Items in the order of their labels (the study's order), else ordinal items first."""
    if item_labels and all(i in item_labels for i in r.items):
        rank = {name: n for n, name in enumerate(item_labels)}
        return sorted(range(r.n_item), key=lambda j: rank[r.items[j]])
    return sorted(range(r.n_item), key=lambda j: (r.kinds[j] != "ordinal", j))


def item_profiles_figure(idata, prepared) -> Figure:
    """Observed answers of all organisations, then each class's profile (posterior mean,
    with the 90% interval of the % at 0)."""
    r = prepared.responses
    post = idata["posterior"]
    mean = post["item_probs"].mean(("chain", "draw")).values
    probs = post["item_probs"]  # (chain, draw, class, item, category)
    at_zero = 100 * probs.isel({probs.dims[-1]: 0}).quantile([0.05, 0.95], dim=("chain", "draw")).values
    shares = post["class_shares"].mean(("chain", "draw")).values
    K = prepared.n_classes
    colours, _ = _category_colours(r.n_categories)
    widest = int(np.argmax(r.n_categories))
    labels_widest = list(r.category_labels[widest])
    one_hot = r.one_hot()
    w = r.row_weights[:, None, None] * one_hot
    observed = 100 * w.sum(axis=0) / np.maximum(w.sum(axis=(0, 2))[:, None], 1e-12)
    order = _display_order(r, prepared.item_labels)
    observed, mean, at_zero = observed[order], mean[:, order], at_zero[:, :, order]
    n_categories = tuple(r.n_categories[j] for j in order)
    names = [(prepared.item_labels or {}).get(r.items[j], r.items[j]) for j in order]
    fig, axes = plt.subplots(1, K + 1, figsize=(3.0 * (K + 1) + 3.5, 0.38 * r.n_item + 1.9),
                             sharey=True, squeeze=False)
    _stacked(axes[0, 0], observed, n_categories, labels_widest, colours)
    axes[0, 0].set_title(f"all organisations\n(observed, n = {r.n_total:g})", fontsize="medium")
    y = np.arange(r.n_item)
    for k in range(K):
        ax = axes[0, k + 1]
        _stacked(ax, 100 * mean[k], n_categories, labels_widest, colours)
        ax.errorbar(100 * mean[k][:, 0], y, xerr=[100 * mean[k][:, 0] - at_zero[0, k],
                                                  at_zero[1, k] - 100 * mean[k][:, 0]],
                    fmt="none", ecolor="black", elinewidth=1.2, capsize=2.5,
                    label=f"{CI_LABEL} of the % at 0")
        ax.set_title(f"class {prepared.class_labels[k]}\n({100 * shares[k]:.0f}% of"
                     " organisations)", fontsize="medium")
    axes[0, 0].set_yticks(np.arange(r.n_item), names, fontsize="small")
    axes[0, 0].invert_yaxis()
    handles, labels = axes[0, -1].get_legend_handles_labels()
    title = "degree of use" if any(k == "ordinal" for k in r.kinds) else "category"
    if any(n == 2 for n in r.n_categories) and r.max_categories > 2:
        title += "\n(yes/no items:\nfirst = no, last = yes)"
    legend_outside(axes[0, -1], handles=handles, labels=labels, title=title, fontsize="small",
                   title_fontsize="small")
    fig.suptitle("Item responses by latent class, classes in order of use (class 1 the lowest):"
                 f" posterior means, whiskers the {CI_LABEL} of the % at 0", fontsize="medium")
    return fig


def class_membership_figure(membership: pd.DataFrame, prepared: Any) -> Figure:
    """Histogram of each organisation's modal class probability, one colour per class."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(1.0 / max(prepared.n_classes, 1), 1.0, 21)
    data = [membership.loc[membership["modal_class"] == k, "modal_probability"].to_numpy()
            for k in prepared.class_labels]
    ax.hist(data, bins=bins, stacked=True, label=[f"class {k}" for k in prepared.class_labels])
    ax.set_xlabel("posterior probability of the modal class")
    ax.set_ylabel("organisations")
    ax.set_title("How clearly each organisation belongs to its class", fontsize="medium")
    legend_outside(ax, fontsize="small", title="modal class")
    return fig

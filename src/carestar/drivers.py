r"""What drives a council's star rating: standardised effects and explained variation.

From a fitted joint (``models/joint/``) or ordinal (``models/ordinal.py``, whole panel)
posterior and its ``RegressionDesign``, per posterior draw :math:`s`:

- each block's contribution to the latent rating score of every rating row
  (organisation-year) :math:`n`: strategy :math:`x_{n,\text{strategy}}^\top\beta`
  (or, with the joint model's latent stances, :math:`\theta_{i}^\top\delta` per draw),
  resources :math:`x_{n,\text{resources}}^\top\beta`, local practice (ordinal model: the
  practice summaries' columns; joint model: the class effect :math:`\gamma_{k_i}` of the
  organisation's latent class, with the class drawn from the organisation's posterior
  class probabilities ``org_class_probs``, i.e. a mixture);
- :math:`V_b` = the variance of block :math:`b`'s contribution over the rows
  (the mixture variance for the latent class: mean over rows of
  :math:`E_k[\gamma^2] - (\text{mean over rows of } E_k[\gamma])^2`);
- the total latent variance
  :math:`V = \operatorname{Var}(\text{all blocks together}) + \sigma_{\text{org}}^2 +
  \operatorname{Var}(\tau_{t}) + V_\epsilon`, with :math:`V_\epsilon = \pi^2/3` (logit),
  1 (probit), :math:`\pi^2/6` (cloglog);
- the share :math:`V_b / V` of each block, of the organisation intercepts ("organisation
  (unexplained)"), of the year effects and of the link's residual; "between blocks" is
  what the blocks' covariances add (may be negative), so the shares sum to 1;
- standardised effects :math:`\beta / \sqrt{V}` (latent-SD units; resources are already
  per SD of the predictor) and :math:`\gamma_k / \sqrt{V}`.

Results are labelled xarray objects (``decompose``) summarised by ``variance_table`` and
``effects_table`` (mean and 90% interval) and drawn by ``figure``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from carestar.design import RegressionDesign
from carestar.study_design import PRACTICE, RESOURCES

BLOCKS = ("strategy", "resources", "local practice")
RESIDUAL_VARIANCE = {"logit": np.pi**2 / 3, "probit": 1.0, "cloglog": np.pi**2 / 6}
CI = (0.05, 0.95)


def block_of(effect: str) -> str:
    """The block an effect column belongs to (``other`` when none)."""
    if effect.startswith("strategy_type[") or effect.startswith("stance["):
        return "strategy"
    if effect in RESOURCES:
        return "resources"
    if effect in PRACTICE or effect.startswith("class["):
        return "local practice"
    return "other"


def _draws(post, name: str) -> np.ndarray:
    """(sample, ...) values of a posterior variable, samples chain by chain.

    (numpy's reshape, not xarray's stack, which fails for a variable with no elements, such
    as the effects of a nested model without strategy type and resources)
    """
    da = post[name].transpose("chain", "draw", ...)
    return da.values.reshape((da.shape[0] * da.shape[1],) + da.shape[2:])


def _row_orgs(da: xr.DataArray, design: RegressionDesign) -> np.ndarray:
    """Index into ``da``'s ``org`` coordinate for every rating row."""
    index = {str(o): i for i, o in enumerate(da["org"].values)}
    return np.array([index[str(o)] for o in design.rows["org"]])


def decompose(idata: xr.DataTree, design: RegressionDesign, *, link: str = "logit",
              class_probs: str = "org_class_probs", class_effects: str = "class_effects",
              omit: tuple[str, ...] = ()) -> xr.Dataset:
    """Per draw: block variances, shares of the total latent variance, standardised effects.

    ``omit``: effect variables a nested model fixes at 0 (``stance_effects``,
    ``class_effects``); their block is left out rather than reported as explaining 0.
    """
    post = idata["posterior"]
    post = post.to_dataset().drop_vars([n for n in omit if n in post.data_vars])
    X = design.X.to_numpy(float)
    beta = _draws(post, "beta")  # (S, E)
    effects = list(design.effects)
    blocks = {}
    for b in (*BLOCKS, "other"):
        cols = [j for j, e in enumerate(effects) if block_of(e) == b]
        if cols:
            blocks[b] = (beta[:, cols] @ X[:, cols].T, None)  # (S, N) row contributions
    if "stance_scores" in post and "stance_effects" in post:  # joint, model.strategy=latent
        row_org = _row_orgs(post["stance_scores"], design)
        theta = _draws(post, "stance_scores")[:, row_org, :]  # (S, N, stance)
        own = blocks.pop("strategy", (0.0, None))[0]
        blocks["strategy"] = (own + (theta * _draws(post, "stance_effects")[:, None, :]).sum(-1),
                              None)
    if class_probs in post and class_effects in post:
        row_org = _row_orgs(post[class_probs], design)
        p = _draws(post, class_probs)[:, row_org, :]  # (S, N, K)
        gamma = _draws(post, class_effects)[:, None, :]
        mean, second = (p * gamma).sum(-1), (p * gamma**2).sum(-1)
        own = blocks.pop("local practice", (np.zeros_like(mean), None))[0]
        blocks["local practice"] = (own + mean, second - mean**2 + 0.0)  # within-row variance
    S = beta.shape[0]
    names = list(blocks)
    var = {}
    total_fixed_mean = np.zeros((S, design.n))
    within = np.zeros((S, design.n))
    for b, (contrib, inner) in blocks.items():
        extra = 0.0 if inner is None else inner.mean(axis=1)
        var[b] = contrib.var(axis=1) + extra
        total_fixed_mean += contrib
        if inner is not None:
            within += inner
    fixed = total_fixed_mean.var(axis=1) + within.mean(axis=1)
    org = _draws(post, "org_sd")[:, 0] ** 2 if "org_sd" in post else np.zeros(S)
    year = np.zeros(S)
    if "year_effect" in post and design.period is not None:
        year = _draws(post, "year_effect")[:, design.period.codes].var(axis=1)
    residual = np.full(S, RESIDUAL_VARIANCE[link])
    total = fixed + org + year + residual
    var["between blocks"] = fixed - sum(var[b] for b in names)
    var["organisation (unexplained)"] = org
    var["year"] = year
    var["residual (link)"] = residual
    order = [b for b in (*BLOCKS, "other") if b in var] + [
        "between blocks", "organisation (unexplained)", "year", "residual (link)"]
    variance = np.stack([var[b] for b in order])
    terms = list(effects)
    std = [beta[:, j] / np.sqrt(total) for j in range(len(effects))]
    if "stance_effects" in post:  # per SD of the stance score (N(0, 1) by construction)
        delta = _draws(post, "stance_effects")
        for k, label in enumerate(post["stance_effects"]["stance"].values):
            terms.append(f"stance[{label}]")
            std.append(delta[:, k] / np.sqrt(total))
    if class_effects in post:
        g = _draws(post, class_effects)
        labels = [str(k) for k in post[class_effects]["class"].values]
        for k, label in enumerate(labels[1:], start=1):
            terms.append(f"class[{label}]")
            std.append(g[:, k] / np.sqrt(total))
    return xr.Dataset(
        {
            "variance": (("block", "sample"), variance),
            "share": (("block", "sample"), variance / total[None, :]),
            "total_variance": (("sample",), total),
            "std_effect": (("term", "sample"), np.stack(std)),
        },
        coords={"block": order, "term": terms,
                "term_block": ("term", [block_of(t) for t in terms])},
        attrs={"link": link},
    )


def _summary(da: xr.DataArray, dim: str) -> pd.DataFrame:
    values = da.transpose(dim, "sample").values
    return pd.DataFrame({
        dim: da[dim].values,
        "mean": values.mean(axis=1),
        "q05": np.quantile(values, CI[0], axis=1),
        "q95": np.quantile(values, CI[1], axis=1),
    })


def variance_table(dec: xr.Dataset) -> pd.DataFrame:
    """Share of the total latent variance per block (mean, 90% interval), blocks ranked."""
    t = _summary(dec["share"], "block")
    t["kind"] = ["driver" if b in BLOCKS or b == "other" else "rest" for b in t["block"]]
    drivers = t[t["kind"] == "driver"].sort_values("mean", ascending=False)
    t = pd.concat([drivers, t[t["kind"] == "rest"]], ignore_index=True)
    t["rank"] = [i + 1 if k == "driver" else np.nan for i, k in enumerate(t["kind"])]
    return t.drop(columns="kind")


def effects_table(dec: xr.Dataset) -> pd.DataFrame:
    """Standardised effects (latent-SD units), mean and 90% interval, with their block."""
    t = _summary(dec["std_effect"], "term")
    t.insert(1, "block", dec["term_block"].values)
    return t


def ranking(dec: xr.Dataset) -> list[str]:
    """Driver blocks by decreasing mean share."""
    t = variance_table(dec)
    return [b for b, r in zip(t["block"], t["rank"]) if not np.isnan(r)]


def figure(dec: xr.Dataset):
    """Two panels: share of latent variance per block; standardised effects (90% intervals).
    Returns the matplotlib figure (the run saves it)."""
    import matplotlib.pyplot as plt

    shares = variance_table(dec)
    effects = effects_table(dec)
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.35 * max(len(effects), len(shares)) + 2))
    for ax, t, label, xlabel in (
        (axes[0], shares, "block", "share of the latent rating variance (proportion)"),
        (axes[1], effects, "term", "standardised effect, in SDs of the latent rating"),
    ):
        y = np.arange(len(t))[::-1]
        colours = [f"C{list(BLOCKS).index(b)}" if b in BLOCKS else "0.6"
                   for b in (t["block"] if "block" in t else t[label])]
        ax.barh(y, t["mean"], color=colours, alpha=0.8)
        err = np.clip([t["mean"] - t["q05"], t["q95"] - t["mean"]], 0, None)
        ax.errorbar(t["mean"], y, xerr=err,
                    fmt="none", color="black", capsize=2, lw=1)
        ax.set_yticks(y, t[label])
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_xlabel(xlabel)
    axes[0].set_title("What drives the star rating (90% intervals)", fontsize="medium")
    axes[1].set_title("Standardised effects (90% intervals)", fontsize="medium")
    return fig

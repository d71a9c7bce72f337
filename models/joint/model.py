r"""Joint model: latent classes of local practice, strategy and resources -> star ratings.

One model, the class summed out per organisation, so that uncertainty about an
organisation's class reaches the rating effects (instead of classifying first and then
regressing on the classes: the "three-step" shortcut, ``fit_three_step`` below).

Math
----
Organisation :math:`i` (an English council with ratings) answers the local-practice
items :math:`y_{ij}` (``local_practice``; degree-of-use items 0-5 and yes/no process items,
missing answers skipped) and is rated :math:`s_{it}` stars in years :math:`t`:

.. math::

    \pi &\sim \text{Dirichlet}(\alpha_\pi 1_K), \qquad
    \theta_{kj\cdot} \sim \text{Dirichlet}(\alpha_\theta 1_{C_j})\\
    \eta_{it} &= x_{it}^\top \beta + \sigma_u z_i + \tau_t, \qquad
    z_i \sim N(0, 1),\ \sigma_u \sim \text{HalfNormal},\ \tau \sim \text{ZeroSumNormal}\\
    P(s_{it} \le c \mid k) &= F(c_c - \eta_{it} - \gamma_k), \qquad
    \gamma_1 = 0,\ \gamma_k \sim N(0, \sigma_\gamma^2)\ (k \ge 2)\\
    \log p(y_i, s_i) &= \operatorname{logsumexp}_k \Big[\log \pi_k
        + \sum_{j \in O_i} \log \theta_{k j y_{ij}}
        + \sum_t \log P(s_{it} \mid \eta_{it} + \gamma_k)\Big]

- :math:`x_{it}`: the strategy type (``model.strategy: type``; treatment contrasts against
  ``model.reference.strategy_type``; or latent stances, below) and the standardised
  resources of the rating year;
  the practice summaries of models/ordinal.py are *not* predictors here: the classes are.
- Cutpoints as in models/ordinal.py: a Dirichlet on the category probabilities at
  :math:`\eta = 0` (for the reference class) induces ordered cutpoints
  :math:`c = F^{-1}(\text{cumsum})`; years whose regime awarded no 0 stars
  (``model.lowest_stars``) set :math:`c_1 = -\infty` for their rows.
- Classes are ordered by increasing use of local practice (mean expected item score
  relative to its maximum), so class 1 ("lowest use") is the reference of
  :math:`\gamma`.

Sampling and labels
-------------------
``prepare`` fits the latent class part alone by EM (``models.lca.fit_em``) on the rated
organisations; ``initvals`` start every chain at that solution (shares and item
profiles, :math:`\gamma = 0`) so chains start in one labelling. ``postprocess``
relabels every draw to the EM labelling (Hungarian matching on item profiles and shares,
``carestar.relabel``): class shares, item profiles and :math:`\gamma` together, then
re-references :math:`\gamma` to the (relabelled) first class, shifting the cutpoints by
the same amount so every draw keeps its likelihood.

The likelihood is a ``pm.Potential`` (``joint_loglik``). ``postprocess`` recomputes, per
draw with numpy, each organisation's log likelihood (its items plus all its ratings: the
unit LOO leaves out) as ``log_likelihood/items_and_ratings`` (dim ``org``), and each
organisation's class membership probabilities given items *and* ratings
(``posterior/org_class_probs``), which ``carestar.drivers`` uses for the local-practice
block.

Nested models (``model.blocks``)
--------------------------------
``model.blocks`` lists the driver blocks that enter :math:`\eta`: ``strategy`` (the
type's :math:`\beta` or the stances' :math:`\delta`), ``resources`` and ``practice`` (the
class effects :math:`\gamma`). A left-out effect is fixed at 0 and its predictors
dropped; the Likert answers (``strategy: latent``) stay modelled. Without ``practice``
the classes cannot reach the ratings, so the items get one class (:math:`K = 1`:
independent items, nothing to relabel; ``model.n_classes`` applies only with practice).

What each organisation's unit of the LOO log likelihood covers is ``model.log_likelihood``:

- ``items_and_ratings`` (default): :math:`\log p(y_i, s_i)`, the whole model;
- ``ratings_given_items``: :math:`\log p(s_i \mid y_i) = \log \sum_k p(k \mid y_i)\,
  p(s_i \mid k)`, i.e. :math:`\log p(y_i, s_i) - \log p(y_i)`. PSIS-LOO then leaves
  out a council's ratings while its item answers stay (valid because the likelihood
  factorises as :math:`p(y_i)\,p(s_i \mid y_i)`). The nested models all predict the
  same ratings this way, whatever their item model, so ``task=compare`` can rank them
  (``experiments/drivers``).

Strategy as latent stances (``model.strategy: latent``)
-------------------------------------------------------
Instead of the reported type, stance scores :math:`\theta_{is} \sim N(0, 1)` for the four
stances :math:`s`, measured by the Likert items :math:`L_{isj} \in 1..7` (``strategy``
table, columns ``<stance>_<j>``) with an ordered-logit IRT model, and a rating effect
:math:`\delta_s` per SD of each stance:

.. math::

    P(L_{isj} \le m) = \text{logit}^{-1}(\kappa_{sjm} - \lambda_{sj}\theta_{is}),\quad
    \lambda_{sj} \sim \text{HalfNormal}(\sigma_\lambda),\quad
    \kappa_{sj\cdot} \text{ ordered} \sim N(0, \sigma_\kappa^2),\qquad
    \eta_{it} \mathrel{+}= \theta_i^\top \delta

(scale fixed by :math:`N(0, 1)`, sign by :math:`\lambda > 0`). The Likert likelihood is a
second Potential (``likert_loglik``; it does not depend on the class) and enters each
organisation's LOO term.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy.special import expit, logsumexp

from carestar import relabel
from carestar.design import RegressionDesign
from carestar.errors import ConfigError, DataError
from carestar.item_responses import ItemResponses, check_n_classes
from carestar.likelihood import group_effects
from carestar.modelling import Model
from carestar.schemas import STANCE_ITEMS, STRATEGY_TYPES
from carestar.study import Study
from carestar.study_design import PRACTICE, ratings_design
from models.lca import (EMFit, class_features, fit_em, interior_item_probs, interior_shares,
                        item_log_lik)
from models.ordinal import (LINKS, category_probabilities, link_cdf, link_quantile,
                            observed_log_prob)

STRATEGY_MODES = ("type", "latent")
BLOCKS = ("strategy", "resources", "practice")  # model.blocks: the drivers in the rating
LOG_LIKELIHOODS = ("items_and_ratings", "ratings_given_items")  # model.log_likelihood


# ---------------------------------------------------------------------------------------
# prepared data
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PreparedJoint:
    """Ratings design, item responses of the same organisations, EM solution.

    ``org_of_row[n]`` indexes ``responses.orgs`` for rating row ``n``.
    """

    design: RegressionDesign
    responses: ItemResponses
    org_of_row: np.ndarray
    n_classes: int
    em: EMFit
    truth: dict[str, Any] | None = None
    likert: np.ndarray | None = None  # (org, STANCE_ITEMS) codes 0..6, -1 missing (latent)
    types: tuple[str, ...] = ()  # each organisation's reported strategy type

    @property
    def class_labels(self) -> list[int]:
        return list(range(1, self.n_classes + 1))

    @property
    def orgs(self) -> list[str]:
        return [str(o) for o in self.responses.orgs]

    def category_groups(self) -> dict[int, list[int]]:
        """Items grouped by their number of categories (one Dirichlet variable per group)."""
        groups: dict[int, list[int]] = {}
        for j, c in enumerate(self.responses.n_categories):
            groups.setdefault(c, []).append(j)
        return groups

    def free_item_name(self, c: int) -> str:
        return "item_probs" if len(self.category_groups()) == 1 else f"item_probs_C{c}"


def order_by_use(em: EMFit, n_categories) -> EMFit:
    """The EM solution with classes ordered by increasing mean expected item score."""
    use = class_use(em.probs, n_categories)
    order = np.argsort(use, kind="stable")
    return replace(em, probs=em.probs[order], shares=em.shares[order],
                   posterior=em.posterior[:, order])


def class_use(probs: np.ndarray, n_categories) -> np.ndarray:
    """(K,) mean over items of E[code] / (C_j - 1): 0 = never used, 1 = fully used."""
    scores = []
    for j, c in enumerate(n_categories):
        scores.append((probs[:, j, :c] * np.arange(c)).sum(axis=-1) / (c - 1))
    return np.mean(scores, axis=0)


# ---------------------------------------------------------------------------------------
# the model class
# ---------------------------------------------------------------------------------------
class JointModel(Model):
    """Latent classes + strategy + resources -> stars; see the module docstring."""

    name = "joint"

    def __init__(
        self,
        n_classes: int = 3,
        items: list[str] | None = None,
        link: str = "logit",
        strategy: str = "type",
        resources: list[str] | None = None,
        reference: dict[str, str] | None = None,
        lowest_stars: dict[int, int] | None = None,
        figure_year: int = 2007,
        em_starts: int = 10,
        seed: int = 0,
        priors: dict[str, dict[str, float]] | None = None,
        agreement_lp_tol: float = 5.0,
        agreement_profile_tol: float = 0.05,
        three_step: dict[str, Any] | None = None,
        blocks: list[str] | None = None,
        log_likelihood: str = "items_and_ratings",
        **_: Any,
    ) -> None:
        if link not in LINKS:
            raise ConfigError(f"model.link={link!r} is not a link; expected one of {LINKS}")
        if strategy not in STRATEGY_MODES:
            raise ConfigError(f"model.strategy={strategy!r}; expected one of {STRATEGY_MODES}")
        if not isinstance(n_classes, int) or n_classes < 2:
            raise ConfigError(f"model.n_classes must be a whole number >= 2, got {n_classes!r}")
        self.blocks = tuple(BLOCKS if blocks is None else blocks)
        unknown = [b for b in self.blocks if b not in BLOCKS]
        if unknown:
            raise ConfigError(f"model.blocks: unknown block(s) {unknown}; expected a list of"
                              f" {list(BLOCKS)} (the drivers of the rating to include)")
        if log_likelihood not in LOG_LIKELIHOODS:
            raise ConfigError(f"model.log_likelihood={log_likelihood!r}; expected one of"
                              f" {list(LOG_LIKELIHOODS)}")
        self.log_likelihood = log_likelihood
        # without practice in the rating the classes are not identified by it: one class
        self.n_classes = n_classes if "practice" in self.blocks else 1
        self.items = None if items is None else list(items)
        self.link = link
        self.strategy = strategy
        self.resources = list(resources if resources is not None
                              else ["spend_per_head", "deprivation", "older_share"])
        bad = [r for r in self.resources if r in PRACTICE]
        if bad:
            raise ConfigError(f"model.resources {bad}: local practice enters as latent classes")
        self.reference = dict(reference or {"strategy_type": "defender"})
        self.lowest_stars = {int(k): int(v) for k, v in (lowest_stars or {}).items()}
        self.figure_year = figure_year
        self.year = None  # whole panel (ordinal_figures reads it)
        self.em_starts = int(em_starts)
        self.seed = int(seed)
        self.priors = priors or {}
        self.agreement_lp_tol = agreement_lp_tol
        self.agreement_profile_tol = agreement_profile_tol
        # experiments/three_step: also fit classify-then-regress in the same run (tables)
        self.three_step = dict(three_step or {})
        self.three_step_classify = three_step_methods(self.three_step)

    def _prior(self, block: str, key: str, default: float) -> float:
        value = self.priors.get(block, {}).get(key, default)
        if not (isinstance(value, (int, float)) and value > 0):
            raise ConfigError(
                f"model.priors.{block}.{key} must be a positive number, got {value!r}")
        return float(value)

    # -- prepare -----------------------------------------------------------------------
    def prepare(self, data: Any) -> PreparedJoint:
        if not isinstance(data, Study):
            raise ConfigError(f"model=joint needs study data (data=synthetic or data=study), "
                              f"got {type(data).__name__}")
        predictors = ((["strategy_type"] if self.strategy == "type"
                       and "strategy" in self.blocks else [])
                      + (self.resources if "resources" in self.blocks else []))
        design = ratings_design(data, predictors, self.reference, year=None,
                                lowest_stars=self.lowest_stars, standardise=True)
        rated = [str(o) for o in design.groups[0].group.levels]
        table = data.local_practice
        table = table[table["org"].astype(str).isin(rated)]
        resp = ItemResponses.from_study(SimpleNamespace(local_practice=table), self.items)
        index = {str(o): i for i, o in enumerate(resp.orgs)}
        missing = [o for o in rated if o not in index]
        if missing:
            raise DataError(
                f"{len(missing)} rated organisation(s) have no local practice answers",
                file="local_practice.csv", column="org",
                expected="local practice answers for every organisation in ratings.csv",
                hint="orgs: " + ", ".join(missing[:10]),
            )
        order = np.array([index[o] for o in rated])
        resp = replace(resp, orgs=tuple(rated), codes=resp.codes[order])
        check_n_classes(resp, self.n_classes)
        em = order_by_use(fit_em(resp, self.n_classes, seed=self.seed, n_init=self.em_starts),
                          resp.n_categories)
        org_of_row = design.groups[0].group.codes.astype(int)
        strat = data.strategy.assign(org=data.strategy["org"].astype(str)).set_index("org")
        types = tuple(strat["strategy_type"].reindex(rated).astype(str))
        likert = None
        if self.strategy == "latent":
            likert = likert_codes(strat, rated)
        return PreparedJoint(design, resp, org_of_row, self.n_classes, em, data.truth, likert,
                             types)

    # -- build -------------------------------------------------------------------------
    def build(self, prep: PreparedJoint) -> pm.Model:
        d, r, K = prep.design, prep.responses, prep.n_classes
        C = len(d.categories)
        coords = {
            "effect": d.effects,
            "category": list(d.categories),
            "cutpoint": [f"{a}|{b}" for a, b in zip(d.categories, d.categories[1:])],
            "class": prep.class_labels,
            "class_free": prep.class_labels[1:],
            "item": list(r.items),
            "response": list(range(r.max_categories)),
        }
        one_hot = r.one_hot()
        groups = prep.category_groups()
        with pm.Model(coords=coords) as model:
            # latent classes of local practice (as models/lca.py)
            if K > 1:
                shares = pm.Dirichlet("class_shares", a=np.full(K, self._prior(
                    "class_shares", "alpha", 1.0)), dims="class")
            else:
                shares = pm.Deterministic("class_shares", pt.ones(1), dims="class")
            log_item = pt.zeros((r.n_org, K))
            padded = []
            for c, js in groups.items():
                name = prep.free_item_name(c)
                if name == "item_probs":
                    dims = ("class", "item", "response")
                else:
                    model.add_coord(f"item_C{c}", [r.items[j] for j in js])
                    model.add_coord(f"response_C{c}", list(range(c)))
                    dims = ("class", f"item_C{c}", f"response_C{c}")
                theta = pm.Dirichlet(name, a=np.full((K, len(js), c), self._prior(
                    "item_probs", "alpha", 1.0)), dims=dims)
                oh = one_hot[:, js, :c].reshape(r.n_org, -1)
                log_item = log_item + pt.dot(oh, pt.log(theta).reshape((K, -1)).T)
                padded.append((js, theta))
            if len(groups) > 1:
                full = pt.zeros((K, r.n_item, r.max_categories))
                for js, theta in padded:
                    full = pt.set_subtensor(full[:, js, : theta.shape[-1]], theta)
                pm.Deterministic("item_probs", full, dims=("class", "item", "response"))
            # ratings given the class
            X = pt.as_tensor(d.X.to_numpy(float))
            if d.effects:
                beta = pm.Normal("beta", 0.0, self._prior("effects", "sigma", 1.0),
                                 dims="effect")
            else:  # model.blocks without strategy type and resources
                beta = pm.Deterministic("beta", pt.zeros(0), dims="effect")
            eta = pt.dot(X, beta)
            eta = eta + group_effects(d.groups[0], self._prior("group_sd", "sigma", 1.0))
            model.add_coords({"year": list(d.period.levels)})
            tau = pm.ZeroSumNormal("year_effect", sigma=self._prior("year_effects", "sigma", 1.0),
                                   dims="year")
            eta = eta + tau[d.period.codes]
            if prep.likert is not None:
                eta = eta + self._stance_block(model, prep)
            if "practice" in self.blocks:
                gamma_free = pm.Normal("class_effects_free", 0.0,
                                       self._prior("class_effects", "sigma", 1.0),
                                       dims="class_free")
                gamma = pt.concatenate([pt.zeros(1), gamma_free])
            else:
                gamma = pt.zeros(K)
            gamma = pm.Deterministic("class_effects", gamma, dims="class")
            alpha = self._prior("cutpoints", "alpha", 1.0)
            pi = pm.Dirichlet("category_probs", a=np.full(C, alpha), dims="category")
            cutpoints = pm.Deterministic(
                "cutpoints", link_quantile(self.link, pt.cumsum(pi)[:-1]), dims="cutpoint")
            log_rate = observed_log_prob(self.link, eta[:, None] + gamma[None, :], cutpoints,
                                         d.y, C, d.lowest)  # (N, K)
            # sum each organisation's rating rows: (org, K)
            log_rate_org = pt.dot(np.eye(r.n_org)[:, prep.org_of_row], log_rate)
            ll = pt.logsumexp(pt.log(shares)[None, :] + log_item + log_rate_org, axis=1)
            pm.Potential("joint_loglik", ll.sum())
        return model

    def initvals(self, prep: PreparedJoint) -> dict[str, np.ndarray]:
        """EM shares and item profiles (ordered by use), no class effects."""
        r, em = prep.responses, prep.em
        probs = interior_item_probs(em.probs, r.n_categories)
        out: dict[str, np.ndarray] = {}
        if prep.n_classes > 1:
            out["class_shares"] = interior_shares(em.shares)
        if "practice" in self.blocks:
            out["class_effects_free"] = np.zeros(prep.n_classes - 1)
        for c, js in prep.category_groups().items():
            out[prep.free_item_name(c)] = probs[:, js, :c]
        if prep.likert is not None:
            out["likert_cutpoints"] = likert_initial_cutpoints(prep.likert)
        return out

    def _stance_block(self, model: pm.Model, prep: PreparedJoint):
        """Stance scores measured by the Likert items (ordered logit); their rating effects.

        Returns the rating rows' contribution ``theta_{org[n]} . delta``.
        """
        n_cut = LIKERT_LEVELS - 1
        model.add_coords({"stance": list(STRATEGY_TYPES), "likert_item": list(STANCE_ITEMS),
                          "likert_cut": list(range(1, n_cut + 1))})
        org_dim = "org"  # added by group_effects
        theta = pm.Normal("stance_scores", 0.0, 1.0, dims=(org_dim, "stance"))
        loading = pm.HalfNormal("loadings", sigma=self._prior("loadings", "sigma", 2.0),
                                dims="likert_item")
        cuts = pm.Normal("likert_cutpoints", 0.0, self._prior("likert_cutpoints", "sigma", 3.0),
                         dims=("likert_item", "likert_cut"),
                         transform=pm.distributions.transforms.ordered)
        org, item = np.nonzero(prep.likert >= 0)
        stance = np.array([STRATEGY_TYPES.index(i.rsplit("_", 1)[0]) for i in STANCE_ITEMS])
        # a Potential like the rest of the likelihood (an observed variable would make the
        # run's "log likelihood at the posterior mean" report the Likert items alone)
        answers = pm.OrderedLogistic.dist(eta=loading[item] * theta[org, stance[item]],
                                          cutpoints=cuts[item], compute_p=False)
        pm.Potential("likert_loglik", pm.logp(answers, prep.likert[org, item]).sum())
        if "strategy" in self.blocks:
            delta = pm.Normal("stance_effects", 0.0, self._prior("effects", "sigma", 1.0),
                              dims="stance")
        else:
            delta = pm.Deterministic("stance_effects", pt.zeros(len(STRATEGY_TYPES)),
                                     dims="stance")
        return pt.dot(theta, delta)[prep.org_of_row]

    # -- after sampling ----------------------------------------------------------------
    def monitored(self, idata: xr.DataTree) -> list[str]:
        post = idata["posterior"]
        names = ["class_shares", "class_effects_free", "beta", "cutpoints", "org_sd",
                 "year_effect", "stance_effects", "loadings", "likert_cutpoints"]
        names += [n for n in post.data_vars if n.startswith("item_probs_C")]
        if not any(n.startswith("item_probs_C") for n in post.data_vars):
            names.append("item_probs")
        return [n for n in names if n in post.data_vars and n not in self.fixed_at_zero()
                and post[n].size]

    def fixed_at_zero(self) -> tuple[str, ...]:
        """Effect variables that ``model.blocks`` leaves out (deterministic zeros)."""
        out = ("stance_effects",) if "strategy" not in self.blocks else ()
        return out + (("class_effects",) if "practice" not in self.blocks else ())

    def effects(self) -> list[str]:
        names = ["beta", "stance_effects", "class_effects_free", "class_shares", "org_sd",
                 "cutpoints", "year_effect", "loadings"]
        return [n for n in names if n not in self.fixed_at_zero()]

    def postprocess(self, idata: xr.DataTree, prep: PreparedJoint) -> xr.DataTree:
        """Relabel draws to the EM labelling; per-organisation log likelihood and classes."""
        post = idata["posterior"].to_dataset()
        feats = class_features(post["item_probs"].values, post["class_shares"].values)
        ref = class_features(prep.em.probs[None, None], prep.em.shares[None, None])[0, 0]
        perms = relabel.draw_permutations(feats, ref)
        post = relabel.relabel_dataset(post, perms)  # every variable with a class dim
        post = rereference(post, self.link)
        ll, membership = self.unit_log_likelihoods(post, prep)
        post["org_class_probs"] = xr.DataArray(
            membership, dims=("chain", "draw", "org", "class"),
            coords={"chain": post["chain"], "draw": post["draw"], "org": prep.orgs,
                    "class": prep.class_labels})
        idata["posterior"] = post
        idata["log_likelihood"] = xr.Dataset(
            {self.log_likelihood: (("chain", "draw", "org"), ll[self.log_likelihood])},
            coords={"chain": post["chain"], "draw": post["draw"], "org": prep.orgs},
        )
        agreement = self.chain_agreement(idata)
        agreement.update(relabel.n_switched(perms))
        idata["posterior"].attrs["joint_chain_agreement"] = json.dumps(agreement)
        return idata

    def unit_log_likelihoods(self, post: xr.Dataset, prep: PreparedJoint, chunk: int = 100
                             ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Per draw, (chain, draw, org): each ``LOG_LIKELIHOODS`` unit; (.., org, class) p(k | ..).

        ``items_and_ratings`` = log p(items_i, ratings_i) (plus the Likert answers' term
        with ``strategy: latent``); ``ratings_given_items`` = log p(ratings_i | items_i).
        """
        n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
        out_ll = {name: np.empty((n_chain, n_draw, prep.responses.n_org))
                  for name in LOG_LIKELIHOODS}
        out_p = np.empty((n_chain, n_draw, prep.responses.n_org, prep.n_classes))
        one_hot = prep.responses.one_hot()
        for c in range(n_chain):
            for start in range(0, n_draw, chunk):
                sl = slice(start, min(start + chunk, n_draw))
                v = {name: post[name].values[c, sl] for name in
                     ("beta", "org_effect", "year_effect", "class_effects", "cutpoints",
                      "class_shares", "item_probs")}
                if prep.likert is not None:
                    v.update({n: post[n].values[c, sl] for n in LATENT_NAMES})
                items, ratings = joint_components(v, prep, self.link, one_hot, split=True)
                joint = items + ratings
                total = logsumexp(joint, axis=-1)
                out_p[c, sl] = np.exp(joint - total[..., None])
                out_ll["ratings_given_items"][c, sl] = total - logsumexp(items, axis=-1)
                if prep.likert is not None:
                    total = total + likert_log_lik(v, prep).sum(axis=-1)
                out_ll["items_and_ratings"][c, sl] = total
        return out_ll, out_p

    def chain_agreement(self, idata: xr.DataTree) -> dict[str, Any]:
        post = idata["posterior"]
        stats = idata["sample_stats"] if "sample_stats" in idata.children else None
        lp = (stats["lp"].values if stats is not None and "lp" in stats.data_vars
              else np.zeros(post["class_shares"].shape[:2]))
        out = relabel.chain_agreement(
            lp, post["item_probs"].values, post["class_shares"].values,
            lp_tol=self.agreement_lp_tol, profile_tol=self.agreement_profile_tol)
        gamma = post["class_effects"].values.mean(axis=1)
        out["chain_mean_class_effects"] = np.round(gamma, 3).tolist()
        return out

    def diagnostics(self, idata: xr.DataTree, prep: PreparedJoint) -> dict[str, Any]:
        raw = idata["posterior"].attrs.get("joint_chain_agreement")
        agreement = json.loads(raw) if raw else self.chain_agreement(idata)
        agreement["em_loglik_items"] = prep.em.loglik
        return {"latent_classes": agreement}

    def tables(self, idata: xr.DataTree, prep: PreparedJoint) -> dict[str, pd.DataFrame]:
        from carestar import drivers
        from models.joint import figures as joint_figures

        out = {
            "class_effects": class_effect_table(idata, prep),
            "class_membership": membership_table(idata, prep),
            "figure1_probabilities": joint_figures.strategy_probabilities(self, idata, prep),
        }
        dec = drivers.decompose(idata, prep.design, link=self.link, omit=self.fixed_at_zero())
        out["drivers_variance"] = drivers.variance_table(dec)
        out["drivers_effects"] = drivers.effects_table(dec)
        if self.three_step.get("enabled"):
            out.update(three_step_tables(
                prep, self.three_step_classify, dict(self.three_step.get("sampler") or {}),
                int(self.three_step.get("seed", self.seed)), link=self.link,
                priors=self.priors))
        return out

    def figures(self, idata: xr.DataTree, prep: PreparedJoint, figdir: Path) -> dict[str, Path]:
        from models.joint import figures as joint_figures

        return joint_figures.draw_all(self, idata, prep, Path(figdir))

    def report_section(self, idata: xr.DataTree, prep: PreparedJoint) -> str:
        t = class_effect_table(idata, prep)
        agree = self.chain_agreement(idata)
        lines = [
            f"## Joint model: {prep.n_classes} latent classes of local practice"
            f" ({prep.responses.n_item} items) + strategy type + resources -> stars"
            f" ({prep.design.n} ratings of {prep.responses.n_org} organisations, {self.link} link)",
            "",
            "Class 1 (lowest use of local practice) is the reference of the class effects.",
            *([] if set(self.blocks) == set(BLOCKS) else [
                "", f"Nested model: only {', '.join(self.blocks) or 'no driver block'} enter(s)"
                f" the rating (`model.blocks`); {', '.join(self.fixed_at_zero()) or 'nothing'}"
                " fixed at 0, left-out predictors dropped."]),
            "",
            "| class | use (0-1) | share | class effect (latent scale) | 90% interval |"
            + (" truth |" if "truth" in t else ""),
            "|---|---|---|---|---|" + ("---|" if "truth" in t else ""),
        ]
        for row in t.to_dict("records"):
            truth = f" {row['truth']:.2f} |" if "truth" in t else ""
            lines.append(f"| {row['class']} | {row['use']:.2f} | {row['share']:.2f} |"
                         f" {row['mean']:.2f} | {row['q05']:.2f} to {row['q95']:.2f} |{truth}")
        lines += [
            "",
            f"Chains agree after relabelling: **{'yes' if agree['chains_agree'] else 'NO'}**"
            f" (mean lp per chain {agree['chain_mean_lp']}).",
            "",
            "See `tables/drivers_variance.csv` for how much of the between-council variation"
            " each block explains.",
        ]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# numpy pieces (the second implementation the PyMC graph is tested against)
# ---------------------------------------------------------------------------------------
def _row_cutpoints(cutpoints: np.ndarray, lowest, C: int) -> np.ndarray:
    """(S, N or 1, 1, C-1) cutpoints per draw and row, ``-inf`` below a year's lowest category."""
    if lowest is None or not np.any(lowest):
        return cutpoints[:, None, None, :]
    below = np.arange(C - 1)[None, :] < np.asarray(lowest)[:, None]  # (N, C-1)
    return np.where(below[None], -np.inf, cutpoints[:, None, :])[:, :, None, :]


def rating_log_lik(v: dict[str, np.ndarray], prep: PreparedJoint, link: str) -> np.ndarray:
    """(S, N, K) log P(stars_n | eta_n + gamma_k) for S draws of the named variables."""
    d = prep.design
    X = d.X.to_numpy(float)
    eta = v["beta"] @ X.T  # (S, N)
    eta = eta + v["org_effect"][:, d.groups[0].group.codes, 0]
    eta = eta + v["year_effect"][:, d.period.codes]
    if prep.likert is not None:
        eta = eta + np.einsum("sok,sk->so", v["stance_scores"],
                                v["stance_effects"])[:, prep.org_of_row]
    shifted = eta[..., None] + v["class_effects"][:, None, :]  # (S, N, K)
    cut = _row_cutpoints(v["cutpoints"], d.lowest, len(d.categories))
    p = category_probabilities(link, shifted, cut)  # (S, N, K, C)
    p_obs = np.take_along_axis(p, d.y[None, :, None, None].repeat(p.shape[2], 2), -1)[..., 0]
    with np.errstate(divide="ignore"):
        return np.log(np.clip(p_obs, 1e-300, 1.0))


def joint_components(v: dict[str, np.ndarray], prep: PreparedJoint, link: str,
                     one_hot: np.ndarray | None = None, split: bool = False):
    """(S, org, K): log pi_k + log p(items_i | k) + sum_t log p(stars_it | k).

    ``split=True``: the two parts, (log pi_k + log p(items_i | k), sum_t log p(stars_it | k)).
    """
    one_hot = prep.responses.one_hot() if one_hot is None else one_hot
    S = v["beta"].shape[0]
    rate = rating_log_lik(v, prep, link)  # (S, N, K)
    per_org = np.zeros((S, prep.responses.n_org, prep.n_classes))
    np.add.at(per_org, (slice(None), prep.org_of_row), rate)
    items = np.stack([item_log_lik(one_hot, v["item_probs"][s]) for s in range(S)])
    with np.errstate(divide="ignore"):
        log_pi = np.log(v["class_shares"])[:, None, :]
    return (log_pi + items, per_org) if split else log_pi + items + per_org


LIKERT_LEVELS = 7
LATENT_NAMES = ("stance_scores", "stance_effects", "loadings", "likert_cutpoints")


def likert_codes(strategy: pd.DataFrame, orgs: list[str]) -> np.ndarray:
    """(org, STANCE_ITEMS) Likert answers 1-7 as codes 0..6 (-1 missing); bad values stop."""
    missing = [c for c in STANCE_ITEMS if c not in strategy.columns]
    if missing:
        raise DataError(f"model.strategy=latent needs the Likert items; missing {missing}",
                        file="strategy.csv", expected=f"columns {list(STANCE_ITEMS)}")
    table = strategy.reindex(orgs)[list(STANCE_ITEMS)].apply(pd.to_numeric, errors="coerce")
    values = table.to_numpy(float)
    bad = np.isfinite(values) & ~np.isin(values, np.arange(1, LIKERT_LEVELS + 1))
    if bad.any():
        i, j = np.nonzero(bad)
        raise DataError("Likert answers outside 1-7", file="strategy.csv",
                        column=STANCE_ITEMS[j[0]], expected="integers 1-7 or blank",
                        hint="orgs: " + ", ".join(orgs[k] for k in i[:10]))
    return np.where(np.isfinite(values), values - 1, -1).astype(int)


def likert_initial_cutpoints(likert: np.ndarray) -> np.ndarray:
    """(item, 6) logits of the marginal cumulative proportions (ordered starting values)."""
    out = []
    for j in range(likert.shape[1]):
        col = likert[:, j][likert[:, j] >= 0]
        counts = np.bincount(col, minlength=LIKERT_LEVELS) + 0.5
        cum = np.cumsum(counts)[:-1] / counts.sum()
        out.append(np.log(cum / (1 - cum)))
    return np.array(out)


def likert_log_lik(v: dict[str, np.ndarray], prep: PreparedJoint) -> np.ndarray:
    """(S, org, item) log P(answer) of the ordered-logit measurement model (0 where missing)."""
    stance = np.array([STRATEGY_TYPES.index(i.rsplit("_", 1)[0]) for i in STANCE_ITEMS])
    theta = v["stance_scores"][:, :, stance]  # (S, org, item)
    loc = v["loadings"][:, None, :] * theta
    cdf = expit(v["likert_cutpoints"][:, None, :, :] - loc[..., None])  # (S, org, item, 6)
    zeros = np.zeros(cdf.shape[:-1] + (1,))
    p = np.diff(np.concatenate([zeros, cdf, zeros + 1.0], axis=-1), axis=-1)
    code = np.clip(prep.likert, 0, None)
    p_obs = np.take_along_axis(p, np.broadcast_to(code[None, ..., None], p.shape[:-1] + (1,)),
                               -1)[..., 0]
    with np.errstate(divide="ignore"):
        return np.where(prep.likert[None] >= 0, np.log(p_obs), 0.0)


def rereference(post: xr.Dataset, link: str) -> xr.Dataset:
    """Make class 1 the reference again after relabelling: gamma - gamma_1, cutpoints - gamma_1.

    ``P(s <= c | k) = F(c_c - eta - gamma_k)`` is unchanged when gamma and the cutpoints
    shift together; the category probabilities at eta = 0 follow the new cutpoints.
    """
    post = post.copy()
    gamma = post["class_effects"]
    g0 = gamma.isel({"class": 0})
    post["class_effects"] = gamma - g0
    # always: a relabelling that keeps class 1 in place still permutes the free effects
    if "class_effects_free" in post:  # absent when model.blocks leaves out practice
        post["class_effects_free"] = post["class_effects_free"].copy(
            data=post["class_effects"].values[..., 1:])
    if not np.any(g0.values):
        return post
    cut = post["cutpoints"] - g0
    post["cutpoints"] = cut
    cdf = link_cdf(link, cut.values)
    padded = np.concatenate([np.zeros(cdf.shape[:-1] + (1,)), cdf,
                             np.ones(cdf.shape[:-1] + (1,))], axis=-1)
    post["category_probs"] = post["category_probs"].copy(data=np.diff(padded, axis=-1))
    return post


# ---------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------
def truth_class_effects(truth: dict[str, Any] | None, n_classes: int) -> np.ndarray | None:
    """True class effects relative to the truth's reference class, ordered by use."""
    if not truth or "ratings" not in truth:
        return None
    effects = truth["ratings"]["class_effects"]
    classes = truth["local_practice"]["classes"]
    if len(classes) != n_classes:
        return None
    probs = truth["local_practice"]["item_probabilities"]
    use = []
    for c in classes:
        scores = [np.dot(np.arange(len(p[c])), p[c]) / (len(p[c]) - 1)
                  for p in probs["degree_of_use"].values()]
        scores += [p[c] for p in probs["used"].values()]
        use.append(np.mean(scores))
    ordered = [classes[i] for i in np.argsort(use)]
    ref = effects[ordered[0]]
    return np.array([effects[c] - ref for c in ordered])


def draws_table(g: np.ndarray, prep: PreparedJoint) -> pd.DataFrame:
    """Mean, SD, 90% interval of class effect draws (K, S); truth and coverage if known."""
    t = pd.DataFrame({
        "class": prep.class_labels,
        "mean": g.mean(axis=1),
        "sd": g.std(axis=1),
        "q05": np.quantile(g, 0.05, axis=1),
        "q95": np.quantile(g, 0.95, axis=1),
    })
    truth = truth_class_effects(prep.truth, prep.n_classes)
    if truth is not None:
        t["truth"] = truth
        t["covered"] = (t["q05"] <= truth) & (truth <= t["q95"])
    return t


def class_effect_table(idata: xr.DataTree, prep: PreparedJoint) -> pd.DataFrame:
    post = idata["posterior"]
    t = draws_table(post["class_effects"].stack(sample=("chain", "draw")).values, prep)
    t.insert(1, "use", class_use(post["item_probs"].mean(("chain", "draw")).values,
                                 prep.responses.n_categories))
    t.insert(2, "share", post["class_shares"].mean(("chain", "draw")).values)
    return t


def membership_table(idata: xr.DataTree, prep: PreparedJoint) -> pd.DataFrame:
    p = idata["posterior"]["org_class_probs"].mean(("chain", "draw")).values
    out = pd.DataFrame(p, columns=[f"p_class_{k}" for k in prep.class_labels])
    out.insert(0, "org", prep.orgs)
    out["modal_class"] = np.array(prep.class_labels)[p.argmax(axis=1)]
    out["em_modal_class"] = np.array(prep.class_labels)[prep.em.posterior.argmax(axis=1)]
    return out


# ---------------------------------------------------------------------------------------
# the three-step shortcut (classify, then regress) for experiments/three_step
# ---------------------------------------------------------------------------------------
# classification method (model.three_step.classify) -> table of its class effects
THREE_STEP_TABLES = {"em": "three_step_class_effects",
                     "kmeans": "three_step_kmeans_class_effects"}


def three_step_methods(three_step: dict[str, Any]) -> tuple[str, ...]:
    """The classification methods of ``model.three_step.classify`` (default ``[em]``).

    A single name counts as a one-item list; an unknown name raises ``ConfigError``.
    """
    methods = three_step.get("classify", ["em"])
    methods = [methods] if isinstance(methods, str) else list(methods)
    bad = [m for m in methods if m not in THREE_STEP_TABLES]
    if bad:
        raise ConfigError(f"model.three_step.classify: unknown method(s) {bad}; expected a"
                          f" list of {list(THREE_STEP_TABLES)}")
    return tuple(dict.fromkeys(methods))


def order_clusters_by_use(labels: np.ndarray, responses: ItemResponses) -> np.ndarray:
    """Cluster labels recoded 0..K-1 by increasing use of local practice.

    A cluster's use is the mean over items j of the (weighted) mean, over its members who
    answered j (codes >= 0), of code / (C_j - 1): 0 = never used, 1 = fully used. It is
    ``class_use`` with each cluster's answer frequencies in place of a class's item
    probabilities, so clusters get the order of the EM and joint model classes; the
    result does not depend on the labels' values (ties: in the order of those values).
    """
    values, index = np.unique(np.asarray(labels), return_inverse=True)
    scaled = np.where(responses.observed,
                      responses.codes / (np.asarray(responses.n_categories) - 1.0), 0.0)
    member = (index[:, None] == np.arange(len(values))) * responses.row_weights[:, None]
    total, answered = member.T @ scaled, member.T @ responses.observed  # (K, J) each
    item_use = np.divide(total, answered, out=np.full(total.shape, np.nan),
                         where=answered > 0)
    rank = np.empty(len(values), dtype=int)
    rank[np.argsort(np.nanmean(item_use, axis=1), kind="stable")] = np.arange(len(values))
    return rank[index]


def three_step_classes(prep: PreparedJoint, method: str, seed: int) -> np.ndarray:
    """Each organisation's class 0..K-1, ordered by increasing use, by ``method``.

    ``em``: the modal class of the EM solution (``prep.em``, already ordered by use);
    ``kmeans``: the study's k-means clusters (``models.kmeans.KMeansBaseline``, K clusters,
    random state ``seed``) ordered by ``order_clusters_by_use``.
    """
    if method == "em":
        return prep.em.posterior.argmax(axis=1)
    if method != "kmeans":
        raise ValueError(f"unknown classification method {method!r}")
    from models.kmeans import KMeansBaseline

    labels = KMeansBaseline(n_clusters=prep.n_classes).fit(prep.responses, seed=seed).labels
    return order_clusters_by_use(labels, prep.responses)


def true_classes(prep: PreparedJoint) -> np.ndarray | None:
    """Each organisation's generating class (simulated data), or None when unknown."""
    from models.lca import LCATruth

    truth = LCATruth.from_study(SimpleNamespace(truth=prep.truth), prep.responses)
    return None if truth is None else truth.classes


def classification_agreement(classes: dict[str, np.ndarray]) -> pd.DataFrame:
    """Adjusted Rand index (1 = the same partition, 0 = chance) of each pair of labellings."""
    from itertools import combinations

    from models.kmeans import adjusted_rand

    pairs = list(combinations(classes, 2))
    return pd.DataFrame({"comparison": [f"{a} vs {b}" for a, b in pairs],
                         "adjusted_rand_index": [adjusted_rand(classes[a], classes[b])
                                                 for a, b in pairs]})


def three_step_tables(prep: PreparedJoint, methods: tuple[str, ...], sampler: dict[str, Any],
                      seed: int, link: str = "logit", priors: dict[str, Any] | None = None
                      ) -> dict[str, pd.DataFrame]:
    """Classify by each method, regress, tabulate; and how the classifications agree.

    ``THREE_STEP_TABLES[method]``: the class effects of the ordinal fit on that method's
    classes (``draws_table``); ``three_step_agreement``: adjusted Rand indices between
    the methods' classes and the true classes (``truth``, simulated data), when there
    are at least two labellings.
    """
    classes = {m: three_step_classes(prep, m, seed) for m in methods}
    out = {}
    for method, c in classes.items():
        fit = fit_three_step(prep, sampler, seed, classes=c, link=link, priors=priors)
        out[THREE_STEP_TABLES[method]] = draws_table(
            three_step_class_effects(fit, prep.n_classes), prep)
    truth = true_classes(prep)
    labellings = classes if truth is None else {**classes, "truth": truth}
    if len(labellings) > 1:
        out["three_step_agreement"] = classification_agreement(labellings)
    return out


def three_step_design(prep: PreparedJoint, classes: np.ndarray) -> RegressionDesign:
    """The joint model's ratings design plus class indicators (class 1 the reference).

    ``classes``: one class code 0..K-1 per organisation (``prep.orgs`` order), e.g. the EM
    modal class; columns ``class[k]`` for k = 2..K.
    """
    d = prep.design
    row_class = np.asarray(classes)[prep.org_of_row]
    extra = {f"class[{k}]": (row_class == k - 1).astype(float) for k in prep.class_labels[1:]}
    return replace(d, X=d.X.assign(**extra))


def fit_three_step(prep: PreparedJoint, sampler: dict[str, Any], seed: int,
                   classes: np.ndarray | None = None, link: str = "logit",
                   priors: dict[str, Any] | None = None) -> xr.DataTree:
    """Classify (EM modal class unless ``classes`` given), then the ordinal model on classes."""
    from carestar.sampling import sample
    from models.ordinal import OrdinalModel

    if classes is None:
        classes = three_step_classes(prep, "em", seed)
    design = three_step_design(prep, classes)
    ordinal = OrdinalModel(link=link, priors=priors)
    return sample(ordinal.build(design), {**sampler, "posterior_predictive": False}, seed)


def three_step_class_effects(idata: xr.DataTree, n_classes: int) -> np.ndarray:
    """(K, S) class effect draws of a three-step fit (class 1 = 0)."""
    beta = idata["posterior"]["beta"]
    rows = [np.zeros(beta.sizes["chain"] * beta.sizes["draw"])]
    for k in range(2, n_classes + 1):
        rows.append(beta.sel(effect=f"class[{k}]").stack(sample=("chain", "draw")).values)
    return np.array(rows)

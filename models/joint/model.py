r"""Joint model: latent classes of local practice, strategy and resources -> star ratings.

One model, the class summed out per organisation, so that uncertainty about an
organisation's class reaches the rating effects (instead of classifying first and then
regressing on the classes: the "three-step" shortcut, ``models.joint.three_step``).

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

- Item emission (``model.ordinal_emission``, default true, as ``model=lca``): the
  degree-of-use items (ordinal, > 2 categories) get an ordered logit instead of free
  :math:`\theta_{kj\cdot}`, :math:`P(y_{ij} \le c \mid k) = \text{logit}^{-1}(\tau_{jc}
  - \eta_{kj})`, ordered :math:`\tau_{j\cdot} \sim N(0, \sigma_\tau^2)`
  (``item_cutpoints``), :math:`\eta_{\cdot j} \sim \text{ZeroSumNormal}(\sigma_\eta)` over
  classes (``class_location``; ``models.lca.emission``): 7 parameters per 0-5 item with
  3 classes, not 15. The free Dirichlet profiles of 8 six-category items left the three
  classes weakly identified (chains in different label modes, r_hat 1.097 under nutpie).
  Yes/no items keep free probabilities; ``item_probs`` is the (class, item, response)
  Deterministic of both.
- :math:`x_{it}`: the strategy type (``model.strategy: type``; treatment contrasts against
  ``model.reference.strategy_type``; or latent stances, below) and the standardised
  resources of the rating year;
  the practice summaries of models/ordinal.py are *not* predictors here: the classes are.
- Cutpoints: a Dirichlet on the category probabilities :math:`p` at the average rating row
  and the average class (``category_probs_at_mean``) induces ordered cutpoints

  .. math::

      c = F^{-1}(\text{cumsum}\ p) + \bar x^\top \beta + \tfrac{1}{K} \textstyle\sum_k \gamma_k,

  reported (``cutpoints``) for the reference row (:math:`x = 0`, class 1, as the effects are).
  Sampled at the average, the cutpoints no longer move with :math:`\beta` and :math:`\gamma`
  (posterior correlations of 0.4-0.6 when the Dirichlet sat at the reference row and class:
  r_hat 1.011 on ``cutpoints[1|2]`` in the default run). Years whose regime awarded no 0 stars
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
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from matplotlib.figure import Figure

from carestar.errors import ConfigError
from carestar.figures import LINK_SCALES, ForestPanel
from carestar.modelling import Model
from carestar.study_design import PRACTICE
from models.joint import likelihood, summaries
from models.joint.graph import ANSWERS, STARS, joint_graph
from models.joint.likelihood import LOG_LIKELIHOODS
from models.joint.likert import likert_initial_cutpoints
from models.joint.prepared import PreparedJoint, prepare_joint
from models.joint.relabelling import chain_agreement, relabel_to_em
from models.joint.three_step import three_step_methods, three_step_tables
from models.lca import interior_item_probs, interior_shares, ordinal_initial_values
from models.lca.posterior import is_mode_only
from models.lca.predictive import answer_check
from models.ordinal import LINKS

__all__ = ["ANSWERS", "BLOCKS", "STARS", "STRATEGY_MODES", "JointModel"]  # ANSWERS, STARS: graph's

STRATEGY_MODES = ("type", "latent")
BLOCKS = ("strategy", "resources", "practice")  # model.blocks: the drivers in the rating


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
        ordinal_emission: bool = True,
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
        self.ordinal_emission = bool(ordinal_emission)
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
        """The config checked against the study; the EM solution (``prepared.prepare_joint``)."""
        return prepare_joint(self, data)

    # -- build -------------------------------------------------------------------------
    def build(self, prep: PreparedJoint) -> pm.Model:
        """The PyMC graph (``graph.joint_graph``)."""
        return joint_graph(self, prep)

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
        if prep.ordinal_items:
            js = list(prep.ordinal_items)
            c = r.n_categories[js[0]]
            tau, eta = ordinal_initial_values(r.one_hot()[:, js, :c], em.posterior,
                                              np.ones(r.n_org))
            out["item_cutpoints"] = tau
            if prep.n_classes > 1:
                out["class_location"] = eta.T  # (item_ordinal, class)
        if prep.likert is not None:
            out["likert_cutpoints"] = likert_initial_cutpoints(prep.likert)
        return out

    # -- after sampling ----------------------------------------------------------------
    def monitored(self, idata: xr.DataTree) -> list[str]:
        post = idata["posterior"]
        names = ["class_shares", "class_effects_free", "beta", "cutpoints", "org_sd",
                 "year_effect", "stance_effects", "loadings", "likert_cutpoints"]
        names += [n for n in post.data_vars if n.startswith("item_probs_C")]
        names += ["item_cutpoints", "class_location"]
        if not any(n.startswith("item_probs_C") for n in post.data_vars) and \
                "item_cutpoints" not in post.data_vars:
            names.append("item_probs")
        return [n for n in names if n in post.data_vars and n not in self.fixed_at_zero()
                and post[n].size]

    def sbc_generator(self, prep: PreparedJoint):
        """``task=sbc``: the model's own simulator (``models.joint.sbc``)."""
        from models.joint.sbc import generator

        return generator(self, prep)

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
        post, switched = relabel_to_em(idata["posterior"].to_dataset(), prep.em)
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
        agreement.update(switched)
        idata["posterior"].attrs["joint_chain_agreement"] = json.dumps(agreement)
        return idata

    def unit_log_likelihoods(self, post: xr.Dataset, prep: PreparedJoint, chunk: int = 100
                             ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """``likelihood.unit_log_likelihoods`` with this model's link."""
        return likelihood.unit_log_likelihoods(post, prep, self.link, chunk)

    def loo_moment_matching(self, pm_model: pm.Model, sampled: xr.Dataset, prep: PreparedJoint):
        """PSIS-LOO moment matching of the organisation units (``carestar.moment_matching``)."""
        return likelihood.moment_matching(pm_model, sampled, prep, self.link, self.log_likelihood)

    def chain_agreement(self, idata: xr.DataTree) -> dict[str, Any]:
        return chain_agreement(idata, lp_tol=self.agreement_lp_tol,
                               profile_tol=self.agreement_profile_tol)

    def diagnostics(self, idata: xr.DataTree, prep: PreparedJoint) -> dict[str, Any]:
        raw = idata["posterior"].attrs.get("joint_chain_agreement")
        agreement = json.loads(raw) if raw else self.chain_agreement(idata)
        agreement["em_loglik_items"] = prep.em.loglik
        return {"latent_classes": agreement}

    def tables(self, idata: xr.DataTree, prep: PreparedJoint) -> dict[str, pd.DataFrame]:
        from carestar import drivers
        from models.joint import figures

        out = {
            "class_effects": summaries.class_effect_table(idata, prep),
            "class_membership": summaries.membership_table(idata, prep),
            "figure1_probabilities": figures.strategy_probabilities(self, idata, prep),
        }
        if not is_mode_only(idata):
            out["ppc_answers"] = answer_check(idata["posterior"], prep.responses)
        dec = drivers.decompose(idata, prep.design, link=self.link, omit=self.fixed_at_zero())
        out["drivers_variance"] = drivers.variance_table(dec)
        out["drivers_effects"] = drivers.effects_table(dec)
        if self.three_step.get("enabled"):
            out.update(three_step_tables(
                prep, self.three_step_classify, dict(self.three_step.get("sampler") or {}),
                int(self.three_step.get("seed", self.seed)), link=self.link,
                priors=self.priors))
        return out

    def forest_panels(self, prep: PreparedJoint) -> list[ForestPanel]:
        scale = LINK_SCALES[self.link]
        reference = self.reference.get("strategy_type", "defender")
        return [
            ForestPanel("Effects on the rating (a positive one moves ratings up)",
                        ("beta", "stance_effects", "class_effects_free"),
                        f"effect on the {scale} scale\n(strategy types vs {reference}; resources per SD;"
                        " classes vs class 1, the lowest use)"),
            ForestPanel("Year effects (vs the mean year)", ("year_effect",), f"year effect, {scale} scale"),
            ForestPanel("Class shares (classes in order of use)", ("class_shares",),
                        "share of organisations (probability)", zero_line=False),
            ForestPanel("Organisation SD, Likert loadings", ("org_sd", "loadings"),
                        f"SD of the organisation intercepts ({scale});\nloading per SD of a stance",
                        zero_line=False),
            ForestPanel("Cutpoints (reference class, x = 0)", ("cutpoints",),
                        f"cutpoint on the {scale} scale", zero_line=False),
        ]

    def figures(self, idata: xr.DataTree, prep: PreparedJoint) -> dict[str, Figure]:
        from models.joint import figures

        return figures.draw_all(self, idata, prep)

    def report_section(self, idata: xr.DataTree, prep: PreparedJoint) -> str:
        return summaries.report_section(self, idata, prep, BLOCKS)

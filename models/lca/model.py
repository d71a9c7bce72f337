r"""Bayesian latent class analysis of local practice items (replaces the study's k-means).

Model
-----
Organisation :math:`i = 1..N` answers item :math:`j = 1..J` with category
:math:`y_{ij} \in \{0..C_j-1\}` (or leaves it missing, :math:`O_i` = the items it answered).
It belongs to one of :math:`K` latent classes, :math:`z_i`; given its class the items are
independent (local independence):

.. math::

    \pi_i &= \text{Dirichlet}(\alpha_\pi 1_K)  \qquad\text{(no covariates: } \pi_i = \pi)\\
    \pi_i &= \text{softmax}(x_i^\top \beta), \ \beta_{\cdot 1} = 0,\
              \beta_{pk} \sim N(0, \sigma_\beta^2)\ (k \ge 2)  \qquad\text{(covariates)}\\
    \theta_{kj\cdot} &\sim \text{Dirichlet}(\alpha_\theta 1_{C_j})\\
    p(y_i) &= \sum_{k=1}^K \pi_{ik} \prod_{j \in O_i} \theta_{k j y_{ij}}

and the log likelihood is :math:`\sum_i w_i \log p(y_i)`, with the class summed out by
``logsumexp`` (:math:`w_i` = frequency weights, 1 by default). Missing answers leave
:math:`O_i` and so drop out of that organisation's likelihood (ignorable missingness).

With ``ordinal_emission: true`` the ordinal (``degree_of_use``) items get an ordered-logit
emission instead of free category probabilities: shared cutpoints per item and a class
location that sums to zero over classes,

.. math::

    P(y_{ij} \le c \mid z_i = k) = \text{logit}^{-1}(\tau_{jc} - \eta_{kj}),\quad
    \tau_{j\cdot} \text{ ordered } \sim N(0, \sigma_\tau^2),\quad
    \eta_{\cdot j} \sim \text{ZeroSumNormal}(\sigma_\eta)\ \text{(over classes)}.

PyMC variables and dims: ``class_shares`` (class), ``item_probs`` (class, item, category;
with items of different numbers of categories, the free variables are ``item_probs_C{c}``
with dims (class, item_C{c}, category_C{c}) and ``item_probs`` is their zero-padded
Deterministic), ``class_coefs`` (class_free, coef) and ``class_coefs_full`` (class, coef)
with covariates, ``cutpoints`` (item_ordinal, cutpoint) / ``class_location``
(item_ordinal, class; zero sum over classes) for the ordinal emission.

Likelihood and LOO
------------------
The mixture likelihood is a ``pm.Potential`` (``responses_loglik``) of
:math:`\sum_i w_i \ell_i`: a row's log likelihood is not a sum over independent
elements, so an elementwise ``CustomDist`` does not fit, and a per-row ``Deterministic``
would store N numbers per draw during sampling. Instead ``postprocess`` recomputes
:math:`\ell_i` for every draw in plain numpy (``models.lca.posterior``; the tests check the
PyMC graph against ``models.lca.likelihood``) and stores it as the ``log_likelihood``
group, variable ``responses`` (chain, draw, org). With frequency weights
:math:`\ell_i` is the log likelihood of *one* unit with row :math:`i`'s pattern, and the row
is repeated :math:`w_i` times (labels ``row.1 .. row.w``), so PSIS-LOO leaves out one unit
and its elpd is on the scale of the weighted log likelihood (up to 20,000 units; beyond
that LOO leaves out whole patterns, with a warning).

Label switching
---------------
``prepare`` fits the model by maximum likelihood with StepMix's EM (at least ``em_starts``
random starts, more until two reach the best log likelihood; ``models.lca.em``), classes
ordered by use (class 1 = lowest); ``build`` gives that solution as the initial value of every chain. ``postprocess`` relabels
every draw to the EM labelling (Hungarian matching on item profiles and shares,
``carestar.relabel``) and records whether the chains agree (``chain_agreement``).
The EM point is also the posterior mode with the default flat priors (alpha = 1,
no covariates) and free item probabilities; the log likelihood, AIC and BIC are reported
there. With the ordinal emission (the default in ``conf/model/lca.yaml``) EM fits a
different (unrestricted) model, so ``postprocess`` finds the mode with ``pm.find_MAP``
started from the best draw; ``sampler=map`` reports the mode it found. After sampling,
``posterior.posterior_vs_em`` checks that the posterior sits at the EM point (shares, mean
answers, no draw above the EM maximum) and the run is marked when it does not
(``latent_classes.posterior_matches_em``).

Run outputs
-----------
``tables/``: ``class_shares``, ``item_profiles``, ``class_membership`` (each organisation's
posterior class probabilities, modal class, and its true class on simulated data),
``fit`` (log likelihood at the mode, AIC, BIC, relative entropy, ARI vs truth),
``truth_recovery`` (simulated data: every true share and item probability beside its 90%
interval). ``figures/``: ``item_profiles.png`` (the study's Figure 2, then by class),
``class_membership.png``. ``diagnostics.json``: ``latent_classes`` (chain agreement,
relabelling, relative entropy, smallest share, ``ari_vs_truth``), ``log_likelihood``
(at the mode, AIC, BIC) and ``loo`` (from the ``log_likelihood`` group written here).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from matplotlib.figure import Figure

from carestar.errors import ConfigError
from carestar.figures import ForestPanel
from carestar.item_responses import ItemResponses, check_n_classes
from carestar.modelling import Model
from models.lca import posterior, summaries
from models.lca.data import LCATruth, PreparedLCA, item_responses
from models.lca.em import design_matrix, fit_em
from models.lca.graph import ANSWERS, lca_graph
from models.lca.initial_values import initial_values
from models.lca.relabelling import relabel_to_em

__all__ = ["ANSWERS", "LatentClassModel"]  # ANSWERS: graph's

log = logging.getLogger(__name__)


class LatentClassModel(Model):
    """Bayesian latent class model; see the module docstring for the math."""

    name = "lca"

    def __init__(
        self,
        n_classes: int = 3,
        items: list[str] | None = None,
        covariates: list[str] | str | None = None,
        ordinal_emission: bool = False,
        class_share_alpha: float = 1.0,
        item_alpha: float = 1.0,
        covariate_sigma: float = 2.5,
        cutpoint_sigma: float = 3.0,
        location_sigma: float = 2.0,
        em_starts: int = 20,
        em_max_starts: int = 200,
        seed: int = 0,
        agreement_lp_tol: float = 2.0,
        agreement_profile_tol: float = 0.05,
        em_score_tol: float = 0.20,
        em_share_tol: float = 0.10,
        em_loglik_tol: float = 0.01,
        **_: Any,
    ) -> None:
        self.n_classes = n_classes
        self.items = None if items is None else list(items)
        # column names, or a formula right-hand side ("PARTY * AGE"; models.lca.covariates)
        self.covariates = (covariates.strip() if isinstance(covariates, str)
                           else list(covariates or []))
        self.ordinal_emission = bool(ordinal_emission)
        for key, val in dict(class_share_alpha=class_share_alpha, item_alpha=item_alpha,
                             covariate_sigma=covariate_sigma, cutpoint_sigma=cutpoint_sigma,
                             location_sigma=location_sigma).items():
            if not (isinstance(val, (int, float)) and val > 0):
                raise ConfigError(f"model.{key} must be a positive number, got {val!r}")
        self.class_share_alpha = float(class_share_alpha)
        self.item_alpha = float(item_alpha)
        self.covariate_sigma = float(covariate_sigma)
        self.cutpoint_sigma = float(cutpoint_sigma)
        self.location_sigma = float(location_sigma)
        self.em_starts = int(em_starts)
        self.em_max_starts = int(em_max_starts)
        if self.em_starts < 1 or self.em_max_starts < self.em_starts:
            raise ConfigError(f"model.em_starts must be >= 1 and model.em_max_starts >= it, got"
                              f" {em_starts} and {em_max_starts}")
        self.seed = int(seed)
        self.agreement_lp_tol = agreement_lp_tol
        self.agreement_profile_tol = agreement_profile_tol
        self.em_tols = dict(score_tol=float(em_score_tol), share_tol=float(em_share_tol),
                            loglik_tol=float(em_loglik_tol))

    # -- prepare -----------------------------------------------------------------------
    def responses_from(self, data: Any) -> ItemResponses:
        """ItemResponses from a Study, a TidyTable-like object (``.frame``) or itself."""
        return item_responses(data, self.items, self.covariates)

    def prepare(self, data: Any) -> PreparedLCA:
        resp = self.responses_from(data)
        check_n_classes(resp, self.n_classes)
        em = fit_em(resp, self.n_classes, seed=self.seed, n_init=self.em_starts,
                    max_starts=self.em_max_starts)
        if self.n_classes > 1 and em.n_at_best < 2:
            log.warning("EM: the best log likelihood %.4f was reached by only 1 of %d starts"
                        " (model.em_max_starts): it may be a local maximum", em.loglik,
                        em.n_starts)
        else:
            log.info("EM: best log likelihood %.4f reached by %d of %d starts", em.loglik,
                     em.n_at_best, em.n_starts)
        design = design_matrix(resp)
        names = () if design is None else ("Intercept", *map(str, resp.covariates.columns))
        ordinal = tuple(
            j for j, k in enumerate(resp.kinds) if self.ordinal_emission and k == "ordinal"
            and resp.n_categories[j] > 2
        )
        truth = LCATruth.from_study(data, resp) if hasattr(data, "local_practice") else None
        labels = ((getattr(data, "truth", None) or {}).get("local_practice") or {}).get(
            "item_labels")
        n_rows = len(data.frame) if hasattr(data, "frame") else (
            len({str(o) for o in data.local_practice["org"]}) if hasattr(data, "local_practice")
            else resp.n_org)
        return PreparedLCA(resp, self.n_classes, design, names, em, ordinal, truth, labels,
                           n_dropped=n_rows - resp.n_org)

    # -- build -------------------------------------------------------------------------
    def build(self, prepared: PreparedLCA) -> pm.Model:
        """The PyMC graph (``graph.lca_graph``)."""
        return lca_graph(self, prepared)

    def initvals(self, prepared: PreparedLCA) -> dict[str, np.ndarray]:
        """Starting values for every chain: the EM solution (pass to ``pm.sample(initvals=)``).

        They are not attached to the PyMC variables (``initval=``) because PyMC cannot then
        convert the model to a graph (``compute_log_likelihood``, ``do``, ``observe`` fail).
        """
        return initial_values(prepared)

    # -- after sampling ----------------------------------------------------------------
    def monitored(self, idata: xr.DataTree) -> list[str] | None:
        post = idata["posterior"]
        names = [n for n in post.data_vars
                 if n.startswith("item_probs_C") or n in ("class_coefs", "cutpoints", "class_location")]
        if "item_probs" in post.data_vars and not any(n.startswith("item_probs_C") for n in names):
            names.append("item_probs")
        return (["class_shares"] if self.n_classes > 1 else []) + names

    def sbc_generator(self, prepared: PreparedLCA):
        """``task=sbc``: the model's own simulator (``models.lca.sbc``)."""
        from models.lca.sbc import generator

        return generator(self, prepared)

    def effects(self) -> list[str]:
        return ["class_shares"] + (["class_coefs"] if self.covariates else [])

    def postprocess(self, idata: xr.DataTree, prepared: PreparedLCA) -> xr.DataTree:
        """Relabel every draw to the EM labelling; add log_likelihood and agreement."""
        post, switched = relabel_to_em(idata["posterior"].to_dataset(), prepared.em,
                                       prepared.n_classes)
        idata["posterior"] = post
        ll = self.pointwise_loglik(post, prepared)
        if not posterior.is_mode_only(idata):
            versus = posterior.posterior_vs_em(post, ll @ prepared.responses.row_weights,
                                               prepared, **self.em_tols)
            if not versus["posterior_matches_em"]:
                log.warning("the posterior is not at the EM (maximum likelihood) solution: %s",
                            "; ".join(versus["reasons"]))
            idata["posterior"].attrs["lca_posterior_vs_em"] = json.dumps(versus)
        labels = [str(o) for o in prepared.responses.orgs]
        ll, labels = posterior.loo_units(ll, labels, prepared.responses.weights)
        idata["log_likelihood"] = xr.Dataset(
            {"responses": (("chain", "draw", "org"), ll)},
            coords={"chain": post["chain"], "draw": post["draw"], "org": labels},
        )
        agreement = self.chain_agreement(idata, prepared)
        agreement.update(switched)
        idata["posterior"].attrs["lca_chain_agreement"] = json.dumps(agreement)
        idata["posterior"].attrs["lca_mode"] = json.dumps(self.mode_loglik(idata, prepared))
        return idata

    @staticmethod
    def posterior_vs_em(idata: xr.DataTree) -> dict[str, Any] | None:
        """``posterior.posterior_vs_em`` as ``postprocess`` recorded it (None for a mode)."""
        raw = idata["posterior"].attrs.get("lca_posterior_vs_em")
        return json.loads(raw) if raw else None

    def mode_loglik(self, idata: xr.DataTree, prepared: PreparedLCA) -> dict[str, Any]:
        """Weighted log likelihood at the posterior mode (``posterior.mode_loglik``)."""
        return posterior.mode_loglik(self, idata, prepared)

    def n_parameters(self, prepared: PreparedLCA) -> int:
        return summaries.n_parameters(prepared)

    def diagnostics(self, idata: xr.DataTree, prepared: PreparedLCA) -> dict[str, Any]:
        """diagnostics.json: ``latent_classes`` (chain agreement, relabelling, entropy, ARI
        against the truth on simulated data) and ``log_likelihood`` (at the mode, AIC, BIC).

        The run machinery's own ``log_likelihood`` entry is empty for this model (its
        likelihood is a Potential), so the model's replaces it.
        """
        raw = idata["posterior"].attrs.get("lca_chain_agreement")
        agreement = json.loads(raw) if raw else self.chain_agreement(idata, prepared)
        agreement["em_loglik"] = prepared.em.loglik
        agreement["em_starts"] = prepared.em.n_starts
        agreement["em_starts_at_best"] = prepared.em.n_at_best
        versus = self.posterior_vs_em(idata)
        if versus is not None:
            agreement["posterior_vs_em"] = versus
            agreement["posterior_matches_em"] = versus["posterior_matches_em"]
        membership = self.class_membership(idata, prepared)
        fit = self.fit_statistics(prepared, membership, idata)
        agreement["relative_entropy"] = fit["relative_entropy"]
        agreement["smallest_class_share"] = float(
            idata["posterior"]["class_shares"].mean(("chain", "draw")).min())
        ari = self.truth_ari(membership, prepared)
        if ari is not None:
            agreement["ari_vs_truth"] = ari
        return {
            "latent_classes": agreement,
            "log_likelihood": {
                "at": fit["loglik_at"],
                "kind": "marginal: the latent class summed out of each organisation's likelihood",
                "loglik": fit["loglik_mode"], "aic": fit["aic"],
                "bic": fit["bic"], "n_params": fit["n_params"], "n_obs": fit["n_units"],
            },
        }

    def pointwise_loglik(self, post: xr.Dataset, prepared: PreparedLCA) -> np.ndarray:
        """(chain, draw, org) unweighted row log likelihoods from the posterior draws."""
        return posterior.pointwise_loglik(post, prepared)

    def chain_agreement(self, idata: xr.DataTree, prepared: PreparedLCA) -> dict[str, Any]:
        """Per-chain mean log density, shares and profiles; ``chains_agree`` (bool)."""
        return posterior.chain_agreement(idata, lp_tol=self.agreement_lp_tol,
                                         profile_tol=self.agreement_profile_tol)

    def class_membership(self, idata: xr.DataTree, prepared: PreparedLCA) -> pd.DataFrame:
        """Each organisation's posterior class probabilities (averaged over draws), modal class."""
        return posterior.class_membership(idata, prepared)

    truth_ari = staticmethod(summaries.truth_ari)

    def fit_statistics(self, prepared: PreparedLCA, membership: pd.DataFrame | None = None,
                       idata: xr.DataTree | None = None) -> dict[str, Any]:
        """``summaries.fit_statistics`` at the run's mode (recorded by ``postprocess``); at
        the EM point without ``idata``."""
        mode = None
        if idata is not None:
            raw = idata["posterior"].attrs.get("lca_mode")
            mode = json.loads(raw) if raw else self.mode_loglik(idata, prepared)
        return summaries.fit_statistics(prepared, membership, mode)

    def truth_recovery(self, idata: xr.DataTree, prepared: PreparedLCA,
                       prob: float = 0.9) -> pd.DataFrame | None:
        """Each true class share and item probability beside its posterior interval."""
        return summaries.truth_recovery(idata, prepared, prob)

    def tables(self, idata: xr.DataTree, prepared: PreparedLCA) -> dict[str, pd.DataFrame]:
        return summaries.tables(self, idata, prepared)

    def forest_panels(self, prepared: PreparedLCA) -> list[ForestPanel]:
        return [
            ForestPanel("Class shares (classes in order of use, class 1 the lowest)", ("class_shares",),
                        "share of organisations (probability)", zero_line=False),
            ForestPanel("Covariates of class membership", ("class_coefs",),
                        "effect on the log odds of each class vs class 1, per unit of the covariate"),
        ]

    def figures(self, idata: xr.DataTree, prepared: PreparedLCA) -> dict[str, Figure]:
        """``item_profiles`` (the study's Figure 2 by class), ``class_membership`` and, for a
        sampled run, ``ppc_answers`` (``models.lca.predictive``)."""
        from models.lca.figures import class_membership_figure, item_profiles_figure
        from models.lca.predictive import answer_check, answer_check_figure

        membership = self.class_membership(idata, prepared)
        figures = {
            "item_profiles": item_profiles_figure(idata, prepared),
            "class_membership": class_membership_figure(membership, prepared),
        }
        if not posterior.is_mode_only(idata):
            table = answer_check(idata["posterior"], prepared.responses, prepared.design)
            figures["ppc_answers"] = answer_check_figure(table, prepared.item_labels)
        return figures

    def report_section(self, idata: xr.DataTree, prepared: PreparedLCA) -> str:
        return summaries.report_section(self, idata, prepared)

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
:math:`\ell_i` for every draw with the plain-numpy implementation (``row_loglik``; the
same function the tests check the PyMC graph against) and stores it as the
``log_likelihood`` group, variable ``responses`` (chain, draw, org). With frequency weights
:math:`\ell_i` is the log likelihood of *one* unit with row :math:`i`'s pattern, and the row
is repeated :math:`w_i` times (labels ``row.1 .. row.w``), so PSIS-LOO leaves out one unit
and its elpd is on the scale of the weighted log likelihood (up to 20,000 units; beyond
that LOO leaves out whole patterns, with a warning).

Label switching
---------------
``prepare`` fits the model by maximum likelihood with StepMix's EM (several random starts);
``build`` gives that solution as the initial value of every chain. ``postprocess`` relabels
every draw to the EM labelling (Hungarian matching on item profiles and shares,
``carestar.relabel``) and records whether the chains agree (``chain_agreement``).
The EM point is also the posterior mode with the default flat priors (alpha = 1,
no covariates) and free item probabilities; the log likelihood, AIC and BIC are reported
there. With the ordinal emission (the default in ``conf/model/lca.yaml``) EM fits a
different (unrestricted) model, so ``postprocess`` finds the mode with ``pm.find_MAP``
started from the best draw; ``sampler=map`` reports the mode it found.

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
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy.special import expit, log_softmax, logsumexp

from carestar import relabel
from carestar.errors import ConfigError
from carestar.item_responses import ItemResponses, check_n_classes
from carestar.modelling import Model

EPS = 1e-6  # keeps EM boundary probabilities inside the simplex for initial values


# ---------------------------------------------------------------------------------------
# plain-numpy likelihood (the second implementation the PyMC graph is tested against)
# ---------------------------------------------------------------------------------------
def class_log_probs(design: np.ndarray | None, shares: np.ndarray | None = None,
                    coefs: np.ndarray | None = None, n_rows: int | None = None) -> np.ndarray:
    """(N, K) log class-membership probabilities: shares, or softmax(design @ coefs.T).

    ``coefs`` is (K, 1 + P) with the intercept first (row 0 may be the zero reference).
    """
    if coefs is not None:
        return log_softmax(design @ np.asarray(coefs).T, axis=1)
    shares = np.asarray(shares, float)
    return np.broadcast_to(np.log(shares), (n_rows, len(shares)))


def item_log_lik(one_hot: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(N, K): sum over observed items of log P(answer | class).

    ``one_hot`` (N, J, C) indicators (zero rows for missing answers), ``probs`` (K, J, C).
    """
    with np.errstate(divide="ignore"):
        logp = np.where(probs > 0, np.log(np.where(probs > 0, probs, 1.0)), -np.inf)
    # 0 * -inf must count as 0 (a category nobody in the row answered)
    contrib = np.where(one_hot[:, None] > 0, logp[None], 0.0)
    return contrib.sum(axis=(2, 3))


def row_loglik(responses: ItemResponses, probs: np.ndarray, shares=None, coefs=None,
               design=None) -> np.ndarray:
    """Per-row mixture log likelihood log p(y_i) (unweighted), length N."""
    lp = class_log_probs(design, shares, coefs, responses.n_org)
    return logsumexp(lp + item_log_lik(responses.one_hot(), probs), axis=1)


def responsibilities(responses: ItemResponses, probs, shares=None, coefs=None,
                     design=None) -> np.ndarray:
    """(N, K) posterior class probabilities given the parameters."""
    joint = class_log_probs(design, shares, coefs, responses.n_org) + item_log_lik(
        responses.one_hot(), probs
    )
    return np.exp(joint - logsumexp(joint, axis=1, keepdims=True))


def relative_entropy(post: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Mplus relative entropy 1 - sum_i sum_k -p log p / (N log K) (1 = perfect separation)."""
    n, k = post.shape
    if k == 1:
        return 1.0
    w = np.ones(n) if weights is None else np.asarray(weights, float)
    p = np.clip(post, 1e-300, 1.0)
    ent = -(w[:, None] * post * np.log(p)).sum()
    return float(1.0 - ent / (w.sum() * np.log(k)))


def ordinal_probs(cutpoints: np.ndarray, location: np.ndarray) -> np.ndarray:
    """(K, J, C) category probabilities of the ordered logit: cutpoints (J, C-1), location (K, J)."""
    cdf = expit(cutpoints[None] - location[..., None])  # (K, J, C-1)
    ones = np.ones(cdf.shape[:-1] + (1,))
    cdf = np.concatenate([np.zeros_like(ones), cdf, ones], axis=-1)
    return np.diff(cdf, axis=-1)


# ---------------------------------------------------------------------------------------
# maximum likelihood by EM (StepMix): starting values, reference labelling, mode
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EMFit:
    """A maximum likelihood latent class solution (StepMix EM).

    probs: (K, J, max_categories) item-response probabilities (0 beyond an item's categories)
    shares: (K,) class shares (mean class-membership probability with covariates)
    coefs: (K, 1+P) multinomial-logit coefficients, class 0 the zero reference, or None
    loglik: weighted log likelihood at this point; n_params: free parameters
    """

    probs: np.ndarray
    shares: np.ndarray
    coefs: np.ndarray | None
    loglik: float
    n_params: int
    posterior: np.ndarray = field(repr=False)

    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.n_params

    def bic(self, n: float) -> float:
        return -2 * self.loglik + self.n_params * np.log(n)


def design_matrix(responses: ItemResponses) -> np.ndarray | None:
    """Intercept + covariates, (N, 1 + P), or None without covariates."""
    if responses.covariates is None or responses.covariates.shape[1] == 0:
        return None
    x = responses.covariates.to_numpy(float)
    return np.column_stack([np.ones(len(x)), x])


def fit_em(responses: ItemResponses, n_classes: int, *, seed: int = 0, n_init: int = 10,
           max_iter: int = 2000) -> EMFit:
    """Maximum likelihood by EM with StepMix (missing answers, weights, covariates).

    Classes are ordered by decreasing share so the labelling is reproducible.
    """
    from stepmix.stepmix import StepMix

    x = responses.codes.astype(float)
    x[responses.codes < 0] = np.nan
    design = design_matrix(responses)
    cmax = responses.max_categories
    kwargs: dict[str, Any] = dict(
        n_components=n_classes,
        measurement="categorical_nan",
        measurement_params={"max_n_outcomes": cmax, "total_outcomes": sum(responses.n_categories)},
        n_init=n_init,
        max_iter=max_iter,
        abs_tol=1e-10,
        random_state=seed,
        progress_bar=False,
        verbose=0,
    )
    if design is not None:
        kwargs.update(structural="covariate", n_steps=1,
                      structural_params={"method": "newton-raphson", "max_iter": 1})
    sm = StepMix(**kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if design is not None:
            sm.fit(x, design[:, 1:], sample_weight=responses.weights)
        else:
            sm.fit(x, sample_weight=responses.weights)
    params = sm.get_parameters()
    probs = np.asarray(params["measurement"]["pis"]).reshape(n_classes, responses.n_item, cmax)
    for j, c in enumerate(responses.n_categories):
        probs[:, j, c:] = 0.0
    probs /= probs.sum(axis=-1, keepdims=True)
    coefs = None
    shares = np.asarray(sm.weights_, float)
    if design is not None:
        beta = np.asarray(params["structural"]["beta"], float)  # (K, 1+P)
        coefs = beta - beta[0]
    post = responsibilities(responses, probs, shares, coefs, design)
    if design is not None:
        shares = np.average(post, axis=0, weights=responses.row_weights)
    order = np.argsort(-shares, kind="stable")
    probs, shares, post = probs[order], shares[order], post[:, order]
    if coefs is not None:
        coefs = coefs[order] - coefs[order][0]
    ll = float(responses.row_weights @ row_loglik(responses, probs, shares, coefs, design))
    return EMFit(probs=probs, shares=shares, coefs=coefs, loglik=ll,
                 n_params=responses.n_free_parameters(n_classes), posterior=post)


# ---------------------------------------------------------------------------------------
# the model class
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PreparedLCA:
    """What ``build`` and the post-processing need: responses, design, EM solution."""

    responses: ItemResponses
    n_classes: int
    design: np.ndarray | None
    coef_names: tuple[str, ...]
    em: EMFit
    ordinal_items: tuple[int, ...]  # item indices with an ordered-logit emission
    truth: LCATruth | None = None  # simulated data: the generating classes and parameters
    item_labels: dict[str, str] | None = None  # item name -> label for figures

    @property
    def class_labels(self) -> list[int]:
        return list(range(1, self.n_classes + 1))


@dataclass(frozen=True)
class LCATruth:
    """The generating latent classes of a simulated study, aligned with the responses.

    names:   true class names (e.g. low / medium / high)
    classes: (N,) index into ``names`` of each row's true class
    shares:  (K_true,) class shares; probs: (K_true, J, max_categories), 0 beyond an item
    """

    names: tuple[str, ...]
    classes: np.ndarray
    shares: np.ndarray
    probs: np.ndarray

    @classmethod
    def from_study(cls, study: Any, responses: ItemResponses) -> LCATruth | None:
        """From ``study.truth["local_practice"]`` (the synthetic study), or None."""
        truth = (getattr(study, "truth", None) or {}).get("local_practice")
        if not truth or "class_of_org" not in truth:
            return None
        names = tuple(truth.get("classes") or truth["class_shares"])
        index = {n: k for k, n in enumerate(names)}
        of_org = truth["class_of_org"]
        if any(o not in of_org for o in responses.orgs):
            return None
        probs = np.zeros((len(names), responses.n_item, responses.max_categories))
        table = truth.get("item_probabilities", {})
        for j, item in enumerate(responses.items):
            if item in table.get("degree_of_use", {}):
                for n, p in table["degree_of_use"][item].items():
                    probs[index[n], j, : len(p)] = p
            elif item in table.get("used", {}):
                for n, p in table["used"][item].items():
                    probs[index[n], j, :2] = [1.0 - p, p]
            else:
                return None
        return cls(names, np.array([index[of_org[o]] for o in responses.orgs]),
                   np.array([truth["class_shares"][n] for n in names], float), probs)

    def match(self, probs: np.ndarray, shares: np.ndarray) -> np.ndarray | None:
        """``perm`` with estimated class ``perm[t]`` matched to true class ``t`` (None if K differs)."""
        if len(shares) != len(self.shares):
            return None
        return relabel.match_classes(_features(probs[None, None], shares[None, None])[0, 0],
                                     _features(self.probs[None, None],
                                               self.shares[None, None])[0, 0])


class LatentClassModel(Model):
    """Bayesian latent class model; see the module docstring for the math."""

    name = "lca"

    def __init__(
        self,
        n_classes: int = 3,
        items: list[str] | None = None,
        covariates: list[str] | None = None,
        ordinal_emission: bool = False,
        class_share_alpha: float = 1.0,
        item_alpha: float = 1.0,
        covariate_sigma: float = 2.5,
        cutpoint_sigma: float = 3.0,
        location_sigma: float = 2.0,
        em_starts: int = 10,
        seed: int = 0,
        agreement_lp_tol: float = 2.0,
        agreement_profile_tol: float = 0.05,
        **_: Any,
    ) -> None:
        self.n_classes = n_classes
        self.items = None if items is None else list(items)
        self.covariates = list(covariates or [])
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
        self.seed = int(seed)
        self.agreement_lp_tol = agreement_lp_tol
        self.agreement_profile_tol = agreement_profile_tol

    # -- prepare -----------------------------------------------------------------------
    def responses_from(self, data: Any) -> ItemResponses:
        """ItemResponses from a Study, a TidyTable-like object (``.frame``) or itself."""
        if isinstance(data, ItemResponses):
            resp = data if self.items is None else data.select(self.items)
            return resp
        if hasattr(data, "local_practice"):
            resp = ItemResponses.from_study(data, self.items)
            if self.covariates:
                resp = _with_study_covariates(resp, data, self.covariates)
            return resp
        if hasattr(data, "frame"):
            frame = data.frame
            weights = getattr(data, "weights", None)
            if weights is not None and not isinstance(weights, str):
                weights = np.asarray(weights, float)
            levels = getattr(data, "levels", None)
            return ItemResponses.from_frame(
                frame,
                self.items,
                weights=weights,
                covariates=self.covariates,
                source=str(getattr(data, "source", getattr(data, "path", "data"))),
                levels=levels if isinstance(levels, dict) else None,
            )
        raise ConfigError(
            f"model=lca needs study data or a tidy CSV, got {type(data).__name__}"
        )

    def prepare(self, data: Any) -> PreparedLCA:
        resp = self.responses_from(data)
        check_n_classes(resp, self.n_classes)
        em = fit_em(resp, self.n_classes, seed=self.seed, n_init=self.em_starts)
        design = design_matrix(resp)
        names = () if design is None else ("Intercept", *map(str, resp.covariates.columns))
        ordinal = tuple(
            j for j, k in enumerate(resp.kinds) if self.ordinal_emission and k == "ordinal"
            and resp.n_categories[j] > 2
        )
        truth = LCATruth.from_study(data, resp) if hasattr(data, "local_practice") else None
        labels = ((getattr(data, "truth", None) or {}).get("local_practice") or {}).get(
            "item_labels")
        return PreparedLCA(resp, self.n_classes, design, names, em, ordinal, truth, labels)

    # -- build -------------------------------------------------------------------------
    def build(self, prepared: PreparedLCA) -> pm.Model:
        r, K, em = prepared.responses, prepared.n_classes, prepared.em
        cmax = r.max_categories
        coords: dict[str, Any] = {
            "class": prepared.class_labels,
            "item": list(r.items),
            "category": list(range(cmax)),
            "org": [str(o) for o in r.orgs],
        }
        free = [j for j in range(r.n_item) if j not in prepared.ordinal_items]
        groups: dict[int, list[int]] = {}
        for j in free:
            groups.setdefault(r.n_categories[j], []).append(j)
        single = len(groups) == 1 and not prepared.ordinal_items
        one_hot = r.one_hot()
        with pm.Model(coords=coords) as model:
            # class membership
            if prepared.design is None:
                if K == 1:
                    shares = pm.Deterministic("class_shares", pt.ones(1), dims="class")
                else:
                    shares = pm.Dirichlet(
                        "class_shares", a=np.full(K, self.class_share_alpha), dims="class")
                log_pi = pt.log(shares)[None, :]
            else:
                model.add_coord("coef", list(prepared.coef_names))
                model.add_coord("class_free", prepared.class_labels[1:])
                x = pt.as_tensor(prepared.design)
                if K == 1:
                    log_pi = pt.zeros((r.n_org, 1))
                    pm.Deterministic("class_shares", pt.ones(1), dims="class")
                else:
                    coefs = pm.Normal("class_coefs", 0.0, self.covariate_sigma,
                                      dims=("class_free", "coef"))
                    full = pt.concatenate([pt.zeros((1, x.shape[1])), coefs], axis=0)
                    pm.Deterministic("class_coefs_full", full, dims=("class", "coef"))
                    log_pi = pt.special.log_softmax(pt.dot(x, full.T), axis=1)
                    pm.Deterministic("class_shares", pt.exp(log_pi).mean(axis=0), dims="class")
            # item responses
            log_item = pt.zeros((r.n_org, K))
            padded = []  # (item indices, C_g, (K, J_g, C_g) tensor)
            for c, js in groups.items():
                name = "item_probs" if single else f"item_probs_C{c}"
                if not single:
                    model.add_coord(f"item_C{c}", [r.items[j] for j in js])
                    model.add_coord(f"category_C{c}", list(range(c)))
                dims = ("class", "item", "category") if single else (
                    "class", f"item_C{c}", f"category_C{c}")
                theta = pm.Dirichlet(
                    name, a=np.full((K, len(js), c), self.item_alpha), dims=dims)
                oh = one_hot[:, js, :c].reshape(r.n_org, -1)
                log_item = log_item + pt.dot(oh, pt.log(theta).reshape((K, -1)).T)
                padded.append((js, c, theta))
            if prepared.ordinal_items:
                js = list(prepared.ordinal_items)
                c = r.n_categories[js[0]]
                if any(r.n_categories[j] != c for j in js):
                    raise ConfigError("ordinal_emission needs the ordinal items to share a scale")
                model.add_coord("item_ordinal", [r.items[j] for j in js])
                model.add_coord("cutpoint", list(range(c - 1)))
                tau = pm.Normal("cutpoints", 0.0, self.cutpoint_sigma,
                                dims=("item_ordinal", "cutpoint"),
                                transform=pm.distributions.transforms.ordered)
                if K > 1:
                    # ZeroSumNormal sums to zero over its *last* axis: that must be the
                    # class (each item's class locations sum to zero), so the item comes first
                    loc = pm.ZeroSumNormal("class_location", sigma=self.location_sigma,
                                           dims=("item_ordinal", "class"))
                    eta = loc.T
                else:
                    eta = pt.zeros((1, len(js)))
                cdf = pm.math.sigmoid(tau[None] - eta[..., None])
                cdf = pt.concatenate([pt.zeros((K, len(js), 1)), cdf, pt.ones((K, len(js), 1))],
                                     axis=-1)
                theta = pt.clip(pt.diff(cdf, axis=-1), 1e-300, 1.0)
                oh = one_hot[:, js, :c].reshape(r.n_org, -1)
                log_item = log_item + pt.dot(oh, pt.log(theta).reshape((K, -1)).T)
                padded.append((js, c, theta))
            if not single:
                full = pt.zeros((K, r.n_item, cmax))
                for js, c, theta in padded:  # static sizes: JAX cannot slice by a shape
                    full = pt.set_subtensor(full[:, js, :c], theta)
                pm.Deterministic("item_probs", full, dims=("class", "item", "category"))
            ll = pt.logsumexp(log_pi + log_item, axis=1)
            pm.Potential("responses_loglik", pt.dot(pt.as_tensor(r.row_weights), ll))
        return model

    def initvals(self, prepared: PreparedLCA) -> dict[str, np.ndarray]:
        """Starting values for every chain: the EM solution (pass to ``pm.sample(initvals=)``).

        They are not attached to the PyMC variables (``initval=``) because PyMC cannot then
        convert the model to a graph (``compute_log_likelihood``, ``do``, ``observe`` fail).
        """
        r, em = prepared.responses, prepared.em
        probs = _interior(em.probs, r.n_categories)
        out: dict[str, np.ndarray] = {}
        K = prepared.n_classes
        if K > 1:
            if prepared.design is None:
                out["class_shares"] = _interior_simplex(em.shares)
            else:
                out["class_coefs"] = em.coefs[1:]
        free = [j for j in range(r.n_item) if j not in prepared.ordinal_items]
        groups: dict[int, list[int]] = {}
        for j in free:
            groups.setdefault(r.n_categories[j], []).append(j)
        single = len(groups) == 1 and not prepared.ordinal_items
        for c, js in groups.items():
            out["item_probs" if single else f"item_probs_C{c}"] = probs[:, js, :c]
        if prepared.ordinal_items:
            js = list(prepared.ordinal_items)
            c = r.n_categories[js[0]]
            tau0, eta0 = _ordinal_init(r.one_hot()[:, js, :c], em.posterior, r.row_weights)
            out["cutpoints"] = tau0
            if K > 1:
                out["class_location"] = eta0.T  # (item_ordinal, class)
        return out

    # -- after sampling ----------------------------------------------------------------
    def monitored(self, idata: xr.DataTree) -> list[str] | None:
        post = idata["posterior"]
        names = [n for n in post.data_vars
                 if n.startswith("item_probs_C") or n in ("class_coefs", "cutpoints",
                                                        "class_location")]
        if "item_probs" in post.data_vars and not any(n.startswith("item_probs_C") for n in names):
            names.append("item_probs")
        if self.n_classes > 1:
            names.insert(0, "class_shares")
        return names

    def effects(self) -> list[str]:
        return ["class_shares"] + (["class_coefs"] if self.covariates else [])

    def postprocess(self, idata: xr.DataTree, prepared: PreparedLCA) -> xr.DataTree:
        """Relabel every draw to the EM labelling; add log_likelihood and agreement."""
        post = idata["posterior"].to_dataset()
        K = prepared.n_classes
        if K > 1:
            feats = _features(post["item_probs"].values, post["class_shares"].values)
            ref = _features(prepared.em.probs[None, None], prepared.em.shares[None, None])[0, 0]
            perms = relabel.draw_permutations(feats, ref)
            post = relabel.relabel_dataset(post, perms)
            if "class_coefs_full" in post:
                full = post["class_coefs_full"]
                full = full - full.isel({"class": 0})
                post["class_coefs_full"] = full
                post["class_coefs"] = post["class_coefs"].copy(
                    data=full.isel({"class": slice(1, None)}).values)
            switched = relabel.n_switched(perms)
        else:
            switched = relabel.n_switched(np.zeros(post["class_shares"].shape, dtype=int))
        idata["posterior"] = post
        ll = self.pointwise_loglik(post, prepared)
        labels = [str(o) for o in prepared.responses.orgs]
        ll, labels = _units(ll, labels, prepared.responses.weights)
        idata["log_likelihood"] = xr.Dataset(
            {"responses": (("chain", "draw", "org"), ll)},
            coords={"chain": post["chain"], "draw": post["draw"], "org": labels},
        )
        agreement = self.chain_agreement(idata, prepared)
        agreement.update(switched)
        idata["posterior"].attrs["lca_chain_agreement"] = json.dumps(agreement)
        idata["posterior"].attrs["lca_mode"] = json.dumps(self.mode_loglik(idata, prepared))
        return idata

    def mode_loglik(self, idata: xr.DataTree, prepared: PreparedLCA) -> dict[str, Any]:
        """Weighted log likelihood at the posterior mode, and which point that is.

        * ``sampler=map``: the PyMC mode the run found;
        * free item probabilities (default): the EM (maximum likelihood) point, which is the
          posterior mode under the default flat Dirichlet priors;
        * ordinal emission: ``pm.find_MAP`` started from the draw with the highest log
          density (EM fits the unrestricted model, not this one).
        """
        r = prepared.responses
        if _mode_only(idata):
            point = idata["posterior"].isel(chain=[0], draw=[0])
            return {"loglik": float(r.row_weights @ self.pointwise_loglik(point, prepared)[0, 0]),
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
        model = self.build(prepared)
        start = {rv.name: np.asarray(flat[rv.name].isel(sample=best).values)
                 for rv in model.free_RVs}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mode = fit_map(model, self.seed, initvals=start)
        point = mode["posterior"].to_dataset()
        ll = float(r.row_weights @ self.pointwise_loglik(point, prepared)[0, 0])
        return {"loglik": ll, "at": "posterior mode (pm.find_MAP from the best draw)"}

    def n_parameters(self, prepared: PreparedLCA) -> int:
        """Free parameters: membership, free item probabilities, ordinal cutpoints and locations."""
        r, K = prepared.responses, prepared.n_classes
        p = 0 if prepared.design is None else prepared.design.shape[1] - 1
        n = (K - 1) * (1 + p)
        for j, c in enumerate(r.n_categories):
            n += (c - 1) + (K - 1) if j in prepared.ordinal_items else K * (c - 1)
        return n

    def diagnostics(self, idata: xr.DataTree, prepared: PreparedLCA) -> dict[str, Any]:
        """diagnostics.json: ``latent_classes`` (chain agreement, relabelling, entropy, ARI
        against the truth on simulated data) and ``log_likelihood`` (at the mode, AIC, BIC).

        The run machinery's own ``log_likelihood`` entry is empty for this model (its
        likelihood is a Potential), so the model's replaces it.
        """
        raw = idata["posterior"].attrs.get("lca_chain_agreement")
        agreement = json.loads(raw) if raw else self.chain_agreement(idata, prepared)
        agreement["em_loglik"] = prepared.em.loglik
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
                "at": fit["loglik_at"], "loglik": fit["loglik_mode"], "aic": fit["aic"],
                "bic": fit["bic"], "n_params": fit["n_params"], "n_obs": fit["n_units"],
            },
        }

    def pointwise_loglik(self, post: xr.Dataset, prepared: PreparedLCA) -> np.ndarray:
        """(chain, draw, org) unweighted row log likelihoods from the posterior draws."""
        n_chain, n_draw = post["class_shares"].shape[:2]
        out = np.empty((n_chain * n_draw, prepared.responses.n_org))
        for sl, joint in _draw_log_joint(post, prepared):
            out[sl] = logsumexp(joint, axis=2)
        return out.reshape(n_chain, n_draw, -1)

    def chain_agreement(self, idata: xr.DataTree, prepared: PreparedLCA) -> dict[str, Any]:
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
            lp_tol=self.agreement_lp_tol, profile_tol=self.agreement_profile_tol,
        )

    def class_membership(self, idata: xr.DataTree, prepared: PreparedLCA) -> pd.DataFrame:
        """Each organisation's posterior class probabilities (averaged over draws), modal class."""
        r = prepared.responses
        post = idata["posterior"]
        acc = np.zeros((r.n_org, prepared.n_classes))
        n = 0
        for sl, joint in _draw_log_joint(post, prepared):
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

    @staticmethod
    def truth_ari(membership: pd.DataFrame, prepared: PreparedLCA) -> float | None:
        """Adjusted Rand index of the modal classes against the true classes (simulations)."""
        if prepared.truth is None:
            return None
        from sklearn.metrics import adjusted_rand_score

        return float(adjusted_rand_score(prepared.truth.classes, membership["modal_class"]))

    def fit_statistics(self, prepared: PreparedLCA, membership: pd.DataFrame | None = None,
                       idata: xr.DataTree | None = None) -> dict[str, Any]:
        """Log likelihood at the mode, AIC, BIC (n = units, the sum of weights), entropy.

        The mode is the EM (maximum likelihood) point, which is the posterior mode under
        the default flat Dirichlet priors; a ``sampler=map`` run reports the PyMC mode
        itself. ``n_params`` counts free parameters (``K - 1`` shares (or ``(K - 1)(1 + P)``
        coefficients) + ``K * sum_j (C_j - 1)``).
        """
        em, r = prepared.em, prepared.responses
        post = em.posterior if membership is None else membership[
            [f"p_class_{k}" for k in prepared.class_labels]].to_numpy()
        loglik, at = em.loglik, "maximum likelihood (StepMix EM; the posterior mode under flat priors)"
        if idata is not None:
            raw = idata["posterior"].attrs.get("lca_mode")
            mode = json.loads(raw) if raw else self.mode_loglik(idata, prepared)
            loglik, at = mode["loglik"], mode["at"]
        k = self.n_parameters(prepared)
        return {
            "n_classes": prepared.n_classes,
            "n_rows": r.n_org,
            "n_units": r.n_total,
            "loglik_mode": loglik,
            "loglik_at": at,
            "n_params": k,
            "aic": -2 * loglik + 2 * k,
            "bic": -2 * loglik + k * np.log(r.n_total),
            "relative_entropy": relative_entropy(post, r.weights),
        }

    def truth_recovery(self, idata: xr.DataTree, prepared: PreparedLCA,
                       prob: float = 0.9) -> pd.DataFrame | None:
        """Each true class share and item probability beside its posterior ``prob`` interval.

        Classes are matched to the true ones (Hungarian, on posterior mean profiles and
        shares). Binary items list P(used = 1) only (P(0) is its complement). None unless
        the data are simulated with the same number of classes.
        """
        truth = prepared.truth
        if truth is None or len(truth.shares) != prepared.n_classes:
            return None
        post = idata["posterior"]
        p, sh = post["item_probs"], post["class_shares"]
        perm = truth.match(p.mean(("chain", "draw")).values, sh.mean(("chain", "draw")).values)
        lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2

        def stats(da):
            return (da.mean(("chain", "draw")).values, da.quantile(lo, ("chain", "draw")).values,
                    da.quantile(hi, ("chain", "draw")).values)

        (sm, sl, sh_), (pm_, pl, ph) = stats(sh), stats(p)
        rows = []
        for t, name in enumerate(truth.names):
            k = perm[t]
            rows.append(("class_share", name, prepared.class_labels[k], "", "", truth.shares[t],
                         sm[k], sl[k], sh_[k]))
            for j, item in enumerate(prepared.responses.items):
                n_cat = prepared.responses.n_categories[j]
                cats = [1] if n_cat == 2 else range(n_cat)
                for c in cats:
                    rows.append(("item_probability", name, prepared.class_labels[k], item,
                                 prepared.responses.category_labels[j][c], truth.probs[t, j, c],
                                 pm_[k, j, c], pl[k, j, c], ph[k, j, c]))
        pct = round(100 * prob)
        out = pd.DataFrame(rows, columns=["parameter", "true_class", "class", "item", "category",
                                          "truth", "mean", f"q{(100 - pct) // 2:02d}",
                                          f"q{100 - (100 - pct) // 2:02d}"])
        out["covered"] = (out["truth"] >= out.iloc[:, 7]) & (out["truth"] <= out.iloc[:, 8])
        return out

    def tables(self, idata: xr.DataTree, prepared: PreparedLCA) -> dict[str, pd.DataFrame]:
        post = idata["posterior"]
        r = prepared.responses
        shares = post["class_shares"]
        t_shares = pd.DataFrame({
            "class": prepared.class_labels,
            "mean": shares.mean(("chain", "draw")).values,
            "sd": shares.std(("chain", "draw")).values,
            "q03": shares.quantile(0.03, ("chain", "draw")).values,
            "q97": shares.quantile(0.97, ("chain", "draw")).values,
            "em": prepared.em.shares,
        })
        p = post["item_probs"]
        mean, sd = p.mean(("chain", "draw")).values, p.std(("chain", "draw")).values
        q03 = p.quantile(0.03, ("chain", "draw")).values
        q97 = p.quantile(0.97, ("chain", "draw")).values
        rows = []
        for k, cls in enumerate(prepared.class_labels):
            for j, item in enumerate(r.items):
                for c in range(r.n_categories[j]):
                    rows.append((cls, item, c, r.category_labels[j][c], mean[k, j, c],
                                 sd[k, j, c], q03[k, j, c], q97[k, j, c],
                                 prepared.em.probs[k, j, c]))
        t_prof = pd.DataFrame(rows, columns=["class", "item", "category", "label", "mean", "sd",
                                             "q03", "q97", "em"])
        membership = self.class_membership(idata, prepared)
        fit = self.fit_statistics(prepared, membership, idata)
        fit["chains_agree"] = self.chain_agreement(idata, prepared)["chains_agree"]
        ari = self.truth_ari(membership, prepared)
        if ari is not None:
            fit["ari_vs_truth"] = ari
        out = {"class_shares": t_shares, "item_profiles": t_prof,
               "class_membership": membership, "fit": pd.DataFrame([fit])}
        recovery = self.truth_recovery(idata, prepared)
        if recovery is not None:
            out["truth_recovery"] = recovery
        if "class_coefs" in post:
            cc = post["class_coefs"]
            out["class_coefs"] = (
                cc.mean(("chain", "draw")).to_dataframe("mean")
                .join(cc.std(("chain", "draw")).to_dataframe("sd")).reset_index()
            )
        return out

    def figures(self, idata: xr.DataTree, prepared: PreparedLCA, figdir: Path) -> dict[str, Path]:
        """``item_profiles.png`` (the study's Figure 2 by class) and ``class_membership.png``."""
        from models.lca.figures import class_membership_figure, item_profiles_figure

        figdir = Path(figdir)
        figdir.mkdir(parents=True, exist_ok=True)
        membership = self.class_membership(idata, prepared)
        return {
            "item_profiles": item_profiles_figure(idata, prepared, figdir / "item_profiles.png"),
            "class_membership": class_membership_figure(membership, prepared,
                                                        figdir / "class_membership.png"),
        }

    def report_section(self, idata: xr.DataTree, prepared: PreparedLCA) -> str:
        t = self.tables(idata, prepared)
        fit = t["fit"].iloc[0]
        agree = self.chain_agreement(idata, prepared)
        lines = [
            f"## Latent classes ({prepared.n_classes} classes, {prepared.responses.n_item} items,"
            f" {prepared.responses.n_org} rows)",
            "",
            "| class | share (mean) | 94% interval | EM |",
            "|---|---|---|---|",
        ]
        for row in t["class_shares"].to_dict("records"):
            lines.append(f"| {row['class']} | {row['mean']:.3f} | {row['q03']:.3f}-{row['q97']:.3f}"
                         f" | {row['em']:.3f} |")
        lines += [
            "",
            f"Log likelihood at the {fit['loglik_at']}: {fit['loglik_mode']:.3f}"
            f" ({fit['n_params']} parameters; AIC {fit['aic']:.2f}, BIC {fit['bic']:.2f},"
            f" n = {fit['n_units']:g}); relative entropy {fit['relative_entropy']:.3f}"
            " (1 = every organisation certain of its class).",
            "",
        ]
        if not _mode_only(idata):
            lines += [
                f"Chains agree after relabelling: **{'yes' if agree['chains_agree'] else 'NO'}**"
                f" (mean lp per chain {agree['chain_mean_lp']}, largest profile difference"
                f" {agree['max_profile_difference']}).",
                "",
            ]
        if "ari_vs_truth" in fit:
            lines += [f"Simulated data: the modal classes recover the true classes with"
                      f" adjusted Rand index **{fit['ari_vs_truth']:.3f}** (1 = identical"
                      " partitions, 0 = chance).", ""]
        rec = t.get("truth_recovery")
        if rec is not None:
            lines += [f"True values inside their 90% posterior intervals:"
                      f" {int(rec['covered'].sum())} of {len(rec)}"
                      f" ({100 * rec['covered'].mean():.0f}%; `tables/truth_recovery.csv`).", ""]
        lines += [
            "Each organisation's class probabilities and modal class: `tables/class_membership.csv`.",
            "",
            "![item profiles](figures/item_profiles.png)",
        ]
        return "\n".join(lines)


# -- helpers -------------------------------------------------------------------------------
MAX_LOO_UNITS = 20_000


def _units(ll: np.ndarray, labels: list[str], weights: np.ndarray | None):
    """Pointwise log likelihood per unit: a row with frequency weight w repeated w times.

    PSIS-LOO then leaves out one unit (one person), not a whole response pattern, and its
    elpd is on the scale of the weighted log likelihood. Beyond ``MAX_LOO_UNITS`` units the
    rows are kept as they are (LOO then leaves out patterns; see the module docstring).
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


def _mode_only(idata: xr.DataTree) -> bool:
    """A one-draw posterior (``sampler=map``)."""
    return idata["posterior"].sizes.get("draw", 0) < 4


def _draw_log_joint(post: xr.Dataset, prepared: PreparedLCA, chunk: int = 200):
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


def _interior(probs: np.ndarray, n_categories) -> np.ndarray:
    out = np.array(probs, float)
    for j, c in enumerate(n_categories):
        v = out[:, j, :c] + EPS
        out[:, j, :c] = v / v.sum(axis=-1, keepdims=True)
    return out


def _interior_simplex(p: np.ndarray) -> np.ndarray:
    v = np.asarray(p, float) + EPS
    return v / v.sum()


def _features(probs: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """(chain, draw, K, F) matching features: item profiles and class shares."""
    a = probs.reshape(probs.shape[:3] + (-1,))
    return np.concatenate([a, shares[..., None]], axis=-1)


def _ordinal_init(one_hot, post, weights):
    """Cutpoints from the marginal cumulative proportions; class locations from EM classes."""
    w = (weights[:, None, None] * one_hot).sum(axis=0) + 0.5  # (J, C)
    cum = np.cumsum(w, axis=1)[:, :-1] / w.sum(axis=1, keepdims=True)
    tau = np.log(cum / (1 - cum))
    eta = []
    for k in range(post.shape[1]):
        wk = ((weights * post[:, k])[:, None, None] * one_hot).sum(axis=0) + 0.5
        ck = np.cumsum(wk, axis=1)[:, :-1] / wk.sum(axis=1, keepdims=True)
        eta.append((tau - np.log(ck / (1 - ck))).mean(axis=1))
    eta = np.array(eta)
    return tau, eta - eta.mean(axis=0, keepdims=True)


def _with_study_covariates(resp: ItemResponses, study, names: list[str]) -> ItemResponses:
    """Attach per-organisation numeric covariates found in the study's tables."""
    cols = {}
    for name in names:
        for table in ("strategy", "organisations", "resources"):
            t = getattr(study, table, None)
            if t is not None and name in t.columns:
                vals = pd.to_numeric(t[name], errors="coerce")
                if vals.notna().sum() < t[name].notna().sum():
                    raise ConfigError(f"model.covariates: '{name}' in {table} is not numeric")
                cols[name] = vals.groupby(t["org"]).mean()  # years averaged
                break
        else:
            raise ConfigError(
                f"model.covariates: '{name}' is not a column of strategy, organisations or"
                " resources"
            )
    cov = pd.DataFrame({n: c.reindex(list(resp.orgs)).to_numpy() for n, c in cols.items()})
    keep = cov.notna().all(axis=1).to_numpy()
    if not keep.all():
        warnings.warn(f"{int((~keep).sum())} organisation(s) without covariates dropped",
                      stacklevel=2)
    return ItemResponses(
        orgs=tuple(o for o, k in zip(resp.orgs, keep, strict=True) if k),
        items=resp.items, codes=resp.codes[keep], n_categories=resp.n_categories,
        category_labels=resp.category_labels, kinds=resp.kinds,
        weights=None if resp.weights is None else resp.weights[keep],
        covariates=cov.loc[keep].reset_index(drop=True), source=resp.source,
    )


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

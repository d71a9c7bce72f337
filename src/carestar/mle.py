"""Maximum likelihood (``sampler=mle``): the likelihood alone, no prior, with standard errors.

For a regression (``model=ordinal`` or ``model=binomial``) this maximises the log likelihood
of the data, weights counted, with group effects integrated out (``carestar.marginal``:
adaptive Gauss-Hermite quadrature for one grouping factor with one coefficient, Laplace
otherwise), as ``MASS::polr``, ``ordinal::clm`` / ``clmm`` and ``lme4::glmer`` do, so the
estimates, standard errors, log likelihood, AIC and BIC can be put beside R's. (``sampler=map``
is the posterior mode: it includes the priors and is not the MLE.)

Parameters and optimisation
---------------------------
The optimiser works on well-scaled free parameters ``u``: the effects per SD of their
centred columns (``carestar.priors``), the family's location parameters at the average row
(the first cutpoint and the logs of the gaps between cutpoints, or the intercept), the
category-specific effects per SD of their columns (``carestar.category_specific``: each
row's thresholds; a cumulative model whose thresholds cross at a row of the data has
log likelihood ``-inf`` there), the year effects but the last (they sum to zero) and the log of each group SD. It runs BFGS
from the data's category shares, then Newton steps with a finite-difference Hessian.

Standard errors come from the observed information, ``-H^{-1}`` at the optimum, carried
to the reported parametrisation ``theta(u)`` (effects per unit of the user's columns,
cutpoints or intercept at ``x = 0``, every year effect, group SDs) by the delta method
``J H^{-1} J'``, ``J = d theta / d u``: exact for a reparametrisation at an optimum (the
gradient is zero there). A group SD at 0 (the boundary) has no SE.

AIC ``= -2 l + 2 k`` with ``k`` the free parameters (fixed effects, cutpoints, year effects,
variance components: lme4's and clm's count); BIC uses the sum of the frequency weights
(or the rows) as ``n``, as R does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy import optimize, stats

from carestar.category_specific import Thresholds, smallest_gap
from carestar.design import RegressionDesign
from carestar.errors import ConfigError
from carestar.marginal import GroupLayout, RowLikelihood, marginal_log_likelihood, method
from carestar.mode import information_criteria
from carestar.monotonic import MonotonicBlock
from carestar.priors import observation_counts
from carestar.priors import column_scaling

log = logging.getLogger("carestar")

SD_BOUNDARY = 1e-3  # a group SD below this (on the latent scale) is reported as at the boundary, 0


@dataclass(frozen=True)
class Family:
    """What a model's likelihood needs beyond the linear predictor ``eta`` of each row.

    names:      its own parameters (cutpoints, or the intercept), as reported
    start:      their starting values at the average row
    row_loglik: (eta (..., n), params (m,)) -> (..., n) unweighted log likelihoods
    row_derivatives: (eta (n,), params) -> (l, dl/deta, d2l/deta2), unweighted
    sign:       how they move from the average row to x = 0: cutpoints ``+ beta.m`` (+1),
                an intercept ``- beta.m`` (-1)
    ordered:    increasing parameters (cutpoints), optimised as the first and log gaps
    unused:     how many of the first parameters no row's likelihood uses (cutpoints below
                every row's regime floor, e.g. 0|1 when no rating year awarded 0 stars):
                held at -inf, neither estimated nor counted in AIC
    """

    names: tuple[str, ...]
    start: np.ndarray
    row_loglik: Callable[[np.ndarray, np.ndarray], np.ndarray]
    row_derivatives: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
    sign: int = 1
    ordered: bool = False
    unused: int = 0

    def full(self, location: np.ndarray) -> np.ndarray:
        """The estimated parameters (..., m) with the unused ones (-inf) in front."""
        location = np.asarray(location, float)
        return np.concatenate([np.full(location.shape[:-1] + (self.unused,), -np.inf), location], axis=-1)


@dataclass
class Problem:
    """The design and family as a function of the free parameters ``u``."""

    design: RegressionDesign
    family: Family
    nodes: int

    def __post_init__(self):
        self.scaling = column_scaling(self.design)
        self.Z = self.scaling.standardise(self.design.X)
        self.layout = GroupLayout.of(self.design)
        self.weights = np.ones(self.design.n) if self.design.weights is None else np.asarray(self.design.weights, float)
        self.p, self.m = len(self.design.effects), len(self.family.names) - self.family.unused
        self.periods = len(self.design.period.levels) if self.design.period is not None else 0
        self.mono = MonotonicBlock.of(self.design.monotonic, observation_counts(self.design))
        self.cs = Thresholds(self.design, self.m) if self.design.cs is not None else None
        self.q = self.cs.size if self.cs else 0
        self.size = self.p + self.m + self.q + max(self.periods - 1, 0) + self.layout.n_sd + self.mono.size
        self._modes: np.ndarray | None = None

    # -- u -> pieces ----------------------------------------------------------------------
    def unpack(self, u: np.ndarray) -> dict[str, np.ndarray]:
        at = 0
        per_sd = u[at:at + self.p]; at += self.p
        loc = u[at:at + self.m]; at += self.m
        if self.family.ordered and self.m:
            loc = np.cumsum(np.r_[loc[0], np.exp(loc[1:])])
        cs = u[at:at + self.q]; at += self.q
        tau = np.zeros(0)
        if self.periods:
            free = u[at:at + self.periods - 1]; at += self.periods - 1
            tau = np.r_[free, -free.sum()]
        sd = np.exp(u[at:at + self.layout.n_sd]); at += self.layout.n_sd
        return {"per_sd": per_sd, "location": loc, "cs": cs, "tau": tau, "sd": sd, "mono": self.mono.unpack(u[at:])}

    def pack(self, per_sd, location, tau, sd, cs=(), mono=()) -> np.ndarray:
        loc = np.asarray(location, float)
        if self.family.ordered and self.m:
            loc = np.r_[loc[0], np.log(np.diff(loc))]
        return np.r_[per_sd, loc, cs, np.asarray(tau, float)[:-1] if self.periods else [], np.log(sd),
                     mono if len(mono) else self.mono.pack()]

    def free(self, beta=(), location=(), tau=(), sd=(), beta_cs=(), mono=((), ())) -> np.ndarray:
        """``u`` from the reported parameters (per unit of the columns, at x = 0; ``mono``:
        the monotonic terms' ``b`` per step and simplices)."""
        beta = np.asarray(beta, float)
        mono_u = self.mono.pack(*mono)
        at_mean = np.asarray(location, float) - self.family.sign * (
            (beta @ self.scaling.mean if self.p else 0.0) + self.mono.shift(self.mono.unpack(mono_u)))
        cs = self.cs.per_sd(beta_cs) if self.cs else ()
        if self.cs:
            at_mean = at_mean - self.cs.shift(cs)
        return self.pack(beta * self.scaling.sd, at_mean, tau, sd, cs, mono_u)

    def reported(self, u: np.ndarray) -> dict[str, np.ndarray]:
        """The parameters as reported: per unit of the columns, at x = 0."""
        v = self.unpack(u)
        beta = v["per_sd"] / self.scaling.sd
        shift = beta @ self.scaling.mean + self.mono.shift(v["mono"])
        out = {"beta": beta, "location": v["location"] + self.family.sign * shift}
        if self.cs:
            out["location"] = out["location"] + self.cs.shift(v["cs"])
            out["beta_cs"] = self.cs.per_unit(v["cs"])
        if self.periods:
            out["tau"] = v["tau"]
        if self.layout.n_sd:
            out["sd"] = v["sd"]
        return out | self.mono.reported(v["mono"])

    def names(self) -> list[str]:
        out = [f"beta[{e}]" for e in self.design.effects] + list(self.family.names[self.family.unused:])
        out += self.cs.names(self.family.names[self.family.unused:]) if self.cs else []
        if self.periods:
            out += [f"{self.design.period.name}_effect[{lv}]" for lv in self.design.period.levels]
        out += [f"{g}_sd[{c}]" for g, coefs in zip(self.layout.names, self.layout.coefs) for c in coefs]
        return out + self.mono.names()

    # -- the likelihood -------------------------------------------------------------------
    def fixed_eta(self, v: dict[str, np.ndarray]) -> np.ndarray:
        eta = self.Z @ v["per_sd"] if self.p else np.zeros(self.design.n)
        if self.periods:
            eta = eta + v["tau"][self.design.period.codes]
        return eta + self.mono.centred_eta(v["mono"])

    def rows(self, location: np.ndarray) -> RowLikelihood:
        w, family = self.weights, self.family

        def derivatives(eta):
            return tuple(w * d for d in family.row_derivatives(eta, location))

        location = family.full(location)
        return RowLikelihood(lambda eta: w * family.row_loglik(eta, location), derivatives)

    def loglik(self, u: np.ndarray, keep_modes: bool = False) -> float:
        v = self.unpack(u)
        location = self.cs.rows(v["location"], v["cs"]) if self.cs else v["location"]
        if self.cs and self.family.ordered and smallest_gap(location) <= 0:
            return -np.inf  # a row's thresholds cross: outside the model (category_specific)
        f, eta0 = self.rows(location), self.fixed_eta(v)
        if not self.layout.names:
            value = float(f.loglik(eta0).sum())
        else:
            value, modes = marginal_log_likelihood(f, eta0, self.layout, v["sd"], self.nodes, self._modes)
            if keep_modes or self._modes is None:
                self._modes = modes
        return value if np.isfinite(value) else -np.inf

    def start(self) -> np.ndarray:
        return self.pack(np.zeros(self.p), self.family.start[self.family.unused:], np.zeros(self.periods),
                         np.full(self.layout.n_sd, 0.5), np.zeros(self.q), self.mono.pack())


def _hessian(f: Callable[[np.ndarray], float], u: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central finite-difference Hessian."""
    k = u.size
    H = np.zeros((k, k))
    f0 = f(u)
    for i in range(k):
        ei = np.zeros(k); ei[i] = step
        H[i, i] = (f(u + ei) - 2 * f0 + f(u - ei)) / step**2
        for j in range(i):
            ej = np.zeros(k); ej[j] = step
            H[i, j] = H[j, i] = (f(u + ei + ej) - f(u + ei - ej) - f(u - ei + ej) + f(u - ei - ej)) / (4 * step**2)
    return H


def _gradient(f: Callable[[np.ndarray], float], u: np.ndarray, step: float = 1e-5) -> np.ndarray:
    return np.array([(f(u + e) - f(u - e)) / (2 * step) for e in np.eye(u.size) * step])


def _jacobian(g: Callable[[np.ndarray], np.ndarray], u: np.ndarray, step: float = 1e-6) -> np.ndarray:
    return np.column_stack([(g(u + e) - g(u - e)) / (2 * step) for e in np.eye(u.size) * step])


@dataclass
class MLEFit:
    """The optimum, its standard errors and fit statistics."""

    problem: Problem
    u: np.ndarray
    loglik: float
    table: pd.DataFrame  # estimate, se, z, ci95_lb, ci95_ub per reported parameter
    kind: str
    converged: bool
    max_gradient: float
    modes: list[np.ndarray]

    def statistics(self) -> dict:
        p = self.problem
        n_obs = float(p.weights.sum())
        return {"at": "maximum likelihood estimate", "kind": self.kind, "converged": self.converged,
                "max_abs_gradient": self.max_gradient,
                **information_criteria(self.loglik, p.size, n_obs)}


def fit(design: RegressionDesign, family: Family, nodes: int = 25) -> MLEFit:
    """Maximise the (marginal) log likelihood of ``design``; see the module docstring."""
    with np.errstate(all="ignore"):  # trial points far out give -inf, which the optimiser handles
        return _fit(Problem(design, family, nodes))


def _fit(problem: Problem) -> MLEFit:
    nodes = problem.nodes
    objective = lambda u: -problem.loglik(u)  # noqa: E731
    result = optimize.minimize(objective, problem.start(), method="BFGS", options={"gtol": 1e-7, "maxiter": 2000})
    u = result.x
    for _ in range(4):  # Newton polish: BFGS with finite differences stops short of 1e-8
        grad = _gradient(lambda x: problem.loglik(x), u)
        if np.max(np.abs(grad)) < 1e-7:
            break
        H = _hessian(problem.loglik, u)
        try:
            step = np.linalg.solve(H, grad)
        except np.linalg.LinAlgError:
            break
        if problem.loglik(u - step) >= problem.loglik(u):
            u = u - step
        else:
            break
    loglik = problem.loglik(u, keep_modes=True)
    grad = _gradient(lambda x: problem.loglik(x), u)
    H = _hessian(problem.loglik, u)

    def flat(x):
        return np.concatenate(list(problem.reported(x).values()))

    estimate = flat(u)
    J = _jacobian(flat, u)
    try:
        cov = J @ np.linalg.inv(-H) @ J.T
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:
        se = np.full(estimate.size, np.nan)
    names = problem.names()
    boundary = [n for n, e in zip(names, estimate) if ("_sd[" in n or n.startswith("mo_simplex_")) and e < SD_BOUNDARY]
    for name in boundary:
        se[names.index(name)] = np.nan
        log.warning("mle: %s is at the boundary (0): %s; no SE", name,
                    "a step that adds nothing" if name.startswith("mo_") else "the group effects add nothing")
    z = estimate / se
    table = pd.DataFrame({
        "estimate": estimate, "se": se, "z": z,
        "ci95_lb": estimate - stats.norm.ppf(0.975) * se, "ci95_ub": estimate + stats.norm.ppf(0.975) * se,
    }, index=pd.Index(names, name="parameter"))
    converged = bool(np.max(np.abs(grad)) < 1e-4 and np.all(np.linalg.eigvalsh(H) < 0))
    if not converged:
        log.warning("mle: the optimum is not clean (max |gradient| %.2g); look for separation "
                    "or a parameter without information", np.max(np.abs(grad)))
    kind = method(problem.layout, nodes) if problem.layout.names else "the likelihood (no group effects)"
    modes = problem.layout.reshape(problem._modes) if problem.layout.names else []
    return MLEFit(problem, u, loglik, table, kind, converged, float(np.max(np.abs(grad))), modes)


def point_posterior(fit_: MLEFit, location_name: str, location_dim: str | None) -> xr.Dataset:
    """The estimate as a one-chain, one-draw posterior (what tables, figures and the
    predictive pass read): ``beta``, the location parameters, year effects, group SDs and the
    group effects at their conditional modes (``<g>_z``, ``<g>_effect``, as lme4's ``ranef``)."""
    p, rep = fit_.problem, fit_.problem.reported(fit_.u)
    design = p.design

    def var(values, dims=()):
        return (("chain", "draw", *dims), np.asarray(values, float)[None, None])

    data = {"beta": var(rep["beta"], ("effect",))}
    coords = {"chain": [0], "draw": [0], "effect": design.effects}
    if location_dim:
        data[location_name] = var(p.family.full(rep["location"]), (location_dim,))
        coords[location_dim] = [n[n.index("[") + 1:-1] for n in p.family.names]
    elif p.m:
        data[location_name] = var(rep["location"][0])
    if p.cs:
        data["beta_cs"] = var(rep["beta_cs"], ("cs_effect",))
        coords["cs_effect"] = [n[len("beta_cs["):-1] for n in p.cs.names(p.family.names)]
    if p.periods:
        data[f"{design.period.name}_effect"] = var(rep["tau"], (design.period.name,))
        coords[design.period.name] = list(design.period.levels)
    for name, coefs, levels, sd, z in zip(p.layout.names, p.layout.coefs, p.layout.levels,
                                          p.layout.split_sd(rep.get("sd", np.zeros(0))), fit_.modes):
        coords |= {name: list(levels), f"{name}_coef": list(coefs)}
        data[f"{name}_sd"] = var(sd, (f"{name}_coef",))
        data[f"{name}_z"] = var(z, (name, f"{name}_coef"))
        data[f"{name}_effect"] = var(z * sd, (name, f"{name}_coef"))
    mono_data, mono_coords = p.mono.posterior_variables(rep)
    return xr.Dataset(data | mono_data, coords=coords | mono_coords)


def check_supported(model) -> None:
    if not hasattr(model, "likelihood_family"):
        raise ConfigError(
            f"sampler=mle is for the regression models (model=ordinal, model=binomial); "
            f"model={model.name} has no plain likelihood to maximise: use sampler=map or a NUTS sampler"
        )


def maximum_likelihood(model, design: RegressionDesign, sampler: dict, seed: int) -> xr.DataTree:
    """``sampler=mle`` for a regression model: the estimate as a one-draw posterior, its
    per-row log likelihood (conditional on the group effects' modes) and predictive
    replicates from ``model.pointwise``, and the group ``maximum_likelihood`` (estimates,
    SEs and, in its attributes, the (marginal) log likelihood, AIC and BIC)."""
    check_supported(model)
    family, (location_name, location_dim) = model.likelihood_family(design)
    result = fit(design, family, nodes=int(sampler.get("quadrature_nodes", 25)))
    idata = xr.DataTree.from_dict({"posterior": point_posterior(result, location_name, location_dim)})
    groups = model.pointwise(idata, design, seed) or {}
    for group, dataset in groups.items():
        if group == "posterior_predictive" and not sampler.get("posterior_predictive", True):
            continue
        idata[group] = xr.DataTree(dataset)
    table = result.table
    idata["maximum_likelihood"] = xr.DataTree(xr.Dataset(
        {column: ("parameter", table[column].to_numpy()) for column in table.columns},
        coords={"parameter": list(table.index)},
        attrs={k: int(v) if isinstance(v, bool) else v for k, v in result.statistics().items()}))
    idata.attrs["inference"] = "maximum likelihood (carestar.mle: no prior)"
    return idata


def statistics(idata: xr.DataTree) -> dict | None:
    """The fit statistics of a ``sampler=mle`` run (None for other runs)."""
    if "maximum_likelihood" not in idata.children:
        return None
    stats_ = {k: (v.item() if hasattr(v, "item") else v) for k, v in idata["maximum_likelihood"].attrs.items()}
    return {**stats_, "converged": bool(stats_.get("converged", True))}


def summary(idata: xr.DataTree) -> pd.DataFrame:
    """``summary.csv`` of a ``sampler=mle`` run: estimate, SE, z and 95% Wald interval."""
    ds = idata["maximum_likelihood"].to_dataset()
    table = ds.to_dataframe()
    table.index.name = "parameter"
    return table


def marginal_at_posterior_mean(model, design: RegressionDesign, idata: xr.DataTree, nodes: int = 25) -> dict | None:
    """For a sampled hierarchical regression: the marginal log likelihood (group effects
    integrated out) at the posterior means of the fixed parameters and group SDs, with the
    AIC and BIC that count them as lme4 and clm do. None for other models."""
    if not hasattr(model, "likelihood_family") or not getattr(design, "groups", ()):
        return None
    family, (location_name, _) = model.likelihood_family(design)
    problem = Problem(design, family, nodes)
    post = idata.posterior
    mean = {name: np.atleast_1d(post[name].mean(("chain", "draw")).values)
            for name in ("beta", location_name, "beta_cs") if name in post}
    if location_name in mean:
        mean[location_name] = mean[location_name][family.unused:]
    tau = post[f"{design.period.name}_effect"].mean(("chain", "draw")).values if problem.periods else ()
    sd = np.concatenate([post[f"{name}_sd"].mean(("chain", "draw")).values for name in problem.layout.names])
    with np.errstate(all="ignore"):
        loglik = problem.loglik(problem.free(mean.get("beta", ()), mean.get(location_name, ()), tau, sd,
                                             mean.get("beta_cs", ()), problem.mono.posterior_mean(post)))
    return {"at": "posterior mean", "kind": method(problem.layout, nodes),
            **information_criteria(loglik, problem.size, float(problem.weights.sum()))}

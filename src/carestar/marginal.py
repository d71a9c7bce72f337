"""The log likelihood of a regression with its group effects integrated out (numpy).

A regression's rows have log likelihoods ``l_i(eta_i)`` (the family's, weighted by the
frequency weights ``w_i``) with ``eta_i = eta0_i + sum_t sum_j x_ij sd_tj z_{t,g_t[i],j}``:
``eta0`` the fixed part, ``z ~ N(0, 1)`` the standardised group effects of each group term
``t`` (``(1|g)``, ``(1 + x|g)``) and ``sd`` their SDs. The marginal likelihood is

    L = int prod_i exp(w_i l_i(eta_i)) prod N(z; 0, 1) dz,

what ``lme4::glmer`` and ``ordinal::clmm`` maximise, so that its AIC is comparable with theirs
(the likelihood *conditional* on estimated group effects is not).

- **One grouping factor with one coefficient** (``(1|herd)``): the integral factorises over
  groups, and each one-dimensional integral is computed by **adaptive Gauss-Hermite
  quadrature** (the nodes centred at each group's conditional mode and scaled by its
  curvature), as ``glmer(nAGQ = q)`` and ``clmm(nAGQ = q)`` do; exact to many digits with 25
  nodes.
- **Otherwise** (several factors, or varying slopes): the **Laplace approximation** over all
  group effects at once, ``log L ~ sum_i w_i l_i(z*) - |z*|^2 / 2 - log det(-H) / 2`` at the
  joint conditional mode ``z*``, with ``H = Z' diag(w l'') Z - I`` (lme4's default,
  ``nAGQ = 1``).

The family gives each row's log likelihood and its first two derivatives in ``eta``
(``RowLikelihood``; analytic: the Laplace value depends on ``l''`` directly, and rounding
noise in it would spoil the optimiser's finite differences).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from carestar.design import RegressionDesign



@dataclass(frozen=True)
class RowLikelihood:
    """Weighted row log likelihoods ``loglik(eta) -> (..., n)`` and
    ``derivatives(eta) -> (l, dl/deta, d2l/deta2)``, each (n,)."""

    loglik: Callable[[np.ndarray], np.ndarray]
    derivatives: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class GroupLayout:
    """The design's group terms as one vector of standardised effects ``z`` (length ``q``).

    ``columns[t]`` (n, coefs_t) are term t's row covariates (1 for an intercept),
    ``codes[t]`` (n,) its group of each row, ``sizes[t] = (groups_t, coefs_t)``.
    """

    names: tuple[str, ...]
    coefs: tuple[tuple[str, ...], ...]
    levels: tuple[tuple[str, ...], ...]
    codes: tuple[np.ndarray, ...]
    columns: tuple[np.ndarray, ...]

    @classmethod
    def of(cls, design: RegressionDesign) -> GroupLayout:
        names, coefs, levels, codes, columns = [], [], [], [], []
        for term in design.groups:
            names.append(term.group.name)
            coefs.append(tuple(term.coefficients))
            levels.append(tuple(term.group.levels))
            codes.append(np.asarray(term.group.codes, int))
            columns.append(term.columns())
        return cls(tuple(names), tuple(coefs), tuple(levels), tuple(codes), tuple(columns))

    @property
    def n_sd(self) -> int:
        return sum(len(c) for c in self.coefs)

    @property
    def quadrature(self) -> bool:
        """One grouping factor with one coefficient: adaptive Gauss-Hermite applies."""
        return len(self.names) == 1 and len(self.coefs[0]) == 1

    def split_sd(self, sd: np.ndarray) -> list[np.ndarray]:
        out, at = [], 0
        for c in self.coefs:
            out.append(np.asarray(sd[at:at + len(c)]))
            at += len(c)
        return out

    def design_matrix(self, sd: np.ndarray) -> np.ndarray:
        """``Z`` (n, q) with ``eta = eta0 + Z z``: SDs folded in, one column per group effect."""
        blocks = []
        for codes, columns, sds, lv in zip(self.codes, self.columns, self.split_sd(sd), self.levels):
            n, k = columns.shape
            block = np.zeros((n, len(lv), k))
            block[np.arange(n), codes, :] = columns * sds
            blocks.append(block.reshape(n, -1))
        return np.concatenate(blocks, axis=1)

    def reshape(self, z: np.ndarray) -> list[np.ndarray]:
        """The flat ``z`` as one (groups, coefs) array per term."""
        out, at = [], 0
        for lv, c in zip(self.levels, self.coefs):
            size = len(lv) * len(c)
            out.append(z[at:at + size].reshape(len(lv), len(c)))
            at += size
        return out


def _concave_newton(objective, step_of, z: np.ndarray, tol: float = 1e-11, max_iter: int = 100):
    """Maximise a concave objective by Newton steps, halving a step until it does not fall.

    ``objective(z)`` is one value per independent block (one per group for quadrature, a
    single one for Laplace); ``step_of(z) -> (step, hessian)``."""
    value = objective(z)
    for _ in range(max_iter):
        step, _ = step_of(z)
        scale = np.ones_like(value)
        for _ in range(30):
            trial = z - (scale if scale.size == z.size else scale[0]) * step
            new = objective(trial)
            worse = new < value - 1e-12 * (1 + np.abs(value))
            if not worse.any():
                break
            scale = np.where(worse, scale / 2, scale)
        z, value = trial, new
        if np.max(np.abs(step)) < tol:
            break
    return z, step_of(z)[1]


def agq(rows: RowLikelihood, eta0: np.ndarray, layout: GroupLayout, sd: np.ndarray, nodes: int,
        start: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Adaptive Gauss-Hermite quadrature, one grouping factor with one coefficient.

    Returns the marginal log likelihood and the conditional modes ``z*`` (groups,)."""
    codes, x = layout.codes[0], layout.columns[0][:, 0] * float(sd[0])
    G = len(layout.levels[0])

    def per_group(z):
        return np.bincount(codes, rows.loglik(eta0 + x * z[codes]), minlength=G) - 0.5 * z**2

    def newton_step(z):
        _, g, W = rows.derivatives(eta0 + x * z[codes])
        grad = np.bincount(codes, g * x, minlength=G) - z
        hess = np.bincount(codes, W * x * x, minlength=G) - 1.0
        hess = np.minimum(hess, -1e-8)
        return grad / hess, hess

    z = np.zeros(G) if start is None else np.asarray(start, float).copy()
    z, hess = _concave_newton(per_group, newton_step, z)
    t, w = np.polynomial.hermite.hermgauss(nodes)
    scale = np.sqrt(2.0 / -hess)  # (G,)
    znodes = z[None, :] + scale[None, :] * t[:, None]  # (nodes, G)
    at_nodes = rows.loglik(eta0[None, :] + x[None, :] * znodes[:, codes])  # (nodes, n)
    sums = np.stack([np.bincount(codes, r, minlength=G) for r in at_nodes])  # (nodes, G)
    h = sums - 0.5 * znodes**2 - 0.5 * np.log(2 * np.pi)
    log_groups = logsumexp(h + (np.log(w) + t**2)[:, None], axis=0) + np.log(scale)
    return float(log_groups.sum()), z


def laplace(rows: RowLikelihood, eta0: np.ndarray, layout: GroupLayout, sd: np.ndarray,
            start: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """The Laplace approximation over every group effect at once; returns the marginal log
    likelihood and the joint conditional mode ``z*`` (q,)."""
    Z = layout.design_matrix(sd)

    def total(z):
        return np.array([rows.loglik(eta0 + Z @ z).sum() - 0.5 * z @ z])

    def newton_step(z):
        _, g, W = rows.derivatives(eta0 + Z @ z)
        grad = Z.T @ g - z
        H = (Z * W[:, None]).T @ Z - np.eye(Z.shape[1])
        return np.linalg.solve(H, grad), H

    z = np.zeros(Z.shape[1]) if start is None else np.asarray(start, float).copy()
    z, H = _concave_newton(total, newton_step, z)
    sign, logdet = np.linalg.slogdet(-H)
    return float(total(z)[0] - 0.5 * logdet), z


def marginal_log_likelihood(rows: RowLikelihood, eta0: np.ndarray, layout: GroupLayout, sd: np.ndarray,
                            nodes: int = 25, start: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """The group effects integrated out: quadrature where it applies, else Laplace."""
    if layout.quadrature and nodes > 1:
        return agq(rows, eta0, layout, sd, nodes, start)
    return laplace(rows, eta0, layout, sd, start)


def method(layout: GroupLayout, nodes: int) -> str:
    """How ``marginal_log_likelihood`` integrates, in words (for reports)."""
    terms = ", ".join(f"({' + '.join(c)}|{n})" for n, c in zip(layout.names, layout.coefs))
    if layout.quadrature and nodes > 1:
        return f"marginal: group effects {terms} integrated out by adaptive Gauss-Hermite quadrature ({nodes} nodes)"
    return f"marginal: group effects {terms} integrated out by the Laplace approximation"

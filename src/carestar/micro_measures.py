r"""The synthetic study's micro-level measures (Figure 3), and their population prevalence.

Generating model (``conf/data/synthetic.yaml``, group ``micro_measures``)
-----------------------------------------------------------------------
Each measure ``m`` is of one ``kind`` (``national``: nationally required; ``internal``:
kept for internal management). For organisation ``i`` in country ``c_i`` (England or
Northern Ireland)::

    used_im ~ Bernoulli(logistic(alpha_m + [c_i = NI] delta_m + u_i))
    delta_m = country_difference[kind_m] + difference_sd * e_m,   e_m ~ N(0, 1)
    u_i ~ N(0, org_sd)

``alpha_m`` (``england_logit``) is measure m's logit in England at the average
organisation; ``delta_m`` its Northern Ireland - England difference, which depends on the
kind (Northern Ireland used more measures for internal management); ``u_i`` how much
organisation i measures overall.

The prevalence of measure m in country c is the share of a country's organisations that
use it, the organisation effect averaged out:
``P_mc = E_u[logistic(alpha_m + [c = NI] delta_m + u)]`` (``prevalence``: Gauss-Hermite
quadrature). The truth holds ``P_mc``, the differences ``P_m,NI - P_m,E`` and their mean
over the measures of each kind, the quantities ``model=country`` estimates.

The draws come from a random stream of their own (``stream``: the study's seed and
``MICRO_STREAM``), so the other tables of the study do not depend on this group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from carestar.errors import ConfigError

MICRO_STREAM = 13  # the issue that added this generator; any fixed number would do
KINDS = ("national", "internal")
COUNTRIES = ("England", "Northern Ireland")
QUADRATURE_NODES = 41


@dataclass(frozen=True)
class MicroParams:
    measures: dict[str, str]
    kind: dict[str, str]
    england_logit: dict[str, float]
    country_difference: dict[str, float]
    difference_sd: float
    org_sd: float

    def check(self) -> None:
        for name, per_measure in (("kind", self.kind), ("england_logit", self.england_logit)):
            if set(per_measure) != set(self.measures):
                raise ConfigError(f"data.micro_measures.{name} needs one value per measure "
                                  f"({', '.join(self.measures)})")
        if not set(self.kind.values()) <= set(self.country_difference):
            raise ConfigError("data.micro_measures.country_difference needs a value for every kind "
                              f"in data.micro_measures.kind ({', '.join(sorted(set(self.kind.values())))})")
        if self.difference_sd < 0 or self.org_sd < 0:
            raise ConfigError("data.micro_measures.difference_sd and org_sd must be >= 0")


def stream(seed: int) -> np.random.Generator:
    """The micro measures' own random generator for a study seed."""
    return np.random.default_rng([int(seed), MICRO_STREAM])


def prevalence(logit: np.ndarray, org_sd: np.ndarray | float, nodes: int = QUADRATURE_NODES) -> np.ndarray:
    """``E_u[logistic(logit + u)]``, ``u ~ N(0, org_sd)``, elementwise; ``org_sd`` broadcasts
    against ``logit`` (a draw's SD against its (country, measure) logits)."""
    x, w = np.polynomial.hermite_e.hermegauss(nodes)  # weight exp(-x^2 / 2)
    w = w / w.sum()
    shifted = np.asarray(logit, float)[..., None] + np.asarray(org_sd, float)[..., None] * x
    return expit(shifted) @ w


def draw_micro_measures(seed: int, organisations: pd.DataFrame, p: MicroParams
                        ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The ``micro_measures`` table (every org x measure) and its truth."""
    rng = stream(seed)
    measures = list(p.measures)
    kind = np.array([p.kind[m] for m in measures])
    alpha = np.array([p.england_logit[m] for m in measures])
    delta = np.array([p.country_difference[k] for k in kind]) + p.difference_sd * rng.normal(size=len(measures))
    ni = (organisations["country"].to_numpy() == "Northern Ireland").astype(float)
    org_effect = rng.normal(0.0, p.org_sd, size=len(organisations))
    logit = alpha[None, :] + ni[:, None] * delta[None, :] + org_effect[:, None]
    used = (rng.random(logit.shape) < expit(logit)).astype(int)
    table = pd.DataFrame({
        "org": np.repeat(organisations["org"].to_numpy(), len(measures)),
        "measure": np.tile(measures, len(organisations)),
        "used": pd.array(used.ravel(), dtype="Int64"),
    })
    return table, micro_truth(p, delta, dict(zip(organisations["org"], org_effect)))


def micro_truth(p: MicroParams, delta: np.ndarray, org_effect: dict[str, float]) -> dict[str, Any]:
    """What ``model=country`` should recover: per measure and per kind, on both scales."""
    measures = list(p.measures)
    alpha = np.array([p.england_logit[m] for m in measures])
    prev = prevalence(np.stack([alpha, alpha + delta]), p.org_sd)  # (country, measure)
    diff = prev[1] - prev[0]
    kinds = [k for k in KINDS if k in p.kind.values()] + sorted(set(p.kind.values()) - set(KINDS))
    return {
        "model": "P(used) = logistic(england_logit[m] + [NI] delta[m] + u_org), "
                 "delta[m] ~ N(country_difference[kind[m]], difference_sd), u_org ~ N(0, org_sd)",
        "england_logit": dict(p.england_logit),
        "kind": dict(p.kind),
        "country_difference": dict(p.country_difference),
        "difference_sd": float(p.difference_sd),
        "org_sd": float(p.org_sd),
        "measure_difference_logit": {m: float(d) for m, d in zip(measures, delta)},
        "prevalence": {c: {m: float(v) for m, v in zip(measures, prev[j])} for j, c in enumerate(COUNTRIES)},
        "difference_by_measure": {m: float(d) for m, d in zip(measures, diff)},
        "difference_by_kind": {k: float(np.mean([d for m, d in zip(measures, diff) if p.kind[m] == k]))
                               for k in kinds},
        "org_effects": {o: float(v) for o, v in org_effect.items()},
        "measure_labels": dict(p.measures),
    }

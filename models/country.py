r"""Micro-level measures by country: a hierarchical logistic model (the poster's Figure 3).

``python run.py model=country`` (the study's ``micro_measures`` table, England vs Northern
Ireland), or any tidy table of one row per organisation and measure:
``python run.py data=csv data.path=mine.csv model=country
'model.formula="used ~ country + (1 + country | measure) + (1 | org)"'``.

Math
----
For organisation ``i`` in country ``c_i`` and measure ``m`` of kind ``k_m`` (``national``:
nationally required, ``internal``: kept for internal management), with the default formula
``used ~ country * kind + (1 + country | measure) + (1 | org)``::

    used_im ~ Bernoulli(p_im),   logit(p_im) = eta_cm + u_i,     c = c_i
    eta_cm  = alpha + beta_NI [c = NI] + beta_k [k_m = internal] + beta_NIk [c = NI][k_m = internal]
              + a_m + d_m [c = NI]
    a_m = sd_a z_am,  d_m = sd_d z_dm,  u_i = sd_u z_i,   z ~ N(0, 1)

- ``a_m``: measure m's deviation from its kind's England level, partially pooled over the
  measures (dim ``measure``, ``measure_coef = [Intercept, countryNorthern Ireland]``);
  ``d_m``: its Northern Ireland - England difference's deviation from its kind's, partially
  pooled too, so five Northern Ireland trusts borrow strength across the measures instead of
  giving ten unstable proportions; ``u_i``: how much organisation i measures overall
  (dim ``org``). The country difference of kind k on the logit scale is ``beta_NI`` (+
  ``beta_NIk`` for internal measures).
- Named dims: ``org`` and ``measure`` (the group terms, with ``org_coef`` / ``measure_coef``),
  ``country`` (the posterior's ``prevalence``, dims ``country``, ``measure``), ``effect``.
- The likelihood, priors and non-centring are ``model=binomial``'s (``models/binomial.py``:
  ``beta_j ~ Normal(0, 2.5 / sd_j)`` per SD of each column, intercept ``Normal(0, 2.5)`` at
  the average row, group SDs ``HalfNormal(1)``), except that the SD of a 0/1 slope such
  as ``d_m`` has its prior per unit, on the logit difference (``sd_d ~ HalfNormal(1)``, not
  ``HalfNormal(1 / sd of the country column)``: with 5 trusts among 155 organisations that
  would be ``HalfNormal(5.7)``, ten-fold spreads between measures' differences). This module
  builds the table, the country dims and the quantities below.

Prevalence and differences (what ``tables/country_differences.csv`` and Figure 3 report)
--------------------------------------------------------------------------------------
The prevalence of measure m in country c is the share of that country's organisations that
use it, the organisation effect integrated out (``carestar.micro_measures.prevalence``,
Gauss-Hermite, the definition of the synthetic truth)::

    P_cm = mean over the rows r of cell (c, m) of  E_u[logistic(eta_r + u)],  u ~ N(0, sd_u)

(one value per cell unless a user's formula has row-level covariates), per posterior draw.
The difference of measure m is ``P_NI,m - P_E,m``; of kind k, its mean over the measures of
kind k. Each is reported with its posterior mean, 90% interval and ``P(NI > England)``.

Figure 4 (``model.figure4=true``, ``experiment=figure4``): the study's ``country_comparison``
table of England, Northern Ireland and Japan (documentary evidence; Japan had no survey)
beside, per kind k, each country's share ``S_ck = mean over m of kind k of P_cm`` and the
difference ``S_NI,k - S_E,k`` (``models/country_figure4.py``, ``tables/figure4_estimates.csv``,
``tables/figure4_countries.md``). ``data=csv`` has no such table and is refused.

PSIS-LOO over organisations
---------------------------
An organisation's rows are one LOO unit, its intercept integrated out (as
``models/joint/likelihood.py`` does): ``log sum_q w_q prod_m p(used_im | eta_cm + sd_u x_q)``
over ``GH_NODES`` Gauss-Hermite nodes ``x_q``, so leaving an organisation out means
predicting a new organisation of its country.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from scipy.special import logsumexp

from carestar.design import Factor, RegressionDesign
from carestar.errors import ConfigError, DataError
from carestar.likelihood import linear_predictor_draws
from carestar.study import Study
from carestar.tidy_csv import TidyTable
from models.binomial import BinomialModel, row_log_likelihood
from models import country_summaries

DEFAULT_FORMULA = "used ~ country * kind + (1 + country | measure) + (1 | org)"
COUNTRIES = ("England", "Northern Ireland")
KINDS = ("national", "internal")
GH_NODES = 21  # Gauss-Hermite nodes over the organisation intercept (LOO units)
NEEDED = ("org", "measure", "country")


@dataclass(frozen=True)
class CountryDesign(RegressionDesign):
    """The binomial design plus who each row is: organisation, measure, country, and the
    measures' kinds and labels (``None`` where unknown)."""

    org: Factor | None = None
    measure: Factor | None = None
    country: Factor | None = None
    kind_of_measure: tuple[str, ...] | None = None  # per level of ``measure``
    labels: dict[str, str] | None = None
    truth: dict[str, Any] | None = None  # the synthetic study's micro_measures truth
    comparison: pd.DataFrame | None = None  # the study's country_comparison (Figure 4); None for a CSV


class CountryModel(BinomialModel):
    """Hierarchical logistic model of measure use by country; math in the module docstring."""

    name = "country"

    def __init__(self, formula: str = DEFAULT_FORMULA, kinds: dict[str, str] | None = None,
                 labels: dict[str, str] | None = None,
                 priors: dict[str, dict[str, float]] | None = None, figure4: bool = False) -> None:
        super().__init__(formula or DEFAULT_FORMULA, priors)
        if not isinstance(figure4, bool):
            raise ConfigError(f"model.figure4 must be true or false; got {figure4!r}")
        self.figure4 = figure4
        if kinds is not None and not isinstance(kinds, dict):
            raise ConfigError(f"model.kinds must map each measure to its kind, e.g. "
                              f"'model.kinds={{staff_turnover: internal}}'; got {kinds!r}")
        self.kinds = None if kinds is None else {str(m): str(k) for m, k in kinds.items()}
        self.labels = None if labels is None else {str(m): str(v) for m, v in labels.items()}

    # -- data -> design -------------------------------------------------------------
    def prepare(self, data: Any) -> CountryDesign:
        if isinstance(data, CountryDesign):
            return data
        if isinstance(data, Study):
            table, truth = self._study_table(data), (data.truth or {}).get("micro_measures")
        elif isinstance(data, TidyTable):
            if self.figure4:
                raise ConfigError("model.figure4=true draws the study's country_comparison table (Figure 4), "
                                  f"which data=csv ({data.path}) does not have: use data=synthetic or "
                                  "data=study, or set model.figure4=false")
            table, truth = data, None
        else:
            raise ConfigError(f"model=country needs data=synthetic, data=study or data=csv; got {type(data).__name__}")
        _check_columns(table)
        design = super().prepare(table)
        rows = table.frame.iloc[np.asarray(design.rows["line"]) - 2].reset_index(drop=True)
        factors = {name: _factor(table, rows, name) for name in NEEDED}
        if len(factors["country"].levels) != 2:
            raise DataError(f"model=country compares two countries; the table has {list(factors['country'].levels)}",
                            file=str(table.path), column="country",
                            expected="two countries (the first is the reference)")
        _check_org_term(design)
        labels = self.labels or (truth or {}).get("measure_labels") or {}
        return CountryDesign(**{f: getattr(design, f) for f in RegressionDesign.__dataclass_fields__},
                             org=factors["org"], measure=factors["measure"], country=factors["country"],
                             kind_of_measure=_kind_of_measure(table, rows, factors["measure"]),
                             labels={m: labels.get(m, m.replace("_", " ")) for m in factors["measure"].levels},
                             truth=truth, comparison=data.country_comparison if isinstance(data, Study) else None)

    def _study_table(self, study: Study) -> TidyTable:
        """The study's micro_measures rows (file order) with each organisation's country and
        each measure's kind (``model.kinds``)."""
        frame = study.micro_measures.merge(study.organisations[["org", "country"]], on="org", how="left",
                                           validate="many_to_one")
        frame["used"] = frame["used"].astype(float)
        other = sorted(set(frame["country"]) - set(COUNTRIES))
        if other:
            lines = (np.flatnonzero(frame["country"].isin(other)) + 2).tolist()
            raise DataError(f"model=country compares England and Northern Ireland; micro_measures has "
                            f"organisations of {other}", file="micro_measures.csv", column="org", rows=lines,
                            expected="organisations of England or Northern Ireland")
        measures = list(dict.fromkeys(frame["measure"]))
        levels: dict[str, list[str]] = {"country": list(COUNTRIES), "measure": measures}
        if self.kinds is not None:
            unknown = [m for m in measures if m not in self.kinds]
            if unknown:
                raise ConfigError(f"model.kinds gives no kind for the measure(s) {unknown} of micro_measures.csv; "
                                  "give every measure a kind, or set model.kinds=null and a formula without kind")
            frame["kind"] = frame["measure"].map(self.kinds)
            levels["kind"] = [k for k in KINDS if k in set(frame["kind"])] + sorted(set(frame["kind"]) - set(KINDS))
        elif "kind" in self.formula:
            raise ConfigError("the formula uses the measures' kind but model.kinds is null (data=study has no kind "
                              "column): give 'model.kinds={measure_name: national, ...}', or a formula without "
                              "kind, e.g. 'model.formula=\"used ~ country + (1 + country | measure) + (1 | org)\"'")
        return TidyTable(frame=frame, path=Path("micro_measures.csv"), levels=levels,
                         source=study.source, data_hash=study.data_hash, name="micro_measures")

    def slope_scales(self, term, design: RegressionDesign) -> np.ndarray:
        """A 0/1 slope (a country indicator) gets its SD prior per unit, on the logit
        difference itself: ``HalfNormal(priors.group_sd.sigma)``; other slopes per SD of their
        column, as ``model=binomial``."""
        scales = super().slope_scales(term, design)
        if term.slopes is None:
            return scales
        start = 1 if term.intercept else 0
        for j, column in enumerate(term.slopes.columns):
            if set(np.unique(term.slopes[column].to_numpy(float))) <= {0.0, 1.0}:
                scales[start + j] = 1.0
        return scales

    # -- after sampling -------------------------------------------------------------
    def pointwise(self, idata: xr.DataTree, design: CountryDesign, seed: int) -> dict[str, xr.Dataset] | None:
        """Posterior predictive draws as ``model=binomial``'s (each row given its fitted
        effects); the log likelihood per organisation, its intercept integrated out (module
        docstring), for PSIS-LOO over organisations."""
        groups = super().pointwise(idata, design, seed)
        post = idata.posterior
        unit = org_log_likelihood(post, design)
        coords = {"chain": post["chain"].values, "draw": post["draw"].values, "org": list(design.org.levels)}
        groups["log_likelihood"] = xr.Dataset({design.outcome: (("chain", "draw", "org"), unit)}, coords=coords)
        return groups

    def postprocess(self, idata: xr.DataTree, design: CountryDesign) -> xr.DataTree:
        """The prevalence draws (dims ``country``, ``measure``) joined to the posterior, so
        ``posterior.nc`` has them and the gates check their convergence."""
        post = idata["posterior"].to_dataset()
        post["prevalence"] = country_summaries.prevalence_draws(post, design)["prevalence"]
        idata["posterior"] = post
        return idata

    def observation_labels(self, design: CountryDesign) -> list[str]:
        return [f"org {o}" for o in design.org.levels]

    def tables(self, idata: xr.DataTree, design: CountryDesign) -> dict[str, pd.DataFrame]:
        draws = country_summaries.prevalence_draws(idata.posterior, design)
        tables = {**super().tables(idata, design),
                  "country_differences": country_summaries.difference_table(draws, design),
                  "country_prevalence": country_summaries.prevalence_table(draws, design)}
        if self.figure4:
            from models.country_figure4 import markdown, surveyed

            estimates = country_summaries.kind_estimates(draws, design)
            tables["figure4_estimates"] = estimates
            tables["figure4_countries"] = markdown(design.comparison, estimates, surveyed(design))
        return tables

    def figures(self, idata: xr.DataTree, design: CountryDesign) -> dict[str, Figure]:
        from models.country_figures import figure3

        draws = country_summaries.prevalence_draws(idata.posterior, design)
        figures = {**super().figures(idata, design), "figure3_micro_measures": figure3(draws, design)}
        if self.figure4:
            from models.country_figure4 import figure4, surveyed

            figures["figure4_countries"] = figure4(design.comparison, country_summaries.kind_estimates(draws, design),
                                                   surveyed(design))
        return figures

    def diagnostics(self, idata: xr.DataTree, design: CountryDesign) -> dict[str, Any]:
        if design.truth is None:
            return {}
        draws = country_summaries.prevalence_draws(idata.posterior, design)
        return {"truth_recovery": country_summaries.recovery(draws, design)}

    def report_section(self, idata: xr.DataTree, design: CountryDesign) -> str:
        draws = country_summaries.prevalence_draws(idata.posterior, design)
        return super().report_section(idata, design) + "\n" + country_summaries.report_section(draws, design)


def _check_columns(table: TidyTable) -> None:
    missing = [c for c in NEEDED if c not in table.columns]
    if missing:
        raise DataError(f"model=country needs the column(s) {missing}", file=str(table.path), column=missing[0],
                        expected="one row per organisation and measure with columns org, measure, country "
                                 "and the outcome (0/1)")


def _factor(table: TidyTable, rows: pd.DataFrame, name: str) -> Factor:
    values = rows[name].astype(str)
    order = [str(v) for v in table.levels.get(name, [])]
    levels = [v for v in order if v in set(values)] + [v for v in dict.fromkeys(values) if v not in order]
    return Factor(name, tuple(levels), pd.Categorical(values, categories=levels).codes.astype(int))


def _kind_of_measure(table: TidyTable, rows: pd.DataFrame, measure: Factor) -> tuple[str, ...] | None:
    """Each measure's kind from the ``kind`` column (one kind per measure), or None."""
    if "kind" not in rows:
        return None
    kinds = rows.groupby(measure.codes)["kind"].unique()
    mixed = [measure.levels[i] for i, k in kinds.items() if len(k) != 1]
    if mixed:
        lines = (np.flatnonzero(rows["measure"].astype(str).isin(mixed)) + 2).tolist()
        raise DataError(f"the measure(s) {mixed} have more than one kind", file=str(table.path), column="kind",
                        rows=lines, expected="one kind per measure")
    return tuple(str(kinds[i][0]) for i in range(len(measure.levels)))


def _check_org_term(design: RegressionDesign) -> None:
    for term in design.groups:
        if term.group.name == "org" and (not term.intercept or term.slopes is not None):
            raise ConfigError("model=country integrates the organisation intercept out for LOO: the formula's "
                              f"organisation term must be (1 | org), not ({term.label})")


def without_org(design: RegressionDesign) -> RegressionDesign:
    """The design without its ``(1 | org)`` term: the linear predictor of an average organisation."""
    return replace(design, groups=tuple(t for t in design.groups if t.group.name != "org"))


def org_sd_draws(post: xr.Dataset) -> np.ndarray:
    """(chain, draw) SD of the organisation intercepts (0 without an org term)."""
    if "org_sd" not in post:
        return np.zeros((post.sizes["chain"], post.sizes["draw"]))
    return post["org_sd"].values[..., 0]


def org_log_likelihood(post: xr.Dataset, design: CountryDesign, nodes: int = GH_NODES,
                       chunk: int = 250) -> np.ndarray:
    """(chain, draw, org): each organisation's rows' log likelihood, its intercept integrated
    out by Gauss-Hermite quadrature (weights counted)."""
    eta = linear_predictor_draws(post, without_org(design))
    sd = org_sd_draws(post)
    x, w = np.polynomial.hermite_e.hermegauss(nodes)  # weight exp(-x^2 / 2)
    log_w = np.log(w / w.sum())
    n = np.ones(design.n) if design.trials is None else np.asarray(design.trials, float)
    weights = np.ones(design.n) if design.weights is None else np.asarray(design.weights, float)
    onehot = np.zeros((design.n, len(design.org.levels)))
    onehot[np.arange(design.n), design.org.codes] = weights
    c, d = sd.shape
    flat_eta, flat_sd = eta.reshape(c * d, -1), sd.reshape(c * d)
    out = np.empty((c * d, len(design.org.levels)))
    for start in range(0, c * d, chunk):
        e = flat_eta[start:start + chunk, :, None] + flat_sd[start:start + chunk, None, None] * x
        ll = row_log_likelihood(e, np.asarray(design.y)[None, :, None], n[None, :, None])  # (s, n, q)
        per_org = np.einsum("snq,no->soq", ll, onehot)
        out[start:start + chunk] = logsumexp(per_org + log_w, axis=-1)
    return out.reshape(c, d, -1)

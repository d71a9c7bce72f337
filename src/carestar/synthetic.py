r"""The synthetic study: the tables of DESIGN.md section 3 drawn from known parameters.

``load_synthetic(**cfg)`` is what ``data=synthetic`` instantiates
(``conf/data/synthetic.yaml`` holds every generating parameter); it returns a
``carestar.study.Study`` whose ``truth`` (JSON-serialisable, saved beside the data by
``carestar.study_files.write_study``) holds what the models should recover.

Generating model
----------------
Organisations: 150 English councils (ids ``E001``..``E150``) with fixed counts per
(org_type, region), and the Northern Ireland HSC trusts (``N01``..). For each
organisation ``i`` (England and Northern Ireland):

* strategy type ``s_i ~ Categorical(type_shares)``;
  latent stance scores ``theta_{i,k} = boost * [s_i = k] + N(0, 1)`` for the four stances
  ``k``; Likert item ``j`` of stance ``k`` (1-7) by an ordered logit
  ``P(Y_{ikj} <= m) = logistic(tau_{j,m} - lambda_j * theta_{i,k})``, ``m = 1..6``;
* latent practice class ``c_i ~ Categorical(class_shares)`` (low / medium / high use);
  degree-of-use item ``d`` (0-5): ``P(Y <= m) = logistic(kappa_m - (mu_c + delta_d))``;
  process item ``p`` (0/1): ``Y ~ Bernoulli(pi_{c,p})``; each response is then missing
  (row absent) with probability ``missing_rate``;
* micro-level measure ``m`` used (nationally required or internal-management measures, a
  country difference by kind, organisation intercepts): ``carestar.micro_measures``, drawn
  from a random stream of its own.

English councils only, years ``t`` = 2002..2008:

* resources ``x_{it} = (spend_per_head, deprivation, older_share)``: an organisation level
  ``x_i ~ N(mean_{type_i}, Sigma)`` (``Sigma`` from ``org_sd`` and ``correlation``), plus a
  drift ``g * (t - 2002)`` (spend grows by a fraction per year, older_share by points per
  year) and small year noise; rounded as published;
* ``z_{r,it} = (x_{r,it} - mean_r) / sd_r``, mean and SD (ddof=1) over all England rows;
* latent rating score
  ``eta_it = beta_strategy[s_i] + sum_r beta_r z_{r,it} + beta_class[c_i] + u_i + y_t``,
  ``sum_t y_t = 0``, with the council effect ``u_i = v_{region_i} + w_i`` split into a
  region effect ``v_r ~ N(0, region_sd)`` (one per English region) and a within-region
  effect ``w_i ~ N(0, sqrt(org_sd^2 - region_sd^2))``: the total between-council SD stays
  ``org_sd`` whatever ``region_sd`` is (so the calibration below holds), and
  ``region_sd > org_sd`` is refused. The region effects come from a random stream of their
  own (``region_stream``, drawn in sorted region order), so with ``region_sd = 0`` every
  table is what it was before region effects existed. Northern Ireland trusts (region
  ``Northern Ireland``, no English region) are not rated, so they get no region effect;
  the truth lists the English regions only;
* ``stars_it = #{k : c_k < eta_it + e_it}``, ``e_it ~ Logistic(0, 1)``, three shared
  cutpoints ``c_1 < c_2 < c_3``, i.e. ``P(stars <= k) = logistic(c_{k+1} - eta)``; then
  ``stars_it = max(stars_it, lowest_t)`` (no council got 0 stars from 2006);
* the two judgements (serving_people, capacity) drawn uniformly from the pairs that give
  ``stars_it`` in ``JUDGEMENT_STARS``.

The cutpoints and year effects in the yaml come from ``carestar.calibration`` so that the
expected star counts per year match the published counts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import product
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from carestar.errors import ConfigError
from carestar.micro_measures import MicroParams, draw_micro_measures
from carestar.schemas import (
    CAPACITY,
    ITEMS_PER_STANCE,
    SERVING_PEOPLE,
    STANCE_ITEMS,
    STRATEGY_TYPES,
)
from carestar.study import Study

RESOURCES = ("spend_per_head", "deprivation", "older_share")
REGION_STREAM = 7  # the region effects' own random stream: np.random.default_rng([seed, REGION_STREAM])
RESOURCE_DECIMALS = {"spend_per_head": 1, "deprivation": 2, "older_share": 2}

#: star level given by each (serving_people, capacity) pair; a synthetic rule modelled on
#: the published rating table: both judgements high -> 3 stars, either one low -> 0 or 1.
JUDGEMENT_STARS: dict[tuple[str, str], int] = {
    ("yes", "excellent"): 3,
    ("yes", "promising"): 3,
    ("most", "excellent"): 3,
    ("yes", "uncertain"): 2,
    ("most", "promising"): 2,
    ("most", "uncertain"): 2,
    ("some", "excellent"): 2,
    ("some", "promising"): 2,
    ("yes", "poor"): 1,
    ("most", "poor"): 1,
    ("some", "uncertain"): 1,
    ("some", "poor"): 1,
    ("no", "excellent"): 1,
    ("no", "promising"): 1,
    ("no", "uncertain"): 0,
    ("no", "poor"): 0,
}
assert set(JUDGEMENT_STARS) == set(product(SERVING_PEOPLE, CAPACITY))

#: Figure 4: performance measurement in the three countries (DESIGN.md section 1)
COUNTRY_COMPARISON = pd.DataFrame(
    [
        ("national ratings", "annual star ratings 0-3 of every council", "none published",
         "none"),
        ("direction", "top-down, set by the national inspectorate",
         "mixed: regional targets, local trust measures", "bottom-up from municipalities"),
        ("unit measured", "council (organisation)", "HSC trust (organisation)",
         "individual service user"),
        ("local measures", "many bespoke measures beside national indicators",
         "more micro-level measures used for internal management",
         "user-level long-term-care data"),
        ("data collection", "statutory returns to central government",
         "trust information systems", "bespoke software tool in each municipality"),
        ("use of results", "public league tables and inspection",
         "internal management and commissioning", "care planning and insurance management"),
    ],
    columns=["dimension", "England", "Northern Ireland", "Japan"],
)


@dataclass(frozen=True)
class RatingParams:
    years: list[int]
    cutpoints: list[float]
    year_effects: dict[int, float]
    lowest_stars_by_year: dict[int, int]
    strategy_effects: dict[str, float]
    resource_effects_per_sd: dict[str, float]
    class_effects: dict[str, float]
    org_sd: float
    region_sd: float = 0.0  # the part of org_sd that lies between regions (module docstring)

    @property
    def within_region_sd(self) -> float:
        """SD of the council effects within a region: ``sqrt(org_sd^2 - region_sd^2)``."""
        if self.region_sd == 0:
            return self.org_sd  # exactly, so that region_sd = 0 draws today's effects
        return math.sqrt(self.org_sd**2 - self.region_sd**2)


@dataclass(frozen=True)
class ResourceParams:
    means_by_type: dict[str, dict[str, float]]
    org_sd: dict[str, float]
    correlation: list[list[float]]
    yearly_growth: dict[str, float]
    year_noise_sd: dict[str, float]
    lower_bounds: dict[str, float]


@dataclass(frozen=True)
class StrategyParams:
    type_shares: dict[str, float]
    own_stance_boost: float
    loadings: list[float]
    thresholds: list[float]


@dataclass(frozen=True)
class PracticeParams:
    class_shares: dict[str, float]
    degree_items: dict[str, str]
    process_items: dict[str, str]
    class_location: dict[str, float]
    degree_item_offsets: dict[str, float]
    degree_thresholds: list[float]
    process_probability: dict[str, dict[str, float]]
    missing_rate: float


@dataclass(frozen=True)
class SyntheticParams:
    """Every generating parameter (the groups of ``conf/data/synthetic.yaml``)."""

    councils: dict[str, dict[str, int]]
    ni_trusts: int
    ratings: RatingParams
    resources: ResourceParams
    strategy: StrategyParams
    local_practice: PracticeParams
    micro_measures: MicroParams

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> SyntheticParams:
        groups = {
            "ratings": RatingParams,
            "resources": ResourceParams,
            "strategy": StrategyParams,
            "local_practice": PracticeParams,
            "micro_measures": MicroParams,
        }
        try:
            parsed = {name: kind(**dict(cfg[name])) for name, kind in groups.items()}
            params = cls(councils=dict(cfg["councils"]), ni_trusts=int(cfg["ni_trusts"]),
                         **parsed)
        except (KeyError, TypeError) as err:
            raise ConfigError(f"data=synthetic: bad or missing generating parameter: {err}")
        params.check()
        return params

    def check(self) -> None:
        r = self.ratings
        if sorted(r.year_effects) != sorted(r.years):
            raise ConfigError("data.ratings.year_effects must have one value per year")
        if abs(sum(r.year_effects.values())) > 1e-6:
            raise ConfigError("data.ratings.year_effects must sum to zero")
        if not np.all(np.diff(r.cutpoints) > 0) or len(r.cutpoints) != 3:
            raise ConfigError("data.ratings.cutpoints must be 3 increasing numbers")
        if set(r.strategy_effects) != set(STRATEGY_TYPES):
            raise ConfigError(f"data.ratings.strategy_effects needs {STRATEGY_TYPES}")
        if set(r.class_effects) != set(self.local_practice.class_shares):
            raise ConfigError("data.ratings.class_effects and local_practice.class_shares "
                              "must name the same classes")
        if not 0 <= r.region_sd <= r.org_sd:
            raise ConfigError(
                f"data.ratings.region_sd={r.region_sd} must lie in [0, data.ratings.org_sd={r.org_sd}]: "
                "the region effects are carved out of the between-council SD (council effect = region "
                "effect + within-region effect, total SD org_sd)")
        if len(self.strategy.loadings) != ITEMS_PER_STANCE:
            raise ConfigError(f"data.strategy.loadings needs {ITEMS_PER_STANCE} values")
        self.micro_measures.check()


# --------------------------------------------------------------------------- organisations


def make_organisations(councils: dict[str, dict[str, int]], ni_trusts: int) -> pd.DataFrame:
    """English councils by (type, region) with ids E001.., then NI trusts N01.."""
    rows = []
    for org_type, by_region in councils.items():
        for region, count in by_region.items():
            rows += [("England", org_type, region)] * int(count)
    england = pd.DataFrame(rows, columns=["country", "org_type", "region"])
    england.insert(0, "org", [f"E{i + 1:03d}" for i in range(len(england))])
    ni = pd.DataFrame({
        "org": [f"N{i + 1:02d}" for i in range(ni_trusts)],
        "country": "Northern Ireland",
        "org_type": "HSC trust",
        "region": "Northern Ireland",
    })
    return pd.concat([england, ni], ignore_index=True)


# --------------------------------------------------------------------------- resources


def draw_resources(rng: np.random.Generator, organisations: pd.DataFrame, years: list[int],
                   p: ResourceParams) -> pd.DataFrame:
    """Resources of the English councils per year, rounded as published."""
    england = organisations[organisations["country"] == "England"]
    n = len(england)
    sd = np.array([p.org_sd[r] for r in RESOURCES])
    cov = np.asarray(p.correlation) * np.outer(sd, sd)
    means = np.array([[p.means_by_type[t][r] for r in RESOURCES] for t in england["org_type"]])
    level = means + rng.multivariate_normal(np.zeros(3), cov, size=n)
    step = np.arange(len(years)) if years else np.array([])
    frames = []
    for k, year in enumerate(years):
        values = {}
        for j, r in enumerate(RESOURCES):
            if r == "spend_per_head":
                drifted = level[:, j] * (1 + p.yearly_growth[r]) ** step[k]
            else:
                drifted = level[:, j] + p.yearly_growth[r] * step[k]
            noisy = drifted + rng.normal(0, p.year_noise_sd[r], size=n)
            values[r] = np.round(np.maximum(noisy, p.lower_bounds[r]), RESOURCE_DECIMALS[r])
        frames.append(pd.DataFrame({"org": england["org"].to_numpy(), "year": year, **values}))
    out = pd.concat(frames, ignore_index=True).sort_values(["org", "year"], ignore_index=True)
    out["year"] = out["year"].astype("Int64")
    return out


def standardisation(resources: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Mean and SD (ddof=1) of each resource over all rows: z = (x - mean) / sd."""
    return {r: {"mean": float(resources[r].mean()), "sd": float(resources[r].std(ddof=1))}
            for r in RESOURCES}


# --------------------------------------------------------------------------- ratings


def latent_score_without_year(
    strategy_type: np.ndarray, practice_class: np.ndarray, z: np.ndarray, org_effect: np.ndarray,
    p: RatingParams,
) -> np.ndarray:
    """``eta_it - y_t`` for rows with per-row strategy type, class, z (n x 3), org effect."""
    strategy = np.array([p.strategy_effects[s] for s in strategy_type])
    klass = np.array([p.class_effects[c] for c in practice_class])
    beta = np.array([p.resource_effects_per_sd[r] for r in RESOURCES])
    return strategy + z @ beta + klass + org_effect


def stars_from_latent(latent: np.ndarray, cutpoints, lowest: np.ndarray) -> np.ndarray:
    """Category of a latent value among increasing cutpoints, floored at ``lowest``."""
    stars = np.searchsorted(np.asarray(cutpoints), latent, side="left")
    return np.maximum(stars, lowest)


def draw_judgements(rng: np.random.Generator, stars: np.ndarray) -> tuple[list[str], list[str]]:
    """A (serving_people, capacity) pair for each star level, uniform among its pairs."""
    pairs_by_stars = {s: [pq for pq, v in JUDGEMENT_STARS.items() if v == s] for s in range(4)}
    chosen = [pairs_by_stars[s][rng.integers(len(pairs_by_stars[s]))] for s in stars]
    return [a for a, _ in chosen], [b for _, b in chosen]


def region_stream(seed: int) -> np.random.Generator:
    """The region effects' own random generator for a study seed."""
    return np.random.default_rng([int(seed), REGION_STREAM])


def draw_region_effects(region_rng: np.random.Generator, organisations: pd.DataFrame,
                        p: RatingParams) -> dict[str, float]:
    """``v_r ~ N(0, region_sd)`` for each English region, in sorted order (all 0 when
    ``region_sd = 0``)."""
    regions = sorted(organisations.loc[organisations["country"] == "England", "region"].unique())
    return dict(zip(regions, region_rng.normal(0.0, p.region_sd, size=len(regions)).tolist()))


def england_latent_rows(rng, organisations, strategy_type, practice_class, p: SyntheticParams,
                        region_rng: np.random.Generator | None = None):
    """Resources, the z scores, council and region effects and ``eta - y_t`` of every
    England org-year: ``(resources, scale, org_effect, region_effect, latent)``, with
    ``org_effect`` the whole council effect ``u_i = v_{region_i} + w_i``.

    Shared by ``draw_ratings`` and ``carestar.calibration`` so both use one model.
    ``region_rng`` (the region effects' stream) is needed when ``region_sd > 0``.
    """
    years = p.ratings.years
    resources = draw_resources(rng, organisations, years, p.resources)
    scale = standardisation(resources)
    z = np.column_stack([(resources[r] - scale[r]["mean"]) / scale[r]["sd"] for r in RESOURCES])
    england = organisations[organisations["country"] == "England"]
    within = rng.normal(0, p.ratings.within_region_sd, size=len(england))
    if region_rng is None:
        if p.ratings.region_sd > 0:
            raise ValueError("region_sd > 0 needs the region effects' random stream (region_rng)")
        region_effect = dict.fromkeys(sorted(england["region"].unique()), 0.0)
    else:
        region_effect = draw_region_effects(region_rng, organisations, p.ratings)
    council = england["region"].map(region_effect).to_numpy(float) + within  # u_i = v_r + w_i
    org_effect = dict(zip(england["org"].to_numpy(), council))
    orgs = resources["org"].to_numpy()
    latent = latent_score_without_year(
        np.array([strategy_type[o] for o in orgs]),
        np.array([practice_class[o] for o in orgs]),
        z,
        np.array([org_effect[o] for o in orgs]),
        p.ratings,
    )
    return resources, scale, org_effect, region_effect, latent


def draw_ratings(rng, resources: pd.DataFrame, latent: np.ndarray, p: RatingParams) -> pd.DataFrame:
    year = resources["year"].to_numpy(dtype=int)
    eta = latent + np.array([p.year_effects[y] for y in year])
    lowest = np.array([p.lowest_stars_by_year.get(y, 0) for y in year])
    stars = stars_from_latent(eta + rng.logistic(size=len(eta)), p.cutpoints, lowest)
    serving, capacity = draw_judgements(rng, stars)
    return pd.DataFrame({
        "org": resources["org"].to_numpy(),
        "year": pd.array(year, dtype="Int64"),
        "stars": pd.array(stars, dtype="Int64"),
        "serving_people": serving,
        "capacity": capacity,
    })


# --------------------------------------------------------------------------- strategy


def ordered_logit_probabilities(location: np.ndarray, thresholds) -> np.ndarray:
    """P(Y = m), m = 0..K, for ``P(Y <= m) = logistic(thresholds[m] - location)``."""
    cdf = expit(np.asarray(thresholds)[None, :] - np.asarray(location, float)[:, None])
    cdf = np.column_stack([np.zeros(len(cdf)), cdf, np.ones(len(cdf))])
    return np.diff(cdf, axis=1)


def draw_categories(rng, probabilities: np.ndarray) -> np.ndarray:
    """One category per row of a (rows x categories) probability matrix."""
    u = rng.random(len(probabilities))[:, None]
    return (u > np.cumsum(probabilities, axis=1)[:, :-1]).sum(axis=1)


def draw_strategy(rng, orgs: np.ndarray, p: StrategyParams):
    types = np.array(STRATEGY_TYPES)
    shares = np.array([p.type_shares[t] for t in STRATEGY_TYPES])
    strategy_type = types[rng.choice(len(types), size=len(orgs), p=shares / shares.sum())]
    stance = rng.normal(size=(len(orgs), len(types)))
    stance += p.own_stance_boost * (strategy_type[:, None] == types[None, :])
    table = pd.DataFrame({"org": orgs, "strategy_type": strategy_type})
    for k, t in enumerate(STRATEGY_TYPES):
        for j, loading in enumerate(p.loadings):
            probs = ordered_logit_probabilities(loading * stance[:, k], p.thresholds)
            table[f"{t}_{j + 1}"] = pd.array(draw_categories(rng, probs) + 1, dtype="Int64")
    truth = {
        "type_shares": dict(p.type_shares),
        "own_stance_boost": p.own_stance_boost,
        "item_model": "P(item <= m) = logistic(thresholds[m-1] - loading * stance), m = 1..6",
        "loadings": {item: p.loadings[int(item[-1]) - 1] for item in STANCE_ITEMS},
        "thresholds": {item: list(p.thresholds) for item in STANCE_ITEMS},
        "stance_scores": {o: dict(zip(STRATEGY_TYPES, map(float, row)))
                          for o, row in zip(orgs, stance)},
    }
    return table, dict(zip(orgs, strategy_type)), truth


# --------------------------------------------------------------------------- local practice


def practice_item_probabilities(p: PracticeParams) -> dict[str, dict[str, dict[str, Any]]]:
    """Class-specific response probabilities: degree items P(0..5), process items P(used)."""
    degree = {
        item: {c: ordered_logit_probabilities(
            [p.class_location[c] + p.degree_item_offsets[item]], p.degree_thresholds)[0].tolist()
            for c in p.class_shares}
        for item in p.degree_items
    }
    process = {item: {c: p.process_probability[item][c] for c in p.class_shares}
               for item in p.process_items}
    return {"degree_of_use": degree, "used": process}


def draw_local_practice(rng, orgs: np.ndarray, p: PracticeParams):
    classes = list(p.class_shares)
    shares = np.array([p.class_shares[c] for c in classes])
    practice_class = np.array(classes)[rng.choice(len(classes), size=len(orgs),
                                                  p=shares / shares.sum())]
    probs = practice_item_probabilities(p)
    frames = []
    for item in p.degree_items:
        matrix = np.array([probs["degree_of_use"][item][c] for c in practice_class])
        frames.append(pd.DataFrame({"org": orgs, "item": item,
                                    "degree_of_use": draw_categories(rng, matrix), "used": None}))
    for item in p.process_items:
        pi = np.array([probs["used"][item][c] for c in practice_class])
        frames.append(pd.DataFrame({"org": orgs, "item": item, "degree_of_use": None,
                                    "used": (rng.random(len(orgs)) < pi).astype(int)}))
    table = pd.concat(frames, ignore_index=True)
    kept = rng.random(len(table)) >= p.missing_rate
    table = table[kept].sort_values(["org", "item"], ignore_index=True)
    for column in ("degree_of_use", "used"):
        table[column] = pd.array(table[column].tolist(), dtype="Int64")
    truth = {
        "classes": classes,
        "class_shares": dict(p.class_shares),
        "class_of_org": dict(zip(orgs, practice_class.tolist())),
        "item_probabilities": probs,
        "item_labels": {**p.degree_items, **p.process_items},
        "missing_rate": p.missing_rate,
        "missing_responses": int((~kept).sum()),
    }
    return table, dict(zip(orgs, practice_class)), truth


# --------------------------------------------------------------------------- the study


def rating_truth(p: RatingParams, scale, org_effect, region_effect, region_of) -> dict[str, Any]:
    effects = {f"strategy_type={k}": v for k, v in p.strategy_effects.items()}
    effects |= {f"{k} (per SD)": v for k, v in p.resource_effects_per_sd.items()}
    effects |= {f"class={k}": v for k, v in p.class_effects.items()}
    ranked = sorted(effects, key=lambda k: -abs(effects[k]))
    return {
        "link": "logistic",
        "model": "eta = strategy_effects[type] + sum_r resource_effects_per_sd[r] * z_r "
                 "+ class_effects[class] + org_effects[org] + year_effects[year]; "
                 "org_effects[org] = region_effects[region] + org_within_region_effects[org]; "
                 "P(stars <= k) = logistic(cutpoints[k] - eta); "
                 "stars = max(stars, lowest_stars_by_year[year])",
        "cutpoints": list(map(float, p.cutpoints)),
        "year_effects": {str(y): float(v) for y, v in p.year_effects.items()},
        "lowest_stars_by_year": {str(y): int(v) for y, v in p.lowest_stars_by_year.items()},
        "strategy_reference": "defender",
        "strategy_effects": {k: float(v) for k, v in p.strategy_effects.items()},
        "class_reference": next(iter(p.class_effects)),
        "class_effects": {k: float(v) for k, v in p.class_effects.items()},
        "resource_effects_per_sd": dict(p.resource_effects_per_sd),
        "resource_standardisation": scale,
        "resource_effects_per_unit": {r: p.resource_effects_per_sd[r] / scale[r]["sd"]
                                      for r in RESOURCES},
        "org_sd": float(p.org_sd),
        "region_sd": float(p.region_sd),
        "org_within_region_sd": float(p.within_region_sd),
        "org_effects": {o: float(v) for o, v in org_effect.items()},
        "region_effects": {r: float(v) for r, v in region_effect.items()},
        "org_within_region_effects": {o: float(v - region_effect[region_of[o]])
                                      for o, v in org_effect.items()},
        "strongest_driver": ranked[0],
        "drivers_by_size": ranked,
        "judgement_stars": [[a, b, s] for (a, b), s in JUDGEMENT_STARS.items()],
    }


def simulate_study(params: SyntheticParams, seed: int, name: str = "synthetic") -> Study:
    """Draw every table from ``params`` with one ``numpy`` generator seeded by ``seed`` (the
    micro measures and the region effects from streams of their own,
    ``carestar.micro_measures.stream`` and ``region_stream``)."""
    rng = np.random.default_rng(seed)
    organisations = make_organisations(params.councils, params.ni_trusts)
    orgs = organisations["org"].to_numpy()
    strategy, strategy_type, strategy_truth = draw_strategy(rng, orgs, params.strategy)
    practice, practice_class, practice_truth = draw_local_practice(rng, orgs,
                                                                   params.local_practice)
    resources, scale, org_effect, region_effect, latent = england_latent_rows(
        rng, organisations, strategy_type, practice_class, params, region_stream(seed))
    ratings = draw_ratings(rng, resources, latent, params.ratings)
    micro, micro_truth = draw_micro_measures(seed, organisations, params.micro_measures)
    truth = {
        "generator": "carestar.synthetic",
        "seed": int(seed),
        "ratings": rating_truth(params.ratings, scale, org_effect, region_effect,
                                dict(zip(organisations["org"], organisations["region"]))),
        "strategy": strategy_truth,
        "local_practice": practice_truth,
        "micro_measures": micro_truth,
        "parameters": _jsonable(asdict(params)),
    }
    return Study(
        organisations=organisations,
        ratings=ratings,
        resources=resources,
        strategy=strategy,
        local_practice=practice,
        micro_measures=micro,
        country_comparison=COUNTRY_COMPARISON.copy(),
        source=f"{name} (carestar.synthetic, seed {seed})",
        truth=truth,
    )


def load_synthetic(*, seed: int, name: str = "synthetic", **params: Any) -> Study:
    """The synthetic study for ``data=synthetic``: Hydra passes the yaml's keys.

    Parameters
    ----------
    seed : int
        Seed of the one random generator; the same seed gives the same study.
    name : str
        Name of the data set (shown in ``Study.source``).
    **params
        The generating parameters: ``councils``, ``ni_trusts``, ``ratings``, ``resources``,
        ``strategy``, ``local_practice``, ``micro_measures`` (see ``conf/data/synthetic.yaml``).

    Returns
    -------
    Study
        With ``truth`` holding the generating parameters and latent quantities.
    """
    return simulate_study(SyntheticParams.from_config(params), int(seed), name)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value

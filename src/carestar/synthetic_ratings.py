r"""The synthetic study's resources and star ratings (English councils, years
2002..2008), drawn from known parameters, and their truth.

Generating model
----------------
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

The strategy type ``s_i`` and practice class ``c_i`` come from ``carestar.synthetic_survey``.
The cutpoints and year effects in the yaml come from ``carestar.calibration`` so that the
expected star counts per year match the published counts.
"""

from __future__ import annotations

from itertools import product
from typing import Any

import numpy as np
import pandas as pd

from carestar.schemas import CAPACITY, SERVING_PEOPLE
from carestar.synthetic_params import RatingParams, ResourceParams, SyntheticParams

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


# --------------------------------------------------------------------------- truth


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

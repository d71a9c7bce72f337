r"""The synthetic study: the tables of DESIGN.md section 3 drawn from known parameters.

``load_synthetic(**cfg)`` is what ``data=synthetic`` instantiates
(``conf/data/synthetic.yaml`` holds every generating parameter, read by
``carestar.synthetic_params``); it returns a ``carestar.study.Study`` whose ``truth``
(JSON-serialisable, saved beside the data by ``carestar.study_files.write_study``) holds
what the models should recover.

Generating model
----------------
Organisations: 150 English councils (ids ``E001``..``E150``) with fixed counts per
(org_type, region), and the Northern Ireland HSC trusts (``N01``..). Then, with one
random generator seeded by the study seed, in this order:

* each organisation's strategy type, Likert items, practice class and local-practice
  answers: ``carestar.synthetic_survey`` (its docstring has the math);
* the English councils' resources and star ratings, 2002..2008, driven by the strategy
  type, the practice class, the resources, council and region effects and year effects:
  ``carestar.synthetic_ratings`` (its docstring has the math; the region effects from a
  random stream of their own);
* micro-level measure ``m`` used (nationally required or internal-management measures, a
  country difference by kind, organisation intercepts): ``carestar.micro_measures``, drawn
  from a random stream of its own.

The public names of those modules stay importable from here.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from carestar.micro_measures import draw_micro_measures
from carestar.study import Study
from carestar.synthetic_params import (
    PracticeParams,
    RatingParams,
    ResourceParams,
    StrategyParams,
    SyntheticParams,
)
from carestar.synthetic_ratings import (
    JUDGEMENT_STARS,
    REGION_STREAM,
    RESOURCE_DECIMALS,
    RESOURCES,
    draw_judgements,
    draw_ratings,
    draw_region_effects,
    draw_resources,
    england_latent_rows,
    latent_score_without_year,
    rating_truth,
    region_stream,
    standardisation,
    stars_from_latent,
)
from carestar.synthetic_survey import (
    draw_categories,
    draw_local_practice,
    draw_strategy,
    ordered_logit_probabilities,
    practice_item_probabilities,
)

__all__ = [
    "COUNTRY_COMPARISON",
    "JUDGEMENT_STARS",
    "REGION_STREAM",
    "RESOURCES",
    "RESOURCE_DECIMALS",
    "PracticeParams",
    "RatingParams",
    "ResourceParams",
    "StrategyParams",
    "SyntheticParams",
    "draw_categories",
    "draw_judgements",
    "draw_local_practice",
    "draw_ratings",
    "draw_region_effects",
    "draw_resources",
    "draw_strategy",
    "england_latent_rows",
    "latent_score_without_year",
    "load_synthetic",
    "make_organisations",
    "ordered_logit_probabilities",
    "practice_item_probabilities",
    "rating_truth",
    "region_stream",
    "simulate_study",
    "standardisation",
    "stars_from_latent",
]

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


# --------------------------------------------------------------------------- the study


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

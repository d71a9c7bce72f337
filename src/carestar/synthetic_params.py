"""The synthetic study's generating parameters: one frozen dataclass per group of
``conf/data/synthetic.yaml`` (ratings, resources, strategy, local practice; the micro
measures' ``MicroParams`` is ``carestar.micro_measures``'s), read and checked by
``SyntheticParams.from_config`` before anything is drawn. What each parameter does is in
``carestar.synthetic_ratings`` and ``carestar.synthetic_survey``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from carestar.errors import ConfigError
from carestar.micro_measures import MicroParams
from carestar.schemas import ITEMS_PER_STANCE, STRATEGY_TYPES


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

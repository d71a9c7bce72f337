"""Calibrate the synthetic ratings to the published star counts per year.

The synthetic ratings have 9 free numbers that set the star distribution of each year:
3 shared cutpoints and 7 zero-sum year effects (6 free). This module chooses them so that
the EXPECTED number of councils at each star level per year matches
``carestar/data/star_ratings_published.csv`` (2005's 143 rated councils scaled to 150),
by minimising the multinomial deviance

    D = 2 * sum_t sum_k O_tk * log(O_tk / E_tk),   E_tk = 150 * E[P(stars_t = k | eta)],

where the expectation is over the generating distribution of ``eta - y_t`` (strategy
type, resources, latent class, organisation effect), taken from a large fixed-seed Monte
Carlo sample of whole synthetic populations drawn with ``carestar.synthetic``'s own code
and summarised by 1000 quantiles per year (the logistic noise is integrated exactly).
An expected count is a sum over councils of each council's expected probabilities, which
depend on its marginal distribution alone; the region effects (``region_sd``) are carved out
of the council effect's SD ``org_sd``, so that distribution, and the calibration, are the
same for every ``region_sd``: the sample is drawn with ``region_sd = 0``.
The 2006-2008 floor (0 and 1 stars merged) leaves 18 free proportions for 9 numbers, so
the fit is not exact; ``Calibration`` reports the misfit.

Run ``python -m carestar.calibration [conf/data/synthetic.yaml]`` to print the numbers
for the yaml.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from importlib.resources import files

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit

from carestar.synthetic import (
    SyntheticParams,
    england_latent_rows,
    make_organisations,
)

COUNCILS = 150
CALIBRATION_SEED = 20020501
REPLICATES = 200
QUANTILES = 1000


def published_counts(councils: int = COUNCILS) -> pd.DataFrame:
    """Published councils per star level (columns 0..3) per year, scaled to ``councils``."""
    source = files("carestar") / "data" / "star_ratings_published.csv"
    with source.open() as handle:
        table = pd.read_csv(handle)
    counts = table.set_index("year")[[f"stars_{k}" for k in range(4)]].astype(float)
    counts.columns = range(4)
    return counts.mul(councils / table.set_index("year")["rated"], axis=0)


def latent_quantiles(params: SyntheticParams, replicates: int = REPLICATES,
                     seed: int = CALIBRATION_SEED, quantiles: int = QUANTILES) -> np.ndarray:
    """Quantiles (years x quantiles) of ``eta - y_t`` over the generating distribution
    (drawn with ``region_sd = 0``: the module docstring says why that is the same)."""
    params = replace(params, ratings=replace(params.ratings, region_sd=0.0))
    rng = np.random.default_rng(seed)
    organisations = make_organisations(params.councils, params.ni_trusts)
    england = organisations.loc[organisations["country"] == "England", "org"].to_numpy()
    types = list(params.strategy.type_shares)
    type_p = np.array(list(params.strategy.type_shares.values()))
    classes = list(params.local_practice.class_shares)
    class_p = np.array(list(params.local_practice.class_shares.values()))
    years = params.ratings.years
    by_year: list[list[np.ndarray]] = [[] for _ in years]
    for _ in range(replicates):
        strategy_type = dict(zip(england, rng.choice(types, len(england), p=type_p / type_p.sum())))
        practice_class = dict(zip(england, rng.choice(classes, len(england),
                                                      p=class_p / class_p.sum())))
        resources, _, _, _, latent = england_latent_rows(rng, organisations, strategy_type,
                                                         practice_class, params)
        year = resources["year"].to_numpy(dtype=int)
        for k, y in enumerate(years):
            by_year[k].append(latent[year == y])
    levels = (np.arange(quantiles) + 0.5) / quantiles
    return np.array([np.quantile(np.concatenate(chunks), levels) for chunks in by_year])


def expected_proportions(latent_q: np.ndarray, cutpoints, year_effects, lowest) -> np.ndarray:
    """E[P(stars = k)] (years x 4) with the floor ``lowest`` (per year) applied."""
    eta = latent_q + np.asarray(year_effects)[:, None]
    cdf = expit(np.asarray(cutpoints)[None, None, :] - eta[..., None])
    zeros, ones = np.zeros(eta.shape + (1,)), np.ones(eta.shape + (1,))
    p = np.diff(np.concatenate([zeros, cdf, ones], axis=-1), axis=-1).mean(axis=1)
    for t, low in enumerate(lowest):
        p[t, low] += p[t, :low].sum()
        p[t, :low] = 0.0
    return p


def deviance(observed: np.ndarray, expected: np.ndarray) -> float:
    """Multinomial deviance 2 sum O log(O / E) (cells with O = 0 add nothing)."""
    mask = observed > 0
    return float(2 * np.sum(observed[mask] * np.log(observed[mask] / expected[mask])))


@dataclass(frozen=True)
class Calibration:
    """Calibrated cutpoints and year effects, the expected and published counts."""

    cutpoints: list[float]
    year_effects: dict[int, float]
    expected: pd.DataFrame
    published: pd.DataFrame
    deviance: float

    @property
    def max_abs_difference(self) -> float:
        """Largest |expected - published| councils in any year x star cell."""
        return float((self.expected - self.published).abs().to_numpy().max())

    def yaml(self, decimals: int = 4) -> str:
        cuts = ", ".join(f"{c:.{decimals}f}" for c in self.cutpoints)
        rounded = [round(v, decimals) for v in self.year_effects.values()]
        rounded[-1] = round(-sum(rounded[:-1]), decimals)  # keep the sum exactly zero
        years = ", ".join(f"{y}: {v:.{decimals}f}" for y, v in zip(self.year_effects, rounded))
        return f"  cutpoints: [{cuts}]\n  year_effects: {{{years}}}"


def _unpack(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cutpoints = np.cumsum([x[0], np.exp(x[1]), np.exp(x[2])])
    year_effects = np.append(x[3:], -np.sum(x[3:]))
    return cutpoints, year_effects


def calibrate(params: SyntheticParams, replicates: int = REPLICATES,
              seed: int = CALIBRATION_SEED) -> Calibration:
    """Cutpoints and zero-sum year effects minimising the deviance to the published counts."""
    years = params.ratings.years
    published = published_counts().loc[years]
    observed = published.to_numpy()
    lowest = [params.ratings.lowest_stars_by_year.get(y, 0) for y in years]
    latent_q = latent_quantiles(params, replicates, seed)

    def objective(x):
        cutpoints, year_effects = _unpack(x)
        p = expected_proportions(latent_q, cutpoints, year_effects, lowest)
        return deviance(observed, COUNCILS * np.maximum(p, 1e-300))

    start = np.concatenate([[-1.0, np.log(2.0), np.log(2.0)], np.zeros(len(years) - 1)])
    fit = minimize(objective, start, method="BFGS", options={"gtol": 1e-8, "maxiter": 2000})
    cutpoints, year_effects = _unpack(fit.x)
    p = expected_proportions(latent_q, cutpoints, year_effects, lowest)
    return Calibration(
        cutpoints=[float(c) for c in cutpoints],
        year_effects={int(y): float(v) for y, v in zip(years, year_effects)},
        expected=pd.DataFrame(COUNCILS * p, index=published.index, columns=published.columns),
        published=published,
        deviance=float(fit.fun),
    )


def calibrated_params(params: SyntheticParams, calibration: Calibration) -> SyntheticParams:
    """``params`` with the calibrated cutpoints and year effects in place."""
    ratings = replace(params.ratings, cutpoints=calibration.cutpoints,
                      year_effects=calibration.year_effects)
    return replace(params, ratings=ratings)


def main(argv: list[str] | None = None) -> None:
    from omegaconf import OmegaConf

    argv = sys.argv[1:] if argv is None else argv
    path = argv[0] if argv else "conf/data/synthetic.yaml"
    cfg = OmegaConf.to_container(OmegaConf.load(path))
    params = SyntheticParams.from_config({k: v for k, v in cfg.items() if k != "seed"})
    result = calibrate(params)
    pd.set_option("display.precision", 2)
    print("expected councils per star level:\n", result.expected, sep="")
    print("published (scaled to 150):\n", result.published, sep="")
    print(f"deviance {result.deviance:.3f}; max |expected - published| "
          f"{result.max_abs_difference:.2f} councils")
    print("for conf/data/synthetic.yaml (ratings:):")
    print(result.yaml())


if __name__ == "__main__":
    main()

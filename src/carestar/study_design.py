"""The study's star ratings as a regression design, with predictors chosen by name.

Predictors (``model.predictors``):

- ``strategy_type``: the reported Miles & Snow stance, treatment contrasts against the
  reference level in ``model.reference.strategy_type``; columns ``strategy_type[level]``.
- ``spend_per_head``, ``deprivation``, ``older_share``: resources of the organisation in
  the rating year, standardised over the rows fitted.
- ``local_measures_use``: mean "degree of use" (0-5) over the local-measure items,
  standardised; ``processes_used``: share of yes/no processes in use, standardised.
- ``local_measures_level``: that mean rounded to a whole level 0-5; and each degree-of-use
  item by its name (e.g. ``detailed_local_targets``): the organisation's answer, 0-5.
  Standardised as the others, or **monotonic** written ``mo(name)``
  (``'model.predictors=[strategy_type,"mo(local_measures_level)"]'``: ``carestar.monotonic``,
  levels 0..D with D the highest level observed). An organisation without an answer to a
  chosen item is an error naming it.

Rows are England's (org, year) ratings, one year (``year``) or the whole panel.

Group levels (``model.groups``, ``LEVELS``): ``org`` (the council: its ratings repeat over
the years), ``region`` and ``org_type`` (from ``organisations.csv``), each one intercept per
level of that column. ``org`` is fitted in panel mode only (one year has one rating per
council, so its intercept would be the residual); ``region`` and ``org_type`` in either
mode. A rated organisation's region is its row of ``organisations.csv``: the synthetic
study rates English councils only, so ``Northern Ireland`` (the trusts' region) is never
a level; a study whose ratings include trusts gets it as a level of its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from carestar.design import Factor, GroupTerm, RegressionDesign
from carestar.errors import ConfigError, DataError
from carestar.monotonic import monotonic_term
from carestar.study import Study

STRATEGY_LEVELS = ("prospector", "analyser", "defender", "reactor")
RESOURCES = ("spend_per_head", "deprivation", "older_share")
PRACTICE = ("local_measures_use", "processes_used")
PREDICTORS = ("strategy_type", *RESOURCES, *PRACTICE)
LEVEL = "local_measures_level"  # whole levels 0-5: a natural mo() predictor, as the items are
SOURCE_TABLE = {
    "strategy_type": "strategy.csv",
    **{name: "resources.csv" for name in RESOURCES},
    **{name: "local_practice.csv" for name in PRACTICE},
}


def _predictor_name(spec: str) -> tuple[str, bool]:
    """``"mo(x)"`` -> (``x``, True); ``"x"`` -> (``x``, False)."""
    spec = str(spec).strip()
    if spec.startswith("mo(") and spec.endswith(")"):
        return spec[3:-1].strip(), True
    return spec, False


def degree_items(local_practice: pd.DataFrame) -> list[str]:
    """The degree-of-use (0-5) items of the study, each usable as a predictor."""
    return sorted(local_practice.loc[local_practice["degree_of_use"].notna(), "item"].astype(str).unique())
STARS = ("0", "1", "2", "3")
LEVELS = ("org", "region", "org_type")  # model.groups: the levels a study's councils are nested in


def check_levels(groups) -> tuple[str, ...]:
    """``model.groups`` as a tuple of known, distinct levels, or a ``ConfigError``."""
    if isinstance(groups, str) or not all(isinstance(g, str) for g in groups):
        raise ConfigError(f"model.groups={groups!r} is not a list of levels; expected a list drawn "
                          f"from {list(LEVELS)}, e.g. 'model.groups=[org,region]'")
    levels = tuple(groups)
    unknown = [g for g in levels if g not in LEVELS]
    if unknown:
        raise ConfigError(f"model.groups: unknown level(s) {unknown}; expected levels from {list(LEVELS)} "
                          "(org: the council, region and org_type: columns of organisations.csv), "
                          "e.g. 'model.groups=[org,region]'")
    if len(set(levels)) != len(levels):
        raise ConfigError(f"model.groups={list(levels)} names a level twice")
    return levels


def ratings_design(
    study: Study,
    predictors: list[str],
    reference: dict[str, str],
    year: int | None = None,
    lowest_stars: dict[int, int] | None = None,
    standardise: bool = True,
    groups: tuple[str, ...] | list[str] = ("org",),
) -> RegressionDesign:
    """Stars on the chosen predictors; the whole panel (intercepts per level of ``groups``,
    year effects) or one year (intercepts per level of ``groups`` except ``org``)."""
    levels = check_levels(groups)
    specs = [_predictor_name(p) for p in predictors]
    items = degree_items(study.local_practice)
    available = (*PREDICTORS, LEVEL, *items)
    unknown = [p for p, (name, _) in zip(predictors, specs) if name not in available]
    if unknown:
        raise ConfigError(
            f"unknown predictor(s) {unknown} in model.predictors; "
            f"available: {', '.join(PREDICTORS)}, {LEVEL} and the degree-of-use items "
            f"({', '.join(items)}); mo(x) marks {LEVEL} or an item as monotonic"
        )
    wrong = [p for p, (name, mono) in zip(predictors, specs) if mono and name not in (LEVEL, *items)]
    if wrong:
        raise ConfigError(
            f"model.predictors: {wrong[0]} is not an ordered predictor; mo() is for "
            f"{LEVEL} and the degree-of-use items (0-5): {', '.join(items)}"
        )
    monotonic = [name for name, mono in specs if mono]
    predictors = [name for name, mono in specs if not mono]
    ratings = study.ratings
    if year is not None:
        years = sorted(ratings["year"].unique().tolist())
        if year not in years:
            raise ConfigError(f"model.year={year} has no ratings; years in the data: {years}")
        ratings = ratings[ratings["year"] == year]
    rows = ratings[["org", "year", "stars"]].reset_index(drop=True)

    frame = _predictor_frame(study, rows, predictors + monotonic)
    columns: dict[str, np.ndarray] = {}
    scales: dict[str, tuple[float, float]] = {}
    for name in predictors:
        if name == "strategy_type":
            columns.update(_strategy_columns(frame["strategy_type"], reference))
            continue
        values = frame[name].to_numpy(float)
        if standardise:
            mean, sd = float(values.mean()), float(values.std(ddof=1))
            if sd == 0:
                raise DataError(
                    f"predictor '{name}' takes one value only, so it cannot be standardised",
                    column=name,
                    expected="at least two distinct values",
                )
            values = (values - mean) / sd
            scales[name] = (mean, sd)
        columns[name] = values
    X = pd.DataFrame(columns, index=rows.index)  # no predictors: N rows, 0 columns

    lowest = None
    if lowest_stars:
        lowest = rows["year"].map(lambda y: lowest_stars.get(int(y), 0)).to_numpy(int)
        bad = np.flatnonzero(rows["stars"].to_numpy() < lowest)
        if bad.size:
            raise DataError(
                "stars below the lowest level awarded in that year's rating regime",
                file="ratings.csv",
                column="stars",
                expected=f"lowest stars by year {lowest_stars} (model.lowest_stars)",
                hint="rows listed as org/year: "
                + ", ".join(f"{rows.org[i]}/{rows.year[i]}" for i in bad[:10]),
            )

    period = None if year is not None else _factor("year", rows["year"])
    fitted = [g for g in levels if g != "org" or year is None]
    terms = tuple(GroupTerm(_factor(g, values)) for g, values in _level_values(study, rows, fitted).items())
    return RegressionDesign(
        outcome="stars",
        y=rows["stars"].to_numpy(int),
        X=X,
        categories=STARS,
        groups=terms,
        period=period,
        lowest=lowest,
        rows=rows,
        scales=scales,
        monotonic=tuple(
            monotonic_term(name, frame[name].astype(int), levels=None, file="local_practice.csv",
                           lines=np.arange(len(rows)))
            for name in monotonic
        ),
    )


def _level_values(study: Study, rows: pd.DataFrame, levels: list[str]) -> dict[str, pd.Series]:
    """Each rating row's level of every group in ``levels`` (``org``: the row's own)."""
    out = {}
    for level in levels:
        if level == "org":
            out[level] = rows["org"]
            continue
        of_org = study.organisations.set_index("org")[level]
        values = rows["org"].map(of_org)
        missing = values.isna().to_numpy()
        if missing.any():
            raise DataError(
                f"{len(set(rows['org'][missing]))} rated organisation(s) have no {level} in organisations.csv",
                file="organisations.csv",
                column=level,
                expected=f"a {level} for every organisation in ratings.csv (model.groups names {level})",
                hint="org: " + ", ".join(sorted(set(rows["org"][missing].astype(str)))[:10]),
            )
        out[level] = values.astype(str)
    return out


def _factor(name: str, values: pd.Series) -> Factor:
    levels = sorted(values.unique().tolist())
    codes = pd.Categorical(values, categories=levels).codes.astype(int)
    return Factor(name, tuple(str(level) for level in levels), codes)


def _strategy_columns(types: pd.Series, reference: dict[str, str]) -> dict[str, np.ndarray]:
    ref = reference.get("strategy_type", "defender")
    if ref not in STRATEGY_LEVELS:
        raise ConfigError(
            f"model.reference.strategy_type={ref!r} is not a strategy type; "
            f"expected one of {', '.join(STRATEGY_LEVELS)}"
        )
    return {
        f"strategy_type[{level}]": (types == level).to_numpy(float)
        for level in STRATEGY_LEVELS
        if level != ref
    }


def _predictor_frame(study: Study, rows: pd.DataFrame, predictors: list[str]) -> pd.DataFrame:
    """One row per rating with every predictor; a chosen predictor's missing values are data errors."""
    per_org = study.strategy[["org", "strategy_type"]].merge(
        practice_summaries(study.local_practice), on="org", how="outer"
    )
    frame = rows.merge(study.resources, on=["org", "year"], how="left").merge(
        per_org, on="org", how="left"
    )
    for column in predictors:
        table = SOURCE_TABLE.get(column, "local_practice.csv")
        missing = frame[column].isna().to_numpy()
        if missing.any():
            keys = frame.loc[missing, ["org", "year"]].astype(str).agg("/".join, axis=1)
            raise DataError(
                f"{int(missing.sum())} rated org/year(s) have no row in {table}",
                file=table,
                column=column,
                expected="a value for every organisation (and year) in ratings.csv",
                hint="org/year: " + ", ".join(keys.tolist()[:10])
                + (f"; {LEVEL} (the mean degree of use over the items answered, rounded) has a value for "
                   "every organisation" if column not in SOURCE_TABLE and column != LEVEL else ""),
            )
    return frame


def practice_summaries(local_practice: pd.DataFrame) -> pd.DataFrame:
    """Per organisation: mean degree of use (0-5 items) and share of processes used (0/1)."""
    grouped = local_practice.groupby("org")
    use = grouped["degree_of_use"].mean().astype(float)
    summaries = pd.DataFrame(
        {
            "local_measures_use": use,
            "processes_used": grouped["used"].mean().astype(float),
            LEVEL: np.floor(use + 0.5),  # rounded half up
        }
    )
    degree = local_practice[local_practice["degree_of_use"].notna()]
    answers = degree.pivot_table(index="org", columns="item", values="degree_of_use", aggfunc="first")
    return summaries.join(answers.astype(float)).reset_index()

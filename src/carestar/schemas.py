"""Pandera schemas of the study tables: the one statement of what a valid study file holds.

One ``DataFrameSchema`` per table of ``carestar.study.TABLES`` (columns, dtypes, allowed
values, ranges, uniqueness). Cross-table keys (every ``org`` is in ``organisations``) are
checked by ``carestar.study_files`` after each table passes. ``docs/data_dictionary.md``
documents every column here; a test keeps the two in step.

Schemas coerce, so they accept the all-text tables that ``study_files`` reads from CSV and
return them with the canonical dtypes below (the synthetic generator produces the same).
"""

from __future__ import annotations

import pandera.pandas as pa

COUNTRIES = ("England", "Northern Ireland", "Japan")
ORG_TYPES = (
    "shire county",
    "metropolitan district",
    "London borough",
    "unitary",
    "HSC trust",
    "municipality",
)
REGIONS = (
    "North East",
    "North West",
    "Yorkshire and the Humber",
    "East Midlands",
    "West Midlands",
    "East of England",
    "London",
    "South East",
    "South West",
    "Northern Ireland",
    "Japan",
)
YEARS = (2002, 2008)
STARS = (0, 1, 2, 3)
SERVING_PEOPLE = ("no", "some", "most", "yes")
CAPACITY = ("poor", "uncertain", "promising", "excellent")
STRATEGY_TYPES = ("prospector", "analyser", "defender", "reactor")
ITEMS_PER_STANCE = 3
STANCE_ITEMS = tuple(f"{s}_{j}" for s in STRATEGY_TYPES for j in range(1, ITEMS_PER_STANCE + 1))
LIKERT = (1, 7)
DEGREE_OF_USE = (0, 5)
SNAKE_CASE = r"^[a-z][a-z0-9_]*$"

ORG_ID = pa.Column(str, pa.Check.str_matches(r"^\S+$"), nullable=False)


def _text(**kwargs) -> pa.Column:
    return pa.Column(str, pa.Check.str_length(min_value=1), nullable=False, coerce=True, **kwargs)


def _one_of(values, **kwargs) -> pa.Column:
    return pa.Column(str, pa.Check.isin(list(values)), nullable=False, coerce=True, **kwargs)


def _integer(low: int, high: int, *, nullable: bool = False) -> pa.Column:
    return pa.Column("Int64", pa.Check.in_range(low, high), nullable=nullable, coerce=True)


def _number(low: float, high: float) -> pa.Column:
    return pa.Column(float, pa.Check.in_range(low, high), nullable=False, coerce=True)


def _one_value_column_filled(df):
    """local_practice rows hold exactly one of degree_of_use and used."""
    return df["degree_of_use"].isna() ^ df["used"].isna()


SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "organisations": pa.DataFrameSchema(
        {
            "org": ORG_ID,
            "country": _one_of(COUNTRIES),
            "org_type": _one_of(ORG_TYPES),
            "region": _one_of(REGIONS),
        },
        unique=["org"],
        coerce=True,
    ),
    "ratings": pa.DataFrameSchema(
        {
            "org": ORG_ID,
            "year": _integer(*YEARS),
            "stars": _integer(min(STARS), max(STARS)),
            "serving_people": _one_of(SERVING_PEOPLE),
            "capacity": _one_of(CAPACITY),
        },
        unique=["org", "year"],
        coerce=True,
    ),
    "resources": pa.DataFrameSchema(
        {
            "org": ORG_ID,
            "year": _integer(*YEARS),
            "spend_per_head": _number(0.0, 5000.0),
            "deprivation": _number(0.0, 100.0),
            "older_share": _number(0.0, 100.0),
        },
        unique=["org", "year"],
        coerce=True,
    ),
    "strategy": pa.DataFrameSchema(
        {
            "org": ORG_ID,
            "strategy_type": _one_of(STRATEGY_TYPES),
            **{item: _integer(*LIKERT, nullable=True) for item in STANCE_ITEMS},
        },
        unique=["org"],
        coerce=True,
    ),
    "local_practice": pa.DataFrameSchema(
        {
            "org": ORG_ID,
            "item": pa.Column(str, pa.Check.str_matches(SNAKE_CASE), coerce=True),
            "degree_of_use": _integer(*DEGREE_OF_USE, nullable=True),
            "used": _integer(0, 1, nullable=True),
        },
        checks=pa.Check(
            _one_value_column_filled,
            element_wise=False,
            error="exactly one of degree_of_use and used is filled in each row",
        ),
        unique=["org", "item"],
        coerce=True,
    ),
    "micro_measures": pa.DataFrameSchema(
        {
            "org": ORG_ID,
            "measure": pa.Column(str, pa.Check.str_matches(SNAKE_CASE), coerce=True),
            "used": _integer(0, 1),
        },
        unique=["org", "measure"],
        coerce=True,
    ),
    "country_comparison": pa.DataFrameSchema(
        {
            "dimension": _text(unique=True),
            "England": _text(),
            "Northern Ireland": _text(),
            "Japan": _text(),
        },
        coerce=True,
    ),
}

#: tables whose ``org`` column must name an organisation in ``organisations``
KEYED_BY_ORG = ("ratings", "resources", "strategy", "local_practice", "micro_measures")
#: tables that hold England councils only
ENGLAND_ONLY = ("ratings", "resources")


def expected_columns(table: str) -> list[str]:
    """The columns a table must have, in their documented order."""
    return list(SCHEMAS[table].columns)


def describe_column(table: str, column: str) -> str:
    """What a column must hold, in words, from its schema (for error messages)."""
    col = SCHEMAS[table].columns[column]
    kind = str(col.dtype)
    parts = [{"Int64": "whole number", "float64": "number"}.get(kind, "text")]
    for check in col.checks:
        stats = check.statistics or {}
        if "allowed_values" in stats:
            parts.append("one of " + ", ".join(map(str, stats["allowed_values"])))
        elif "min_value" in stats and "max_value" in stats:
            parts.append(f"between {stats['min_value']} and {stats['max_value']}")
        elif "pattern" in stats:
            parts.append(f"matching {stats['pattern']}")
    parts.append("may be empty" if col.nullable else "no empty cells")
    return ", ".join(parts)

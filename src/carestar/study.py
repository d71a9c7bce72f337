"""The study as tables: one row per fact, keyed by organisation id (DESIGN.md section 3).

A ``Study`` is what ``data=synthetic`` and ``data=study`` produce and what the study models
(ordinal, lca, joint) consume. Tables are pandas DataFrames with the columns documented in
``docs/data_dictionary.md``; ``truth`` holds the generating parameters when the study is
simulated (``None`` for real survey files).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

TABLES = (
    "organisations",
    "ratings",
    "resources",
    "strategy",
    "local_practice",
    "micro_measures",
    "country_comparison",
)


@dataclass(frozen=True)
class Study:
    """The study tables, where they came from, and (for simulations) the truth."""

    organisations: pd.DataFrame
    ratings: pd.DataFrame
    resources: pd.DataFrame
    strategy: pd.DataFrame
    local_practice: pd.DataFrame
    micro_measures: pd.DataFrame
    country_comparison: pd.DataFrame
    source: str
    truth: dict[str, Any] | None = field(default=None, compare=False)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in TABLES}

    @property
    def data_hash(self) -> str:
        """SHA-256 of the tables' canonical CSV text: equal data, equal hash."""
        digest = hashlib.sha256()
        for name, table in self.tables().items():
            digest.update(name.encode())
            digest.update(table.to_csv(index=False, lineterminator="\n").encode())
        return digest.hexdigest()

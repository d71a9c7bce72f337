"""The study's ``local_practice`` table as ``ItemResponses`` (``ItemResponses.from_study``).

The table is long: one row per organisation and item (``org, item, degree_of_use,
used``). ``degree_of_use`` items are ordinal 0-5 (six categories, coded as their value);
``used`` items are binary 0/1; a missing row, or a row whose value is blank, is a missing
response. Each refusal (a missing column, both values or a value out of range in a row, an
item answered twice, an item mixing the two value columns) is a ``DataError`` naming the
table, column and CSV lines (header = line 1) before anything is fitted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from carestar.errors import DataError
from carestar.item_responses import ItemResponses, check_items, validated_responses

DEGREE_LEVELS = tuple(range(6))  # degree_of_use 0-5
USED_LEVELS = (0, 1)


def responses_from_study(study, items: Sequence[str] | None = None) -> ItemResponses:
    """Responses from ``study.local_practice`` (long: org, item, degree_of_use, used)."""
    table = study.local_practice
    file = "local_practice"
    need = ["org", "item", "degree_of_use", "used"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise DataError(
            f"missing column(s) {missing}",
            file=file,
            expected=f"columns {need}",
        )
    t = table.reset_index(drop=True)
    lines = np.arange(len(t)) + 2  # CSV line numbers, header = line 1
    deg = pd.to_numeric(t["degree_of_use"], errors="coerce")
    used = pd.to_numeric(t["used"], errors="coerce")
    has_deg, has_used = deg.notna().to_numpy(), used.notna().to_numpy()
    both = has_deg & has_used
    if both.any():
        raise DataError(
            "rows give both degree_of_use and used",
            file=file,
            column="degree_of_use",
            rows=lines[both].tolist(),
            expected="exactly one of degree_of_use (0-5) or used (0/1) per row",
        )
    for col, vals, levels in (("degree_of_use", deg, DEGREE_LEVELS), ("used", used, USED_LEVELS)):
        bad = vals.notna().to_numpy() & ~vals.isin(levels).to_numpy()
        if bad.any():
            raise DataError(
                f"values outside {levels[0]}-{levels[-1]}",
                file=file,
                column=col,
                rows=lines[bad].tolist(),
                expected=f"integers {list(levels)} or blank",
            )
    dup = t.duplicated(["org", "item"], keep=False).to_numpy()
    if dup.any():
        raise DataError(
            "an organisation answers the same item more than once",
            file=file,
            column="item",
            rows=lines[dup].tolist(),
            expected="one row per (org, item)",
        )
    all_items = list(dict.fromkeys(t["item"].astype(str)))
    chosen = list(all_items) if items is None else check_items(items, all_items, file)
    kinds: list[str] = []
    for item in chosen:
        rows = (t["item"].astype(str) == item).to_numpy()
        d, u = has_deg[rows].any(), has_used[rows].any()
        if d and u:
            raise DataError(
                f"item '{item}' mixes degree_of_use and used values",
                file=file,
                column="item",
                rows=lines[rows & has_used].tolist(),
                expected="every row of an item in the same value column",
            )
        kinds.append("ordinal" if d else "binary")
    orgs = tuple(dict.fromkeys(t["org"]))
    org_index = {o: i for i, o in enumerate(orgs)}
    codes = np.full((len(orgs), len(chosen)), -1, dtype=int)
    item_lines: dict[int, np.ndarray] = {}
    for j, item in enumerate(chosen):
        rows = (t["item"].astype(str) == item).to_numpy()
        vals = deg[rows] if kinds[j] == "ordinal" else used[rows]
        ok = vals.notna().to_numpy()
        r = np.array([org_index[o] for o in t.loc[rows, "org"]], dtype=int)
        codes[r[ok], j] = vals.to_numpy()[ok].astype(int)
        item_lines[j] = lines[rows]
    labels = tuple(DEGREE_LEVELS if k == "ordinal" else USED_LEVELS for k in kinds)
    return validated_responses(
        orgs=orgs,
        items=tuple(chosen),
        codes=codes,
        n_categories=tuple(len(lv) for lv in labels),
        category_labels=labels,
        kinds=tuple(kinds),
        weights=None,
        covariates=None,
        source=getattr(study, "source", file),
        lines=item_lines,
        file=file,
        org_lines=_org_lines(t, orgs, lines),
    )


def _org_lines(t: pd.DataFrame, orgs, lines) -> dict[int, list[int]]:
    index = {o: i for i, o in enumerate(orgs)}
    out: dict[int, list[int]] = {}
    for o, line in zip(t["org"], lines, strict=True):
        out.setdefault(index[o], []).append(int(line))
    return out

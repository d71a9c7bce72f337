"""Item responses for latent class analysis: one row per organisation, one code per item.

An ``ItemResponses`` holds the categorical answers of ``n_org`` organisations to ``n_item``
items as integer codes ``0 .. n_categories[j] - 1`` (``-1`` = missing), whatever they came
from:

* ``ItemResponses.from_study(study, items=None)``: the study's long ``local_practice``
  table (``org, item, degree_of_use, used``). ``degree_of_use`` items are ordinal 0-5 (six
  categories, coded as their value); ``used`` items are binary 0/1. A missing row, or a row
  whose value is blank, is a missing response (read by ``carestar.local_practice_items``).
* ``ItemResponses.from_frame(frame, items, weights=None, covariates=None, source=...)``: a
  wide tidy table (one row per organisation or per response pattern). Categories keep the
  data's coding: numeric columns in numeric order, an ordered pandas ``Categorical`` in its
  order (kind ``ordinal``), other columns in the order they first appear.

Bad input raises ``DataError`` (file, column, CSV rows with the header as line 1, what was
expected) or ``ConfigError`` before anything is fitted. ``check_n_classes`` says whether a
number of latent classes can be identified from the data.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from carestar.errors import ConfigError, DataError, format_rows
from carestar.frequency_weights import check_frequency_weights

log = logging.getLogger(__name__)

KINDS = ("binary", "polytomous", "ordinal")


class IdentificationWarning(UserWarning):
    """More free parameters than distinct response patterns: classes may not be identified."""


@dataclass(frozen=True)
class ItemResponses:
    """Coded categorical item responses of organisations (or response patterns).

    orgs:            row identifiers (organisation ids), length n_org
    items:           item names, length n_item
    codes:           (n_org, n_item) int array, 0..n_categories[j]-1, -1 = missing
    n_categories:    number of categories of each item
    category_labels: labels of each item's categories, in code order
    kinds:           ``binary`` / ``polytomous`` / ``ordinal`` per item
    weights:         frequency weights per row (each row counts ``w`` times) or None
    covariates:      numeric covariates of class membership (rows aligned with ``orgs``)
                     or None
    source:          where the responses came from (file or table name)
    """

    orgs: tuple
    items: tuple[str, ...]
    codes: np.ndarray
    n_categories: tuple[int, ...]
    category_labels: tuple[tuple, ...]
    kinds: tuple[str, ...]
    weights: np.ndarray | None = None
    covariates: pd.DataFrame | None = field(default=None, compare=False)
    source: str = ""

    # -- sizes -------------------------------------------------------------------------
    @property
    def n_org(self) -> int:
        return self.codes.shape[0]

    @property
    def n_item(self) -> int:
        return self.codes.shape[1]

    @property
    def max_categories(self) -> int:
        return max(self.n_categories)

    @property
    def observed(self) -> np.ndarray:
        """(n_org, n_item) boolean: response observed."""
        return self.codes >= 0

    @property
    def row_weights(self) -> np.ndarray:
        """Frequency weights, ones when there are none."""
        return np.ones(self.n_org) if self.weights is None else np.asarray(self.weights, float)

    @property
    def n_total(self) -> float:
        """Number of units the rows stand for (sum of weights)."""
        return float(self.row_weights.sum())

    def one_hot(self) -> np.ndarray:
        """(n_org, n_item, max_categories) indicators; all zero where missing."""
        out = np.zeros((self.n_org, self.n_item, self.max_categories))
        i, j = np.nonzero(self.observed)
        out[i, j, self.codes[i, j]] = 1.0
        return out

    def n_free_parameters(self, n_classes: int, n_covariates: int | None = None) -> int:
        """Free parameters of an unrestricted latent class model with ``n_classes``."""
        p = self.covariates.shape[1] if n_covariates is None and self.covariates is not None else (
            n_covariates or 0
        )
        membership = (n_classes - 1) * (1 + p)
        return membership + n_classes * sum(c - 1 for c in self.n_categories)

    def n_patterns(self) -> int:
        """Distinct observed response patterns (missing counts as its own value)."""
        return len(np.unique(self.codes, axis=0))

    def select(self, items: Sequence[str]) -> ItemResponses:
        """The same responses restricted to ``items`` (in that order)."""
        idx = [self.items.index(i) for i in check_items(items, self.items, self.source)]
        codes = self.codes[:, idx]
        return validated_responses(
            orgs=self.orgs,
            items=tuple(self.items[i] for i in idx),
            codes=codes,
            n_categories=tuple(self.n_categories[i] for i in idx),
            category_labels=tuple(self.category_labels[i] for i in idx),
            kinds=tuple(self.kinds[i] for i in idx),
            weights=self.weights,
            covariates=self.covariates,
            source=self.source,
            lines=None,
        )

    # -- constructors ------------------------------------------------------------------
    @classmethod
    def from_study(cls, study, items: Sequence[str] | None = None) -> ItemResponses:
        """Responses from ``study.local_practice`` (long: org, item, degree_of_use, used)."""
        from carestar.local_practice_items import responses_from_study

        return responses_from_study(study, items)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        items: Sequence[str] | None,
        weights: str | Sequence[float] | np.ndarray | None = None,
        covariates: Sequence[str] | None = None,
        source: str = "data",
        org: str | None = None,
        levels: dict[str, Sequence] | None = None,
        dropna: bool = False,
    ) -> ItemResponses:
        """Responses from a wide table: one row per organisation (or per pattern).

        ``weights`` is a column name or an array of frequency weights; ``covariates`` names
        numeric columns; ``org`` names an id column (default: the CSV line number);
        ``levels`` gives a column's categories in order (overrides the data's own order).
        A row with a missing covariate is an error naming column and lines, unless
        ``dropna`` (``data.dropna=true``): then rows with a missing covariate *or any missing
        item* are dropped (poLCA's ``na.rm = TRUE``) and the log says how many. Without it,
        missing answers stay in (full information: they drop out of that row's likelihood).
        """
        frame = frame.reset_index(drop=True)
        lines = np.arange(len(frame)) + 2
        skip = {c for c in [org, weights if isinstance(weights, str) else None] if c}
        skip |= set(covariates or [])
        if items is None:
            items = [c for c in frame.columns if c not in skip]
        items = check_items(items, list(map(str, frame.columns)), source)
        covariates = list(covariates or [])
        absent = [c for c in covariates if c not in frame.columns]
        if absent:
            raise ConfigError(
                f"{source}: covariate column(s) {absent} not in the data; "
                f"columns are {list(map(str, frame.columns))}"
            )
        w = None
        if weights is not None:
            if isinstance(weights, str):
                if weights not in frame.columns:
                    raise ConfigError(f"{source}: weights column '{weights}' not in the data")
                w = frame[weights].to_numpy()
                wname = weights
            else:
                w = np.asarray(weights, dtype=float)
                wname = "weights"
                if w.shape != (len(frame),):
                    raise ConfigError(f"{source}: {len(w)} weights for {len(frame)} rows")
            w = check_frequency_weights(w, file=source, column=wname, lines=lines, missing_ok=False)
        keep = np.ones(len(frame), dtype=bool)
        cov = None
        if covariates:
            cov = frame[covariates].apply(pd.to_numeric, errors="coerce")
            for c in covariates:
                nonnum = cov[c].isna().to_numpy() & frame[c].notna().to_numpy()
                if nonnum.any():
                    raise DataError(
                        "covariate is not numeric",
                        file=source,
                        column=c,
                        rows=lines[nonnum].tolist(),
                        expected="numbers (code categorical covariates as indicator columns)",
                    )
            na = cov.isna().any(axis=1).to_numpy()
            if na.any() and not dropna:
                cols = [c for c in covariates if cov[c].isna().any()]
                raise DataError(
                    f"{int(na.sum())} row(s) have a missing covariate",
                    file=source,
                    column=cols[0] if len(cols) == 1 else ", ".join(cols),
                    rows=lines[na].tolist(),
                    expected="a value of every covariate in every row",
                    hint="set data.dropna=true to drop these rows",
                )
            keep = ~na
        if dropna:
            item_na = frame[list(items)].isna().any(axis=1).to_numpy()
            dropped = ~keep | item_na
            if dropped.any():
                log.warning("data.dropna=true: dropped %d of %d rows of %s with a missing item"
                            " or covariate (%d missing an item; lines %s)", int(dropped.sum()),
                            len(frame), source, int(item_na.sum()),
                            format_rows(lines[dropped].tolist()))
            keep = ~dropped
        if cov is not None:
            cov = cov.loc[keep].reset_index(drop=True).astype(float)
        codes = np.full((int(keep.sum()), len(items)), -1, dtype=int)
        labels, kinds = [], []
        levels = dict(levels or {})
        for j, item in enumerate(items):
            col = frame[item]
            lv, kind = _levels(col, levels.get(item))
            unknown = col.notna().to_numpy() & ~col.isin(lv).to_numpy()
            if unknown.any():
                raise DataError(
                    "values not among the item's categories",
                    file=source,
                    column=item,
                    rows=lines[unknown].tolist(),
                    expected=f"one of {list(lv)}",
                )
            mapping = {v: k for k, v in enumerate(lv)}
            c = col.map(lambda v: mapping.get(v, -1) if pd.notna(v) else -1).to_numpy(int)
            codes[:, j] = c[keep]
            labels.append(tuple(lv))
            kinds.append(kind if len(lv) != 2 or kind == "ordinal" else "binary")
        orgs = tuple(frame[org][keep]) if org else tuple(lines[keep].tolist())
        kept_lines = lines[keep]
        return validated_responses(
            orgs=orgs,
            items=tuple(items),
            codes=codes,
            n_categories=tuple(len(lv) for lv in labels),
            category_labels=tuple(labels),
            kinds=tuple(kinds),
            weights=None if w is None else w[keep],
            covariates=cov,
            source=source,
            lines={j: kept_lines for j in range(len(items))},
            file=source,
            org_lines={i: [int(x)] for i, x in enumerate(kept_lines)},
        )


def check_n_classes(responses: ItemResponses, n_classes: int) -> None:
    """Raise ``ConfigError`` for an impossible number of classes; warn when doubtful.

    Impossible: fewer than one class, more classes than rows, or more free parameters than
    the multinomial of all possible response patterns has (prod(n_categories) - 1). Doubtful
    (``IdentificationWarning``): more free parameters than distinct observed patterns.
    """
    if not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ConfigError(f"model.n_classes must be a whole number >= 1, got {n_classes!r}")
    if n_classes > responses.n_org:
        raise ConfigError(
            f"model.n_classes={n_classes} but the data have only {responses.n_org} rows"
        )
    npar = responses.n_free_parameters(n_classes)
    cells = float(np.prod([float(c) for c in responses.n_categories]))
    patterns = responses.n_patterns()
    if npar > cells - 1:
        raise ConfigError(
            f"model.n_classes={n_classes} cannot be identified: {npar} free parameters but "
            f"only {cells - 1:.0f} degrees of freedom in the table of all "
            f"{cells:.0f} response patterns of {responses.n_item} items; use fewer classes"
        )
    if npar > patterns:
        warnings.warn(
            f"{n_classes} latent classes have {npar} free parameters but the data hold only "
            f"{patterns} distinct response patterns; the classes may be weakly identified "
            f"(expect prior-driven item probabilities and multimodality)",
            IdentificationWarning,
            stacklevel=2,
        )


# -- helpers -------------------------------------------------------------------------------
def check_items(items, available, source) -> list[str]:
    """``items`` as a list of names, each in ``available``, none twice, at least one."""
    if isinstance(items, str):
        items = [items]
    items = [str(i) for i in items]
    missing = [i for i in items if i not in available]
    if missing:
        raise ConfigError(
            f"{source}: item(s) {missing} not in the data; available items: {list(available)}"
        )
    if len(set(items)) != len(items):
        raise ConfigError(f"{source}: items listed twice: {items}")
    if not items:
        raise ConfigError(f"{source}: no items to analyse")
    return items


def _levels(col: pd.Series, given) -> tuple[tuple, str]:
    if given is not None:
        return tuple(given), "polytomous"
    if isinstance(col.dtype, pd.CategoricalDtype):
        kind = "ordinal" if col.cat.ordered else "polytomous"
        return tuple(col.cat.categories), kind
    vals = col.dropna()
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        u = np.unique(vals.to_numpy())
        return tuple(int(x) if float(x).is_integer() else float(x) for x in u), "polytomous"
    return tuple(dict.fromkeys(vals.tolist())), "polytomous"



def validated_responses(*, orgs, items, codes, n_categories, category_labels, kinds, weights,
                        covariates, source, lines, file=None, org_lines=None) -> ItemResponses:
    """The checked ``ItemResponses``: every item with two observed categories, every row with
    an answer, known kinds; ``lines`` / ``org_lines`` give the CSV lines an error names."""
    file = file or source
    for j, item in enumerate(items):
        seen = np.unique(codes[:, j][codes[:, j] >= 0])
        if len(seen) < 2:
            rows = None if lines is None else lines[j].tolist()
            raise DataError(
                f"item '{item}' has {len(seen)} observed categor{'y' if len(seen) == 1 else 'ies'}"
                + (f" ({category_labels[j][seen[0]]!r})" if len(seen) == 1 else ""),
                file=file,
                column=item if lines is not None and file != "local_practice" else "item",
                rows=rows,
                expected="at least two different observed answers per item (drop the item)",
            )
    empty = ~(codes >= 0).any(axis=1)
    if empty.any():
        idx = np.nonzero(empty)[0]
        rows = None
        if org_lines is not None:
            rows = sorted(x for i in idx for x in org_lines.get(int(i), []))
        raise DataError(
            f"organisation(s) {[orgs[i] for i in idx][:10]} answer none of the items",
            file=file,
            column="org" if file == "local_practice" else None,
            rows=rows or None,
            expected="at least one observed item response per organisation (drop it)",
        )
    for k in kinds:
        if k not in KINDS:
            raise ConfigError(f"unknown item kind {k!r}; expected one of {KINDS}")
    return ItemResponses(
        orgs=tuple(orgs),
        items=tuple(items),
        codes=np.asarray(codes, dtype=int),
        n_categories=tuple(int(c) for c in n_categories),
        category_labels=tuple(tuple(c) for c in category_labels),
        kinds=tuple(kinds),
        weights=None if weights is None else np.asarray(weights, dtype=float),
        covariates=covariates,
        source=source,
    )

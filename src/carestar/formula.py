"""A tidy CSV + an lme4/brms-style formula -> ``RegressionDesign`` (``data=csv``).

``formula_design(table, "rating ~ temp + contact + (1|judge)", "ordinal")``

Parsing and design matrices come from the ``formulae`` library; this module only prepares
the data frame (categorical columns, level orders, missing values) so that the matrices
mean what an R user expects, checks the data against the formula before any sampling, and
renames the columns the way R does.

Conventions (what a user writes and gets):

- **Outcome**. ``ordinal``: a column; categories in the order ``data.levels.<y>`` gives,
  or numeric order for numbers (a text outcome needs ``data.levels``: order of appearance in
  a file is no order). ``binomial``: ``successes | trials(n)`` (``n`` a column or an
  integer) or a 0/1 outcome (numbers or booleans; a two-level text outcome needs
  ``data.levels.<y>=[failure,success]``). Coded and checked by ``carestar.formula_outcome``.
- **Categorical predictors**: text columns, columns listed in ``data.levels``, and terms
  wrapped in ``C()``. Treatment contrasts; the reference level is the first level listed
  in ``data.levels.<x>``, else the first in the data's order (order of first appearance in
  the file, as the file was written), except for ``C(x)`` of a numeric column, whose levels
  are in numeric order (so ``C(period)`` has reference ``1`` in cbpp). A numeric column
  not wrapped in ``C()`` and not in ``data.levels`` is a numeric (slope) predictor: write
  ``C(period)`` (formulae's spelling of R's ``factor(period)``) when numbers are labels.
- **Column names** follow R: ``InflMedium``, ``period2``, ``InflMedium:ContHigh``; numeric
  predictors keep their names (``temp``), transformations keep formulae's label
  (``np.log(x)``).
- **Intercept**: ordinal designs have none (the cutpoints absorb it; a formula without an
  intercept, ``0 + x`` or ``- 1``, is refused because the dummies would then duplicate the
  cutpoints). Binomial designs have ``intercept=True`` unless the formula removes it.
- **Group terms** ``(1|g)``, ``(x|g)``, ``(1 + x|g)``, ``(0 + x|g)``: one ``GroupTerm`` per
  grouping factor (terms on the same factor are merged); slopes are DataFrame columns named
  as the fixed effects are. ``(1|a:b)`` groups by the combination, named ``a:b``.
- **Weights**: ``data.weights`` -> ``design.weights`` (frequency weights).
- **Monotonic effects** ``mo(x)`` (brms): a main term of an ordered predictor, whole numbers
  0..D or levels listed in ``data.levels.x`` (``carestar.monotonic``); taken out of the
  formula before formulae sees it, kept in ``design.monotonic``.
- **Category-specific effects** ``cs(x)`` (ordinal only): their columns go to
  ``design.cs``, one effect per threshold (``carestar.category_specific``).
- **Terms**: only those ``carestar.formula_terms`` lists; any other function call
  (``s(x)``, ``gp(x)``, ``me(x)``, a misspelt name) is refused before any work.
- **Missing values** in the outcome, predictors, grouping factors, trials or weights are an
  error naming the rows, unless ``data.dropna=true``, which drops those rows and logs how
  many.
"""

from __future__ import annotations

import logging
import re
from typing import Literal

import numpy as np
import pandas as pd
from formulae import design_matrices, model_description

from carestar import category_specific
from carestar.column_levels import appearance_order, as_labels, check_levels
from carestar.design import Factor, GroupTerm, RegressionDesign
from carestar.errors import ConfigError, DataError, format_rows
from carestar.formula_outcome import coded_outcome
from carestar.formula_terms import check_terms
from carestar.monotonic import monotonic_term, split_monotonic
from carestar.tidy_csv import TidyTable, close_match_hint, csv_lines

__all__ = ["formula_design", "split_trials", "r_name"]

log = logging.getLogger(__name__)

Family = Literal["ordinal", "binomial"]

_TRIALS = re.compile(r"^\s*trials\s*\(\s*(?P<arg>[^()]+?)\s*\)\s*$")
_LEVEL = re.compile(r"^(?:C\((?P<cvar>[^,()]+)(?:,.*)?\)|(?P<var>[^\[\]]+))\[(?P<level>.*)\]$")


# ----------------------------------------------------------------------------- helpers


def split_trials(formula: str) -> tuple[str, str | int | None]:
    """``"y | trials(n) ~ x"`` -> (``"y ~ x"``, ``"n"``); trials an int for ``trials(10)``.

    formulae has no ``|`` on the left of ``~`` (bambi adds it the same way); only this
    brms addition term is handled here, everything else is formulae's.
    """
    if formula.count("~") != 1:
        raise ConfigError(
            f"model.formula '{formula}' does not parse: expected one '~' between the outcome "
            "and the predictors, e.g. 'y ~ x + (1|g)'"
        )
    lhs, rhs = formula.split("~")
    if "|" not in lhs:
        return formula, None
    outcome, _, addition = lhs.partition("|")
    m = _TRIALS.match(addition)
    if not m or not outcome.strip():
        raise ConfigError(
            f"model.formula '{formula}': the outcome '{lhs.strip()}' does not parse: expected "
            "'successes | trials(n)' with n a column or a whole number"
        )
    arg = m.group("arg")
    trials: str | int = int(arg) if arg.isdigit() else arg
    return f"{outcome.strip()} ~ {rhs.strip()}", trials


def r_name(label: str) -> str:
    """formulae's column label -> R's: ``Infl[Medium]`` -> ``InflMedium``, ``C(period)[2]``
    -> ``period2``; interactions part by part; other labels unchanged."""
    parts = []
    for part in label.split(":"):
        m = _LEVEL.match(part)
        if m:
            parts.append(f"{(m.group('cvar') or m.group('var')).strip()}{m.group('level')}")
        else:
            parts.append(part)
    return ":".join(parts)


def _var_names(term) -> list[str]:
    names = getattr(term, "var_names", None)
    return sorted(names) if names else []


def _looks_numeric(s: pd.Series) -> bool:
    nonnull = s.dropna()
    if not len(nonnull):
        return False
    as_num = pd.to_numeric(nonnull, errors="coerce")
    return bool(as_num.notna().mean() >= 0.5)


# ----------------------------------------------------------------------------- main


def formula_design(table: TidyTable, formula: str, family: Family) -> RegressionDesign:
    """Build the regression design of ``formula`` on ``table`` (see the module docstring).

    Raises ``ConfigError`` (formula, levels config) or ``DataError`` (data) before any
    sampling, naming the term or column, the rows and what was expected.
    """
    if family not in ("ordinal", "binomial"):
        raise ConfigError(f"formula_design: family must be 'ordinal' or 'binomial', not {family!r}")
    if not isinstance(formula, str) or not formula.strip():
        raise ConfigError("model.formula is empty: expected e.g. 'y ~ x + (1|g)'")
    frame = table.frame
    columns = table.columns
    file = str(table.path)

    # 1. parse (formulae), trials addition for binomial
    core, trials = split_trials(formula)
    if trials is not None and family != "binomial":
        raise ConfigError(f"model.formula '{formula}': trials() is for binomial models only")
    core, monotonic = split_monotonic(core)
    try:
        desc = model_description(core)
    except Exception as exc:  # formulae raises ParseError / ScanError / ValueError
        raise ConfigError(f"model.formula '{formula}' does not parse: {exc}") from None
    check_terms(formula, desc)
    if twice := sorted(set(monotonic) & set(desc.var_names)):
        raise ConfigError(f"model.formula '{formula}': '{twice[0]}' is both mo({twice[0]}) and another "
                          "term; a monotonic effect includes the linear one")
    cs_terms = category_specific.check_category_specific(formula, desc, family)
    if desc.response is None:
        raise ConfigError(f"model.formula '{formula}' has no outcome: expected 'y ~ ...'")
    response_vars = _var_names(desc.response.term)
    comps = getattr(desc.response.term, "components", [])
    if len(comps) != 1 or type(comps[0]).__name__ != "Variable":
        raise ConfigError(
            f"model.formula '{formula}': the outcome must be one column name, "
            f"not '{desc.response.term}'"
        )
    outcome = response_vars[0]

    # 2. every column the formula names exists
    used = sorted(set(desc.var_names) | set(monotonic))
    if isinstance(trials, str):
        used.append(trials)
    for name in used:
        if name not in columns:
            raise DataError(
                f"model.formula '{formula}' names a column '{name}' that is not in the file",
                file=file,
                column=name,
                expected=f"one of the columns {columns}",
                hint=close_match_hint(name, columns),
            )
    has_intercept = any(type(t).__name__ == "Intercept" for t in desc.terms)
    if family == "ordinal" and not has_intercept:
        raise ConfigError(
            f"model.formula '{formula}': ordinal models need the intercept in the formula (the "
            "cutpoints absorb it); remove '0 +' / '- 1'"
        )

    # 3. missing values
    needed = list(dict.fromkeys(used + ([table.weights] if table.weights else [])))
    missing = frame[needed].isna().any(axis=1).to_numpy()
    keep = np.flatnonzero(~missing)
    if missing.any():
        bad = np.flatnonzero(missing)
        cols = [c for c in needed if frame[c].iloc[bad].isna().any()]
        if not table.dropna:
            raise DataError(
                f"{bad.size} row(s) have missing values in {cols}",
                file=file,
                column=cols[0] if len(cols) == 1 else None,
                rows=csv_lines(bad),
                expected="a value in every column the formula (and weights) use",
                hint="set data.dropna=true to drop these rows",
            )
        log.warning(
            "data.dropna=true: dropped %d of %d rows of %s with missing values in %s (lines %s)",
            bad.size, len(frame), file, cols, format_rows(csv_lines(bad)),
        )
        if keep.size == 0:
            raise DataError("every row has a missing value", file=file, column=None)

    # 4. prepare the frame formulae sees: categorical columns with their level orders
    df = frame.iloc[keep].reset_index(drop=True).copy()
    for name in used:
        if name == outcome or name == trials:
            continue
        if name in table.levels:
            order = check_levels(table, name, keep, f"predictor '{name}'")
            df[name] = pd.Categorical(as_labels(df[name]), categories=order, ordered=True)
        elif not pd.api.types.is_numeric_dtype(df[name]) and not pd.api.types.is_bool_dtype(df[name]):
            if _looks_numeric(df[name]):
                nonnum = pd.to_numeric(df[name], errors="coerce").isna().to_numpy()
                raise DataError(
                    f"non-numeric values {list(dict.fromkeys(df[name][nonnum].astype(str)))[:5]} "
                    "in a numeric column",
                    file=file,
                    column=name,
                    rows=csv_lines(keep[nonnum]),
                    expected="numbers",
                    hint=f"fix the rows; if '{name}' is categorical, list its levels in "
                    f"data.levels.{name}",
                )
            df[name] = pd.Categorical(
                as_labels(df[name]), categories=appearance_order(df[name]), ordered=True
            )
        elif pd.api.types.is_bool_dtype(df[name]):
            df[name] = pd.Categorical(
                as_labels(df[name]), categories=["false", "true"], ordered=True
            )

    # 5. outcome
    y, categories, n_trials = coded_outcome(table, df, outcome, keep, family, trials, formula)
    df[outcome] = y.astype(float)  # formulae needs a response it can evaluate

    # 6. design matrices (formulae)
    try:
        dm = design_matrices(core, df, na_action="error", extra_namespace=category_specific.NAMESPACE)
    except Exception as exc:
        raise ConfigError(f"model.formula '{formula}': {exc}") from None
    common = dm.common.as_dataframe() if dm.common is not None else pd.DataFrame(index=df.index)
    common.index = pd.RangeIndex(len(common))
    cs_labels = {label: r_name(category_specific.inner_label(name, label))
                 for name in cs_terms for label in dm.common.terms[name].labels}
    W = common[list(cs_labels)].rename(columns=cs_labels).astype(float) if cs_labels else None
    X = common.drop(columns=[c for c in common.columns if c == "Intercept" or c in cs_labels])
    X = X.rename(columns=r_name).astype(float)

    groups = _group_terms(dm, df) if dm.group is not None else ()
    terms = tuple(
        monotonic_term(name, frame[name].iloc[keep].reset_index(drop=True),
                       levels=table.levels.get(name), file=file, lines=np.asarray(csv_lines(keep)),
                       labels=as_labels(frame[name].iloc[keep]).reset_index(drop=True))
        for name in monotonic
    )

    weights = None
    if table.weights:
        weights = pd.to_numeric(frame[table.weights].iloc[keep]).to_numpy(dtype=float)
    rows = pd.DataFrame({"line": csv_lines(keep)})
    for g in groups:
        rows[g.group.name] = [g.group.levels[c] for c in g.group.codes]

    return RegressionDesign(
        outcome=outcome,
        y=y,
        X=X,
        categories=categories,
        trials=n_trials,
        intercept=family == "binomial" and has_intercept,
        groups=groups,
        weights=weights,
        rows=rows,
        monotonic=terms,
        cs=W,
    )


def _group_terms(dm, df: pd.DataFrame) -> tuple[GroupTerm, ...]:
    """formulae's group-specific terms, merged per grouping factor, as ``GroupTerm``s."""
    by_factor: dict[str, dict] = {}
    for label, term in dm.group.terms.items():
        fvars = [c.name for c in term.factor.components]
        gname = ":".join(fvars)
        entry = by_factor.setdefault(
            gname, {"vars": fvars, "levels": list(term.groups), "intercept": False, "slopes": {}}
        )
        data = dm.group[label]
        if hasattr(data, "toarray"):
            data = data.toarray()
        data = np.asarray(data, dtype=float)
        ngroups = len(term.groups)
        if term.kind == "intercept":
            entry["intercept"] = True
            continue
        # numeric / categoric slopes: one block of ngroups columns per expr column
        expr_labels = list(dict.fromkeys(lab.split("|")[0] for lab in term.labels))
        for j, elab in enumerate(expr_labels):
            block = data[:, j * ngroups : (j + 1) * ngroups]
            entry["slopes"][r_name(elab)] = block.sum(axis=1)
    out = []
    for gname, entry in by_factor.items():
        labels = df[entry["vars"]].astype(str).agg(":".join, axis=1) if len(entry["vars"]) > 1 \
            else as_labels(df[entry["vars"][0]].astype(object)).astype(str)
        levels = [str(v) for v in entry["levels"]]
        codes = pd.Categorical(labels, categories=levels).codes
        if (codes < 0).any():  # formulae's level labels differ from ours: use ours
            levels = list(dict.fromkeys(labels))
            codes = pd.Categorical(labels, categories=levels).codes
        slopes = pd.DataFrame(entry["slopes"]) if entry["slopes"] else None
        out.append(
            GroupTerm(
                group=Factor(name=gname, levels=tuple(levels), codes=codes.astype(int)),
                intercept=entry["intercept"],
                slopes=slopes,
            )
        )
    return tuple(out)


def describe(design: RegressionDesign) -> str:
    """One paragraph for logs and reports: outcome, effects, group terms, rows."""
    parts = [f"outcome '{design.outcome}'", f"{design.n} rows", f"effects {design.effects}"]
    if design.monotonic:
        parts.append("monotonic " + ", ".join(f"mo({t.name}) (levels 0..{t.D})" for t in design.monotonic))
    if design.cs is not None:
        parts.append(f"category-specific effects {design.cs_columns}")
    if design.groups:
        parts.append("groups " + ", ".join(f"({g.label})" for g in design.groups))
    if design.weights is not None:
        parts.append(f"weights summing to {design.weights.sum():g}")
    return "; ".join(parts)


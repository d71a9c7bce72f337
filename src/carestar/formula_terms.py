"""Which formula terms carestar supports: every other one is refused before any work.

formulae parses far more than carestar's designs mean: ``s(x)`` (a brms smooth) would be
evaluated as a call to an unknown function, and ``offset(x)`` would become a column with its
own coefficient. ``check_terms`` walks the parsed formula (fixed terms, interactions, both
sides of group terms) and refuses any function call outside ``SUPPORTED_CALLS`` and numpy's
functions (``np.log(x)``), naming the term and listing what is supported. A term that is
``cs(...)`` alone is left to ``carestar.category_specific``; ``cs()`` anywhere else is refused.
"""

from __future__ import annotations

import numpy as np

from carestar.category_specific import is_category_specific
from carestar.errors import ConfigError

SUPPORTED_CALLS = {
    "C": "a categorical predictor, C(x)",
    "center": "centred, center(x)",
    "scale": "standardised, scale(x)",
    "standardize": "standardised, standardize(x)",
}
KNOWN_ELSEWHERE = {  # brms / mgcv terms a user may try, and what they are
    "s": "a smooth (mgcv / brms)",
    "t2": "a tensor-product smooth (mgcv / brms)",
    "gp": "a Gaussian process (brms)",
    "me": "a predictor with measurement error (brms)",
    "mi": "a missing-value imputation term (brms)",
    "offset": "an offset (carestar would estimate its coefficient)",
    "I": "arithmetic inside a formula: compute the column in the file",
    "poly": "orthogonal polynomials: compute the columns in the file",
    "bs": "B-splines: compute the columns in the file",
    "cs": "a category-specific effect, a term of its own in an ordinal model: y ~ x + cs(z), "
          "not inside an interaction, a call or a group term",
}
SUPPORTED = ("column names, interactions a:b and a*b, "
             + ", ".join(f"{name}()" for name in SUPPORTED_CALLS)
             + ", mo(x) (a monotonic effect, carestar.monotonic)"
             + ", numpy functions (np.log(x), np.sqrt(x)), group terms (1|g), (x|g), (1 + x|g), "
             "category-specific effects cs(x) (ordinal)")


def _calls(term) -> list:
    """Every function call in a parsed term (its components, both sides of a group term)."""
    parts = [getattr(term, "expr", None), getattr(term, "factor", None)]
    if getattr(term, "components", None) is not None:
        parts.append(term)
    calls = []
    for part in parts:
        for component in getattr(part, "components", []) or []:
            if type(component).__name__ == "Call":
                calls.append(component)
    return calls


def _supported(callee: str) -> bool:
    if callee in SUPPORTED_CALLS:
        return True
    if callee.startswith("np."):
        return callable(getattr(np, callee[3:], None))
    return False


def check_terms(formula: str, description) -> None:
    """Refuse (``ConfigError``) a term of ``formula`` (parsed by formulae) that calls a
    function carestar does not support, naming it and listing what is supported."""
    for term in description.terms:
        if is_category_specific(term):  # carestar.category_specific checks its use
            continue
        for call in _calls(term):
            callee = str(call.call.callee)
            if _supported(callee):
                continue
            what = KNOWN_ELSEWHERE.get(callee, "an unknown function")
            raise ConfigError(
                f"model.formula '{formula}': the term '{call.name}' is not supported ({callee}(): {what}). "
                f"Supported: {SUPPORTED}"
            )

"""What the joint model is fitted to: ``PreparedJoint`` (ratings design, the same
organisations' item answers, the EM solution, whose classes ``fit_em`` orders by use)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from carestar.design import RegressionDesign
from carestar.item_responses import ItemResponses
from models.lca import EMFit


@dataclass(frozen=True)
class PreparedJoint:
    """Ratings design, item responses of the same organisations, EM solution.

    ``org_of_row[n]`` indexes ``responses.orgs`` for rating row ``n``.
    """

    design: RegressionDesign
    responses: ItemResponses
    org_of_row: np.ndarray
    n_classes: int
    em: EMFit
    truth: dict[str, Any] | None = None
    likert: np.ndarray | None = None  # (org, STANCE_ITEMS) codes 0..6, -1 missing (latent)
    types: tuple[str, ...] = ()  # each organisation's reported strategy type
    ordinal_items: tuple[int, ...] = ()  # items with the ordered-logit emission

    @property
    def class_labels(self) -> list[int]:
        return list(range(1, self.n_classes + 1))

    @property
    def orgs(self) -> list[str]:
        return [str(o) for o in self.responses.orgs]

    def category_groups(self) -> dict[int, list[int]]:
        """Items with free probabilities (not ``ordinal_items``) grouped by their number of
        categories (one Dirichlet variable per group)."""
        groups: dict[int, list[int]] = {}
        for j, c in enumerate(self.responses.n_categories):
            if j not in self.ordinal_items:
                groups.setdefault(c, []).append(j)
        return groups

    def single_item_variable(self) -> bool:
        """Whether one Dirichlet ``item_probs`` holds every item (else a Deterministic)."""
        return len(self.category_groups()) == 1 and not self.ordinal_items

    def free_item_name(self, c: int) -> str:
        return "item_probs" if self.single_item_variable() else f"item_probs_C{c}"

    def only(self, org: int) -> PreparedJoint:
        """The same model's data for organisation ``org`` (position in ``orgs``) alone: its
        rating rows and answers, the fitted EM solution unchanged (for one LOO unit)."""
        d, rows = self.design, np.flatnonzero(self.org_of_row == org)
        group = d.groups[0]
        one = replace(group.group, levels=(group.group.levels[org],), codes=np.zeros(rows.size, int))
        slopes = None if group.slopes is None else group.slopes.iloc[rows]
        design = replace(
            d, y=d.y[rows], X=d.X.iloc[rows], groups=(replace(group, group=one, slopes=slopes),),
            period=None if d.period is None else replace(d.period, codes=d.period.codes[rows]),
            lowest=None if d.lowest is None else np.asarray(d.lowest)[rows],
            weights=None if d.weights is None else d.weights[rows],
            rows=None if d.rows is None else d.rows.iloc[rows])
        r = self.responses
        responses = replace(r, orgs=(r.orgs[org],), codes=r.codes[[org]],
                            weights=None if r.weights is None else r.weights[[org]], covariates=None)
        return replace(self, design=design, responses=responses, org_of_row=np.zeros(rows.size, int),
                       likert=None if self.likert is None else self.likert[[org]],
                       types=self.types[org:org + 1] if self.types else ())

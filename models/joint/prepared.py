"""What the joint model is fitted to: ``PreparedJoint`` (ratings design, the same
organisations' item answers, the EM solution, whose classes ``fit_em`` orders by use), and
``prepare_joint``, which makes it from a study (``JointModel.prepare``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from carestar.design import RegressionDesign
from carestar.errors import ConfigError, DataError
from carestar.item_responses import ItemResponses, check_n_classes
from carestar.study import Study
from carestar.study_design import ratings_design
from models.joint.likert import likert_codes
from models.lca import EMFit, fit_em

if TYPE_CHECKING:
    from models.joint.model import JointModel


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


def prepare_joint(joint: JointModel, data: Any) -> PreparedJoint:
    """``JointModel.prepare``: the config checked against the study, the rated
    organisations' answers, the EM solution of the classes (ordered by use)."""
    if not isinstance(data, Study):
        raise ConfigError(f"model=joint needs study data (data=synthetic or data=study), "
                          f"got {type(data).__name__}")
    predictors = ((["strategy_type"] if joint.strategy == "type"
                   and "strategy" in joint.blocks else [])
                  + (joint.resources if "resources" in joint.blocks else []))
    design = ratings_design(data, predictors, joint.reference, year=None,
                            lowest_stars=joint.lowest_stars, standardise=True)
    rated = [str(o) for o in design.groups[0].group.levels]
    table = data.local_practice
    table = table[table["org"].astype(str).isin(rated)]
    resp = ItemResponses.from_study(SimpleNamespace(local_practice=table), joint.items)
    index = {str(o): i for i, o in enumerate(resp.orgs)}
    missing = [o for o in rated if o not in index]
    if missing:
        raise DataError(
            f"{len(missing)} rated organisation(s) have no local practice answers",
            file="local_practice.csv", column="org",
            expected="local practice answers for every organisation in ratings.csv",
            hint="orgs: " + ", ".join(missing[:10]),
        )
    order = np.array([index[o] for o in rated])
    resp = replace(resp, orgs=tuple(rated), codes=resp.codes[order])
    check_n_classes(resp, joint.n_classes)
    em = fit_em(resp, joint.n_classes, seed=joint.seed, n_init=joint.em_starts)  # ordered by use
    org_of_row = design.groups[0].group.codes.astype(int)
    strat = data.strategy.assign(org=data.strategy["org"].astype(str)).set_index("org")
    types = tuple(strat["strategy_type"].reindex(rated).astype(str))
    likert = None
    if joint.strategy == "latent":
        likert = likert_codes(strat, rated)
    ordinal = tuple(j for j, kind in enumerate(resp.kinds) if joint.ordinal_emission
                    and kind == "ordinal" and resp.n_categories[j] > 2)
    if len({resp.n_categories[j] for j in ordinal}) > 1:
        raise ConfigError("model.ordinal_emission needs the ordinal items to share a scale"
                          f" (categories per item: {[resp.n_categories[j] for j in ordinal]})")
    return PreparedJoint(design, resp, org_of_row, joint.n_classes, em, data.truth, likert,
                         types, ordinal)

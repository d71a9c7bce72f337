"""What a joint run reports: class effects (with the truth on simulated data), class
membership, and the report.md section."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from carestar.report import count
from models.joint.prepared import PreparedJoint
from models.lca import class_use

if TYPE_CHECKING:
    from models.joint.model import JointModel


def truth_class_effects(truth: dict[str, Any] | None, n_classes: int) -> np.ndarray | None:
    """True class effects relative to the truth's reference class, ordered by use."""
    if not truth or "ratings" not in truth:
        return None
    effects = truth["ratings"]["class_effects"]
    classes = truth["local_practice"]["classes"]
    if len(classes) != n_classes:
        return None
    probs = truth["local_practice"]["item_probabilities"]
    use = []
    for c in classes:
        scores = [np.dot(np.arange(len(p[c])), p[c]) / (len(p[c]) - 1)
                  for p in probs["degree_of_use"].values()]
        scores += [p[c] for p in probs["used"].values()]
        use.append(np.mean(scores))
    ordered = [classes[i] for i in np.argsort(use)]
    ref = effects[ordered[0]]
    return np.array([effects[c] - ref for c in ordered])


def draws_table(g: np.ndarray, prep: PreparedJoint) -> pd.DataFrame:
    """Mean, SD, 90% interval of class effect draws (K, S); truth and coverage if known."""
    t = pd.DataFrame({
        "class": prep.class_labels,
        "mean": g.mean(axis=1),
        "sd": g.std(axis=1),
        "q05": np.quantile(g, 0.05, axis=1),
        "q95": np.quantile(g, 0.95, axis=1),
    })
    truth = truth_class_effects(prep.truth, prep.n_classes)
    if truth is not None:
        t["truth"] = truth
        t["covered"] = (t["q05"] <= truth) & (truth <= t["q95"])
    return t


def class_effect_table(idata: xr.DataTree, prep: PreparedJoint) -> pd.DataFrame:
    post = idata["posterior"]
    t = draws_table(post["class_effects"].stack(sample=("chain", "draw")).values, prep)
    t.insert(1, "use", class_use(post["item_probs"].mean(("chain", "draw")).values,
                                 prep.responses.n_categories))
    t.insert(2, "share", post["class_shares"].mean(("chain", "draw")).values)
    return t


def membership_table(idata: xr.DataTree, prep: PreparedJoint) -> pd.DataFrame:
    p = idata["posterior"]["org_class_probs"].mean(("chain", "draw")).values
    out = pd.DataFrame(p, columns=[f"p_class_{k}" for k in prep.class_labels])
    out.insert(0, "org", prep.orgs)
    out["modal_class"] = np.array(prep.class_labels)[p.argmax(axis=1)]
    out["em_modal_class"] = np.array(prep.class_labels)[prep.em.posterior.argmax(axis=1)]
    return out


def report_section(model: JointModel, idata: xr.DataTree, prep: PreparedJoint,
                   all_blocks: tuple[str, ...]) -> str:
    """Class effects by class (use, share, interval, truth), nested-model note, agreement."""
    t = class_effect_table(idata, prep)
    agree = model.chain_agreement(idata)
    strategy = ("latent strategy stances (Likert items)" if model.strategy == "latent"
                else "strategy type")
    lines = [
        f"## Joint model: {count(prep.n_classes, 'latent class', 'latent classes')} of local practice"
        f" ({prep.responses.n_item} items) + {strategy} + resources -> stars"
        f" ({prep.design.n} ratings of {prep.responses.n_org} organisations, {model.link} link)",
        "",
        "Class 1 (lowest use of local practice) is the reference of the class effects.",
        *([] if set(model.blocks) == set(all_blocks) else [
            "", f"Nested model: only {', '.join(model.blocks) or 'no driver block'} enter(s)"
            f" the rating (`model.blocks`); {', '.join(model.fixed_at_zero()) or 'nothing'}"
            " fixed at 0, left-out predictors dropped."]),
        "",
        "| class | use (0-1) | share | class effect (latent scale) | 90% interval |"
        + (" truth |" if "truth" in t else ""),
        "|---|---|---|---|---|" + ("---|" if "truth" in t else ""),
    ]
    for row in t.to_dict("records"):
        truth = f" {row['truth']:.2f} |" if "truth" in t else ""
        lines.append(f"| {row['class']} | {row['use']:.2f} | {row['share']:.2f} |"
                     f" {row['mean']:.2f} | {row['q05']:.2f} to {row['q95']:.2f} |{truth}")
    lines += [
        "",
        f"Chains agree after relabelling: **{'yes' if agree['chains_agree'] else 'NO'}**"
        f" (mean lp per chain {agree['chain_mean_lp']}).",
        "",
        "See `tables/drivers_variance.csv` for how much of the between-council variation"
        " each block explains.",
    ]
    return "\n".join(lines)

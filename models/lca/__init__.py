"""Bayesian latent class analysis of local practice items (``model=lca``).

The model and its math are in ``models.lca.model`` (``LatentClassModel``). One job per module:

* ``model``: ``LatentClassModel``: prepare, build, postprocess, diagnostics;
* ``graph``: the PyMC graph (``LatentClassModel.build``);
* ``data``: item responses (and covariates) from a study or CSV, ``PreparedLCA``, ``LCATruth``;
* ``covariates``: covariates of class membership as a formula right-hand side;
* ``em``: maximum likelihood by EM (StepMix), ``fit_em`` -> ``EMFit`` (starts until two
  reach the best; classes ordered by use, class 1 = lowest);
* ``likelihood``: the likelihood in plain numpy (what the PyMC graph is tested against);
* ``initial_values``: the EM solution as every chain's start;
* ``relabelling``: every draw put on the EM labelling;
* ``posterior``: per-draw log likelihood (LOO units), class membership, chain agreement,
  the log likelihood at the mode, the posterior against the EM point;
* ``summaries``: tables, fit statistics, truth recovery, the report section;
* ``figures``: item profiles by class (the study's Figure 2), class membership;
* ``simulate``: responses drawn from known classes.
"""

from models.lca.data import LCATruth, PreparedLCA, item_responses, with_study_covariates
from models.lca.em import EMFit, class_use, design_matrix, fit_em
from models.lca.initial_values import (EPS, interior_item_probs, interior_shares,
                                       ordinal_initial_values)
from models.lca.likelihood import (class_log_probs, item_log_lik, ordinal_probs,
                                   responsibilities, row_loglik)
from models.lca.model import LatentClassModel
from models.lca.posterior import MAX_LOO_UNITS, loo_units
from models.lca.relabelling import class_features, permutations_to_em
from models.lca.simulate import simulate
from models.lca.summaries import relative_entropy

__all__ = [
    "EPS",
    "MAX_LOO_UNITS",
    "EMFit",
    "LCATruth",
    "LatentClassModel",
    "PreparedLCA",
    "class_features",
    "class_use",
    "class_log_probs",
    "design_matrix",
    "fit_em",
    "interior_item_probs",
    "interior_shares",
    "item_log_lik",
    "item_responses",
    "loo_units",
    "ordinal_initial_values",
    "ordinal_probs",
    "permutations_to_em",
    "relative_entropy",
    "responsibilities",
    "row_loglik",
    "simulate",
    "with_study_covariates",
]

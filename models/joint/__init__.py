"""The joint model (``model=joint``): latent classes of local practice, strategy and
resources behind the star ratings, the class summed out per organisation.

The model and its math are in ``models.joint.model`` (``JointModel``). One job per module:

* ``model``: ``JointModel``: prepare, build, initial values, postprocess;
* ``graph``: the PyMC graph (``JointModel.build``);
* ``prepared``: ``PreparedJoint``, made from a study by ``prepare_joint``
  (``JointModel.prepare``); classes ordered by use of local practice;
* ``likelihood``: the likelihood in plain numpy (what the PyMC graph is tested against)
  and each organisation's LOO units;
* ``likert``: strategy as latent stances measured by the Likert items;
* ``relabelling``: draws on the EM labelling, class 1 the reference again;
* ``summaries``: class effect and membership tables, the report section;
* ``three_step``: the classify-then-regress shortcut (``experiments/three_step``);
* ``figures``: the poster's Figure 1, item profiles by class, drivers of the rating.

The latent class part comes from ``models.lca`` (public names only).
"""

from models.joint.likelihood import (LOG_LIKELIHOODS, joint_components, rating_log_lik,
                                     unit_log_likelihoods)
from models.joint.likert import (LATENT_NAMES, LIKERT_LEVELS, likert_codes,
                                 likert_initial_cutpoints, likert_log_lik)
from models.joint.model import BLOCKS, STRATEGY_MODES, JointModel
from models.joint.prepared import PreparedJoint
from models.lca import class_use
from models.joint.relabelling import chain_agreement, relabel_to_em, rereference
from models.joint.summaries import (class_effect_table, draws_table, membership_table,
                                    truth_class_effects)
from models.joint.three_step import (THREE_STEP_TABLES, classification_agreement,
                                     fit_three_step, order_clusters_by_use,
                                     three_step_class_effects, three_step_classes,
                                     three_step_design, three_step_methods, three_step_tables,
                                     true_classes)

__all__ = [
    "BLOCKS",
    "LATENT_NAMES",
    "LIKERT_LEVELS",
    "LOG_LIKELIHOODS",
    "STRATEGY_MODES",
    "THREE_STEP_TABLES",
    "JointModel",
    "PreparedJoint",
    "class_effect_table",
    "chain_agreement",
    "class_use",
    "classification_agreement",
    "draws_table",
    "fit_three_step",
    "joint_components",
    "likert_codes",
    "likert_initial_cutpoints",
    "likert_log_lik",
    "membership_table",
    "order_clusters_by_use",
    "rating_log_lik",
    "relabel_to_em",
    "rereference",
    "three_step_class_effects",
    "three_step_classes",
    "three_step_design",
    "three_step_methods",
    "three_step_tables",
    "true_classes",
    "truth_class_effects",
    "unit_log_likelihoods",
]

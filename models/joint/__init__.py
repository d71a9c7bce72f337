"""The joint model (``model=joint``); the model and its math: ``models.joint.model``."""

from models.joint.model import (BLOCKS, LATENT_NAMES, LIKERT_LEVELS, LOG_LIKELIHOODS,
                                STRATEGY_MODES, THREE_STEP_TABLES, JointModel, PreparedJoint,
                                class_effect_table, class_use, classification_agreement,
                                draws_table, fit_three_step, joint_components, likert_codes,
                                likert_initial_cutpoints, likert_log_lik, membership_table,
                                order_by_use, order_clusters_by_use, rating_log_lik,
                                rereference, three_step_class_effects, three_step_classes,
                                three_step_design, three_step_methods, three_step_tables,
                                true_classes, truth_class_effects)

__all__ = ["BLOCKS", "LATENT_NAMES", "LIKERT_LEVELS", "LOG_LIKELIHOODS", "STRATEGY_MODES",
           "THREE_STEP_TABLES", "JointModel", "PreparedJoint", "class_effect_table",
           "class_use", "classification_agreement", "draws_table", "fit_three_step",
           "joint_components", "likert_codes", "likert_initial_cutpoints", "likert_log_lik",
           "membership_table", "order_by_use", "order_clusters_by_use", "rating_log_lik",
           "rereference", "three_step_class_effects", "three_step_classes",
           "three_step_design", "three_step_methods", "three_step_tables", "true_classes",
           "truth_class_effects"]

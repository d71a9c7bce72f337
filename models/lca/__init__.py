"""Bayesian latent class analysis (``model=lca``); the model and its math: ``models.lca.model``."""

from models.lca.model import (EPS, MAX_LOO_UNITS, EMFit, LatentClassModel, LCATruth, PreparedLCA,
                              _features, _interior, _interior_simplex, _units, class_log_probs,
                              design_matrix, fit_em, item_log_lik, ordinal_probs,
                              relative_entropy, responsibilities, row_loglik, simulate)

__all__ = ["EPS", "MAX_LOO_UNITS", "EMFit", "LCATruth", "LatentClassModel", "PreparedLCA",
           "class_log_probs", "design_matrix", "fit_em", "item_log_lik", "ordinal_probs",
           "relative_entropy", "responsibilities", "row_loglik", "simulate"]

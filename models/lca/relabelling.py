"""Label switching: every posterior draw put on the EM solution's labelling.

The matching features of a class are its item profiles with its share appended; the
Hungarian matching itself is ``carestar.relabel``. The joint model relabels the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from carestar import relabel

if TYPE_CHECKING:
    from models.lca.em import EMFit


def class_features(probs: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """(chain, draw, K, F) matching features: item profiles and class shares."""
    a = probs.reshape(probs.shape[:3] + (-1,))
    return np.concatenate([a, shares[..., None]], axis=-1)


def permutations_to_em(post: xr.Dataset, em: EMFit) -> np.ndarray:
    """(chain, draw, K) permutation of every draw's classes onto the EM labelling."""
    feats = class_features(post["item_probs"].values, post["class_shares"].values)
    ref = class_features(em.probs[None, None], em.shares[None, None])[0, 0]
    return relabel.draw_permutations(feats, ref)


def relabel_to_em(post: xr.Dataset, em: EMFit, n_classes: int
                  ) -> tuple[xr.Dataset, dict[str, Any]]:
    """The draws relabelled to the EM labelling (class coefficients re-referenced to the
    new class 1), and how many draws moved (``relabel.n_switched``)."""
    if n_classes == 1:
        return post, relabel.n_switched(np.zeros(post["class_shares"].shape, dtype=int))
    perms = permutations_to_em(post, em)
    post = relabel.relabel_dataset(post, perms)
    if "class_coefs_full" in post:
        full = post["class_coefs_full"]
        full = full - full.isel({"class": 0})
        post["class_coefs_full"] = full
        post["class_coefs"] = post["class_coefs"].copy(
            data=full.isel({"class": slice(1, None)}).values)
    return post, relabel.n_switched(perms)

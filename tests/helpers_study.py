"""Shared helpers for the study tests: the synthetic config as Hydra would pass it."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

SYNTHETIC_YAML = Path(__file__).resolve().parents[1] / "conf" / "data" / "synthetic.yaml"


def synthetic_config(seed: int = 1) -> dict[str, Any]:
    """The keyword arguments Hydra gives ``load_synthetic`` (``_convert_: all``), seed set."""
    cfg = OmegaConf.load(SYNTHETIC_YAML)
    cfg.seed = seed
    resolved = OmegaConf.to_container(cfg, resolve=True)
    return {k: v for k, v in resolved.items() if not k.startswith("_")}


@cache
def synthetic_study(seed: int = 1):
    """A synthetic study, built once per seed per test session."""
    from carestar.synthetic import load_synthetic

    return load_synthetic(**synthetic_config(seed))

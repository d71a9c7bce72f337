"""The composed config checked before any work: what it may instantiate, and its settings.

- ``_target_`` may name only carestar's own code (``carestar.``, ``models.``) or Hydra's
  launcher plugins (``hydra_plugins.``): a config is a command line, and a command line
  must not be able to call ``builtins.open`` or ``shutil.copyfile``.
- a model setting with a fixed set of values (``model.family``, ``model.link``) is one of
  them: the model's class lists them in ``CONFIG_CHOICES`` (found through its ``_target_``,
  not by name);
- ``seed``, the sampler's counts and ``target_accept``, and the diagnostic gates have a
  type and a range; a key under ``sampler`` or ``diagnostics`` that nothing reads (a
  misspelling: ``++sampler.drawz=10``) is refused with the keys that are read.

Every problem is a ``ConfigError`` (exit status 2), raised before any data is read.
"""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from carestar.errors import ConfigError
from carestar.jax_devices import CHAIN_METHODS

ALLOWED_TARGETS = ("carestar.", "models.", "hydra_plugins.")

SAMPLER_KEYS = {
    "name": "the sampler's name (pymc, nutpie, numpyro, smoke, map, mle)",
    "nuts_sampler": "pymc, nutpie or numpyro",
    "draws": "a whole number > 0",
    "tune": "a whole number >= 0",
    "chains": "a whole number > 0",
    "cores": "a whole number > 0",
    "target_accept": "a number strictly between 0 and 1",
    "progressbar": "true, false or auto",
    "backend": "nutpie's backend: numba or jax",
    "adaptation": "nutpie's mass matrix adaptation: diag, low_rank, draw_diag or flow",
    "chain_method": "numpyro's: auto, parallel, sequential or vectorized",
    "posterior_predictive": "true or false",
    "quadrature_nodes": "a whole number > 0 (sampler=mle)",
}
NUTPIE_ADAPTATIONS = ("diag", "low_rank", "draw_diag", "flow")
POSITIVE_INTEGERS = ("draws", "chains", "cores", "quadrature_nodes")
DIAGNOSTICS_KEYS = {
    "max_rhat": "a number >= 1",
    "min_ess_bulk": "a number >= 0",
    "min_ess_tail": "a number >= 0",
    "max_divergences": "a whole number >= 0",
    "min_bfmi": "a number >= 0",
    "max_pareto_k": "a number > 0",
    "max_moment_matched": "a whole number >= 0",
}


def check_config(cfg: DictConfig) -> None:
    """Refuse a config that instantiates foreign code or holds a setting out of range."""
    check_targets(cfg)
    check_seed(cfg.get("seed"))
    if "model" in cfg:
        check_model_choices(cfg.model)
    if "sampler" in cfg:
        check_sampler_settings(cfg.sampler)
    if "diagnostics" in cfg:
        check_diagnostics_settings(cfg.diagnostics)


def check_targets(node: Any, path: str = "") -> None:
    """Every ``_target_`` anywhere in ``node`` names carestar's code or a launcher plugin."""
    if isinstance(node, DictConfig):
        for key in node.keys():
            where = f"{path}.{key}" if path else str(key)
            value = node._get_node(key)
            if key == "_target_":
                target = str(value._value())
                if not target.startswith(ALLOWED_TARGETS):
                    raise ConfigError(
                        f"{where}={target} is refused: a config may instantiate only carestar's own "
                        f"classes and functions (_target_ starting with {', '.join(ALLOWED_TARGETS)})"
                    )
            elif isinstance(value, (DictConfig, ListConfig)):
                check_targets(value, where)
    elif isinstance(node, ListConfig):
        for i, item in enumerate(node):
            check_targets(item, f"{path}[{i}]")


def check_model_choices(model: DictConfig) -> None:
    """Each setting the model's class lists in ``CONFIG_CHOICES`` holds one of its values."""
    target = model.get("_target_") if isinstance(model, DictConfig) else None
    if not target:
        return
    from hydra.utils import get_class

    try:
        choices = getattr(get_class(str(target)), "CONFIG_CHOICES", {})
    except Exception:  # an unknown target is Hydra's error to report, at instantiation
        return
    for key, allowed in choices.items():
        if key in model and model.get(key) not in allowed:
            raise ConfigError(f"model.{key}={model.get(key)!r} is refused: expected one of "
                              f"{', '.join(map(str, allowed))}")


def check_seed(seed: Any) -> None:
    if not _is_integer(seed) or int(seed) < 0:
        raise ConfigError(f"seed={seed!r} is not a seed: expected a whole number >= 0, e.g. seed=20071101")


def check_sampler_settings(sampler: DictConfig) -> None:
    settings = OmegaConf.to_container(sampler, resolve=True)
    _refuse_unknown("sampler", settings, SAMPLER_KEYS)
    for key in POSITIVE_INTEGERS:
        if key in settings and (not _is_integer(settings[key]) or int(settings[key]) <= 0):
            _bad("sampler", key, settings[key], SAMPLER_KEYS[key])
    if "tune" in settings and (not _is_integer(settings["tune"]) or int(settings["tune"]) < 0):
        _bad("sampler", "tune", settings["tune"], SAMPLER_KEYS["tune"])
    if "target_accept" in settings:
        value = settings["target_accept"]
        if not _is_number(value) or not 0 < float(value) < 1:
            _bad("sampler", "target_accept", value, SAMPLER_KEYS["target_accept"])
    if "progressbar" in settings and settings["progressbar"] not in (True, False, "auto"):
        _bad("sampler", "progressbar", settings["progressbar"], SAMPLER_KEYS["progressbar"])
    if "adaptation" in settings and settings["adaptation"] not in NUTPIE_ADAPTATIONS:
        _bad("sampler", "adaptation", settings["adaptation"], SAMPLER_KEYS["adaptation"])
    if "chain_method" in settings and settings["chain_method"] not in CHAIN_METHODS:
        _bad("sampler", "chain_method", settings["chain_method"], SAMPLER_KEYS["chain_method"])
    _refuse_for_other_samplers(settings)
    if "posterior_predictive" in settings and not isinstance(settings["posterior_predictive"], bool):
        _bad("sampler", "posterior_predictive", settings["posterior_predictive"], "true or false")


def _refuse_for_other_samplers(settings: dict[str, Any]) -> None:
    """A setting only one NUTS sampler reads, given to another, would be ignored in silence."""
    nuts_sampler = settings.get("nuts_sampler")
    for key, only, default in (("adaptation", "nutpie", None), ("chain_method", "numpyro", "auto")):
        if key in settings and settings[key] != default and nuts_sampler != only:
            raise ConfigError(f"sampler.{key}={settings[key]!r} is read by {only} alone, and this sampler is "
                              f"nuts_sampler={nuts_sampler!r}: drop it, or use sampler={only}")


def check_diagnostics_settings(diagnostics: DictConfig) -> None:
    settings = OmegaConf.to_container(diagnostics, resolve=True)
    _refuse_unknown("diagnostics", settings, DIAGNOSTICS_KEYS)
    lower = {"max_rhat": 1.0, "max_pareto_k": 0.0}
    for key, value in settings.items():
        if key in ("max_divergences", "max_moment_matched"):
            ok = _is_integer(value) and int(value) >= 0
        elif key == "max_pareto_k":
            ok = _is_number(value) and float(value) > 0
        else:
            ok = _is_number(value) and float(value) >= lower.get(key, 0.0)
        if not ok:
            _bad("diagnostics", key, value, DIAGNOSTICS_KEYS[key])


def _refuse_unknown(group: str, settings: dict[str, Any], known: dict[str, str]) -> None:
    unknown = [key for key in settings if key not in known]
    if unknown:
        raise ConfigError(
            f"{group}.{unknown[0]} is not a {group} setting (nothing reads it); "
            f"the {group} settings are: {', '.join(known)}"
        )


def _bad(group: str, key: str, value: Any, expected: str) -> None:
    raise ConfigError(f"{group}.{key}={value!r} is refused: expected {expected}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_integer(value: Any) -> bool:
    return _is_number(value) and float(value).is_integer()

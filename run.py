"""carestar's one entry point: ``python run.py model=ordinal`` (see README.md)."""

import logging
import sys

import hydra
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue

from carestar.errors import EXIT_USER_ERROR, CarestarError, ConfigError


def user_error(error: BaseException) -> CarestarError | None:
    """The ``CarestarError`` behind ``error``: Hydra's ``instantiate`` wraps what a
    ``_target_`` raises (a bad data file, a bad model setting) in its own exception.
    A required setting left as ``???`` (``data=study`` without ``data.dir``) is one too."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, CarestarError):
            return error
        if isinstance(error, MissingMandatoryValue):
            return missing_setting(str(error.full_key))
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def missing_setting(key: str) -> ConfigError:
    """``data.dir`` is required by data=study: say so, and how to set it."""
    from hydra.core.hydra_config import HydraConfig

    group = key.split(".")[0]
    choice = HydraConfig.get().runtime.choices.get(group) if HydraConfig.initialized() else None
    if choice:
        return ConfigError(f"{group}={choice} needs {key}: add {key}=... to the command line "
                           f"(see conf/{group}/{choice}.yaml)")
    return ConfigError(f"{key} must be set: add {key}=... to the command line")


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    for noisy in ("pytensor", "pytensor.configparser", "jax", "arviz", "arviz_stats", "arviz_base", "arviz_plots"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from carestar.tasks import run_task

    try:
        run_task(cfg)
    except Exception as exc:
        error = user_error(exc)
        if error is None:
            raise
        logging.getLogger("carestar").error("%s", error)
        print(f"carestar: error: {error}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


if __name__ == "__main__":
    main()

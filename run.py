"""carestar's one entry point: ``python run.py model=ordinal`` (see README.md)."""

import logging
import sys

import hydra
from omegaconf import DictConfig

from carestar.errors import EXIT_USER_ERROR, CarestarError


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    for noisy in ("pytensor", "pytensor.configparser", "jax", "arviz", "arviz_stats", "arviz_base", "arviz_plots"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from carestar.tasks import run_task

    try:
        run_task(cfg)
    except CarestarError as error:
        logging.getLogger("carestar").error("%s", error)
        print(f"carestar: error: {error}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


if __name__ == "__main__":
    main()

"""carestar's one entry point: ``python run.py model=ordinal`` (see README.md)."""

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from carestar.errors import EXIT_USER_ERROR, user_error

failed_jobs: list[str] = []


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    for noisy in ("pytensor", "pytensor.configparser", "jax", "arviz", "arviz_stats", "arviz_base", "arviz_plots"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from carestar.tasks import run_task

    log = logging.getLogger("carestar")
    try:
        run_task(cfg)
    except Exception as exc:
        error = user_error(exc)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            # one failed job is logged (its run has no run.json) and the sweep goes on
            log.error("this job failed: %s", error or exc, exc_info=error is None)
            failed_jobs.append(HydraConfig.get().runtime.output_dir)
            return
        if error is None:
            raise
        print(f"carestar: error: {error}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


if __name__ == "__main__":
    main()
    if failed_jobs:
        print(f"carestar: {len(failed_jobs)} job(s) of the sweep failed: {', '.join(failed_jobs)}", file=sys.stderr)
        sys.exit(1)

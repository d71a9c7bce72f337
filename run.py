"""carestar's one entry point: ``python run.py model=ordinal`` (see README.md)."""

import gc

# The libraries' imports and the model compilers (PyTensor, numba) allocate millions of
# objects: with Python's default thresholds, collecting them took about 3 s of a 35 s run
# and 0.5 s of the imports; about 1 s in all with these.
gc.set_threshold(10_000, 10, 10)

import logging  # noqa: E402
import sys  # noqa: E402

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from carestar.errors import EXIT_GATES_FAILED, EXIT_NOT_REPRODUCED, EXIT_USER_ERROR, user_error  # noqa: E402
from carestar.interrupts import RunInterrupted  # noqa: E402

failed_jobs: list[str] = []
gates_failed: list[str] = []  # runs written, marked failed: exit status 3 (a sweep: unless a job failed)
not_reproduced: list[str] = []  # task=reproduce did not match: exit status 4


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    for noisy in ("pytensor", "pytensor.configparser", "jax", "arviz", "arviz_stats", "arviz_base", "arviz_plots"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from carestar.tasks import run_task

    log = logging.getLogger("carestar")
    try:
        result = run_task(cfg)
        if result.get("diagnostics_passed") is False:
            gates_failed.append(HydraConfig.get().runtime.output_dir)
        if result.get("reproduced") is False:
            not_reproduced.append(HydraConfig.get().runtime.output_dir)
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
    try:
        main()
    except RunInterrupted as stop:  # the run is marked interrupted (carestar.interrupts)
        sys.exit(stop.exit_status)
    # The interpreter's final collection would traverse the millions of objects the model
    # compilers left behind (about 2 s); the run's files are written and closed by now.
    gc.freeze()
    if gates_failed:
        print(f"carestar: {len(gates_failed)} run(s) failed their diagnostic gates (written, marked failed): "
              f"{', '.join(gates_failed)}", file=sys.stderr)
    if failed_jobs:
        print(f"carestar: {len(failed_jobs)} job(s) of the sweep failed: {', '.join(failed_jobs)}", file=sys.stderr)
        sys.exit(1)
    if gates_failed:
        sys.exit(EXIT_GATES_FAILED)
    if not_reproduced:
        sys.exit(EXIT_NOT_REPRODUCED)

"""carestar's one entry point: ``python run.py model=ordinal`` (see README.md)."""

import gc

# The libraries' imports and the model compilers (PyTensor, numba) allocate millions of
# objects: with Python's default thresholds, collecting them took about 3 s of a 35 s run
# and 0.5 s of the imports; about 1 s in all with these.
gc.set_threshold(10_000, 10, 10)

import logging  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from carestar.errors import EXIT_USER_ERROR, user_error  # noqa: E402
from carestar.interrupts import RunInterrupted  # noqa: E402

# A single run's verdicts (a sweep's are read back from its job folders: carestar.sweep_outcome)
gates_failed: list[str] = []  # runs written, marked failed: exit status 3
not_reproduced: list[str] = []  # task=reproduce did not match: exit status 4


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    for noisy in ("pytensor", "pytensor.configparser", "jax", "arviz", "arviz_stats", "arviz_base", "arviz_plots"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from carestar import sweep_outcome
    from carestar.launchers import runs_in_parallel

    hydra_cfg = HydraConfig.get()
    job_dir = Path(hydra_cfg.runtime.output_dir)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    if in_sweep:
        sweep_outcome.forget(job_dir)
    if runs_in_parallel(hydra_cfg):
        from carestar.job_caches import isolate_compile_caches

        isolate_compile_caches()  # before carestar.tasks imports PyTensor
    from carestar.tasks import run_task

    log = logging.getLogger("carestar")
    try:
        result = run_task(cfg)
        if in_sweep:
            sweep_outcome.record(job_dir, result)
            return
        if result.get("diagnostics_passed") is False:
            gates_failed.append(str(job_dir))
        if result.get("reproduced") is False:
            not_reproduced.append(str(job_dir))
    except Exception as exc:
        error = user_error(exc)
        if in_sweep:
            # one failed job is logged (its run has no run.json) and the sweep goes on
            log.error("this job failed: %s", error or exc, exc_info=error is None)
            sweep_outcome.record(job_dir, None)
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
    from carestar import sweep_outcome

    outcomes = sweep_outcome.collected or sweep_outcome.Outcomes(gates_failed=gates_failed,
                                                                 not_reproduced=not_reproduced)
    for line in outcomes.messages():
        print(line, file=sys.stderr)
    sys.exit(outcomes.exit_status())

"""A sweep's exit status, whatever launcher ran its jobs.

Under Hydra's basic launcher every job runs in ``run.py``'s own process; under the joblib
and submitit launchers each runs in another process (a worker, a Slurm job), where nothing
it keeps in memory reaches the process that exits. So each job writes its outcome into its
own folder, ``<job>/.hydra/outcome.json`` (``record``: ``{"outcome": "complete" | "failed",
"diagnostics_passed": ..., "reproduced": ...}``), removing any earlier one first, and when
the sweep ends the :class:`SweepOutcome` callback (``hydra.callbacks.sweep_outcome``) reads
every job folder back in the launching process (``collected``). A job folder without an
outcome (killed, or never started) counts as failed.

The exit status (``exit_status``): 1 if a job failed, else 3 if a run failed its
diagnostic gates, else 4 if a reproduction did not match, else 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from carestar.errors import EXIT_GATES_FAILED, EXIT_JOB_FAILED, EXIT_NOT_REPRODUCED

OUTCOME = Path(".hydra") / "outcome.json"


@dataclass
class Outcomes:
    """What the jobs of one sweep recorded, job folders by kind."""

    failed: list[str] = field(default_factory=list)
    gates_failed: list[str] = field(default_factory=list)
    not_reproduced: list[str] = field(default_factory=list)

    def exit_status(self) -> int:
        if self.failed:
            return EXIT_JOB_FAILED
        if self.gates_failed:
            return EXIT_GATES_FAILED
        if self.not_reproduced:
            return EXIT_NOT_REPRODUCED
        return 0

    def messages(self) -> list[str]:
        lines = []
        if self.gates_failed:
            lines.append(f"carestar: {len(self.gates_failed)} run(s) failed their diagnostic gates "
                         f"(written, marked failed): {', '.join(self.gates_failed)}")
        if self.failed:
            lines.append(f"carestar: {len(self.failed)} job(s) of the sweep failed: {', '.join(self.failed)}")
        if self.not_reproduced:
            lines.append(f"carestar: {len(self.not_reproduced)} reproduction(s) did not match: "
                         f"{', '.join(self.not_reproduced)}")
        return lines


collected: Outcomes | None = None  # set in the launching process when a sweep ends


def forget(job_dir: Path) -> None:
    """Remove an earlier outcome from a job folder before the job does any work."""
    (job_dir / OUTCOME).unlink(missing_ok=True)


def record(job_dir: Path, result: dict[str, Any] | None) -> None:
    """Write the job's outcome: ``result`` is what the task returned, ``None`` if it failed."""
    outcome = {"outcome": "failed"} if result is None else {
        "outcome": "complete",
        "diagnostics_passed": result.get("diagnostics_passed"),
        "reproduced": result.get("reproduced"),
    }
    path = job_dir / OUTCOME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(outcome) + "\n")


def read_sweep(sweep_dir: Path) -> Outcomes:
    """Every job folder of a sweep (a sub-folder with Hydra's ``.hydra/``), by outcome."""
    outcomes = Outcomes()
    for job in sorted((p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()), key=_job_order):
        try:
            outcome = json.loads((job / OUTCOME).read_text())
        except (OSError, json.JSONDecodeError):
            outcome = {"outcome": "failed"}
        if outcome.get("outcome") != "complete":
            outcomes.failed.append(str(job))
        elif outcome.get("diagnostics_passed") is False:
            outcomes.gates_failed.append(str(job))
        elif outcome.get("reproduced") is False:
            outcomes.not_reproduced.append(str(job))
    return outcomes


def _job_order(job: Path) -> tuple[int, str]:
    return (int(job.name), "") if job.name.isdigit() else (1 << 30, job.name)


class SweepOutcome(Callback):
    """Hydra callback: when a sweep ends, read its jobs' outcomes back (``collected``)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global collected
        collected = read_sweep(Path(str(config.hydra.sweep.dir)))

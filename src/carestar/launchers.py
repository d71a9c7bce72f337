"""Sweeps through Hydra's launcher plugins: which launchers run jobs in parallel, and the
resolver that sizes a parallel sweep from the sampler.

``hydra/launcher=parallel`` (``conf/hydra/launcher/parallel.yaml``: hydra-joblib-launcher)
runs as many jobs at once as the machine has cores for (``${carestar.parallel_jobs:
${sampler.cores}}``: the CPU count divided by the cores each job's sampler uses);
``hydra/launcher=slurm`` (hydra-submitit-launcher) submits one Slurm job per sweep point
with ``cpus_per_task`` from the sampler; ``hydra/launcher=submitit_local`` runs them as
local processes. Every job of these launchers gets compile caches of its own
(``carestar.job_caches``) and records its outcome in its folder (``carestar.sweep_outcome``).
"""

from __future__ import annotations

import os
from typing import Any

from omegaconf import OmegaConf

BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


def parallel_jobs(cores_per_job: Any) -> int:
    """How many jobs of ``cores_per_job`` cores fit on this machine at once (at least 1)."""
    cores = max(1, int(cores_per_job or 1))
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, available // cores)


def runs_in_parallel(hydra_cfg: Any) -> bool:
    """Whether this job runs under a launcher other than Hydra's basic (one process) one."""
    target = OmegaConf.select(hydra_cfg, "launcher._target_", default=BASIC_LAUNCHER)
    return target != BASIC_LAUNCHER

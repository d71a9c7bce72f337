"""The OmegaConf resolvers ``conf/config.yaml`` uses, registered when carestar is imported.

* ``${carestar.run_folder:${task},${hydra:runtime.choices.model}}``: where a run is filed
  under ``outputs/``: ``fit/<model>`` for a fit, ``<task>`` for the tasks that are not about
  one model (simulate, compare, select_classes, reproduce, sbc).
* ``${carestar.catalogue:}``: the tasks and config options ``python run.py --help`` lists
  (``carestar.catalogue``).
* ``${carestar.parallel_jobs:${sampler.cores}}``: how many jobs ``hydra/launcher=parallel`` runs
  at once (``carestar.launchers.parallel_jobs``).
"""

from __future__ import annotations

from omegaconf import OmegaConf

MODEL_TASKS = ("fit",)


def run_folder(task: str, model: str) -> str:
    return f"{task}/{model}" if task in MODEL_TASKS else str(task)


def catalogue() -> str:
    from carestar.catalogue import catalogue as text

    return text()


def register() -> None:
    from carestar.launchers import parallel_jobs

    for name, resolver in (("carestar.run_folder", run_folder), ("carestar.catalogue", catalogue),
                           ("carestar.parallel_jobs", parallel_jobs)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)

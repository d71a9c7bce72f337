"""One run per folder: a Hydra callback that guards run and sweep folders before any work.

Hydra writes ``.hydra/`` and the log into a run folder before ``run.py`` gets control, so
the guard runs earlier, as a Hydra callback (``hydra.callbacks.run_folder`` in
``conf/config.yaml``), when the run (or sweep) starts:

- it takes an exclusive lock (``fcntl.flock``) on the folder for the life of the process: a
  second run given the same folder while the first runs is refused;
- it refuses a folder that already holds files (an earlier run's, or the user's own),
  naming it, with exit status 2, unless ``overwrite=true``;
- with ``overwrite=true`` it removes only what an earlier carestar run wrote there: the files
  its ``run.json`` lists, and the staging folder ``_incomplete/``. Anything else is kept.

The default folders (``outputs/fit/<model>/<date_time_microseconds>``, ``outputs/<task>/...``
for the other tasks: ``carestar.resolvers``) are unique anyway.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from carestar.errors import EXIT_USER_ERROR, ConfigError

MANIFEST = "run.json"
STAGING = "_incomplete"
HYDRA_RECORD = (".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml")

_locks: dict[str, int] = {}  # folder -> open descriptor holding its lock (until the process ends)


class RunFolderGuard(Callback):
    """Hydra callback: lock the run (or sweep) folder and refuse one that holds files."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._guard(config, "hydra.run.dir", "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._guard(config, "hydra.sweep.dir", "hydra.sweep.dir")

    def _guard(self, config: DictConfig, key: str, name: str) -> None:
        HydraConfig.instance().set_config(config)  # so that ${hydra:...} in the folder resolves
        folder = Path(str(OmegaConf.select(config, key)))
        try:
            claim(folder, name, overwrite=bool(config.get("overwrite", False)))
        except ConfigError as error:
            print(f"carestar: error: {error}", file=sys.stderr)
            sys.exit(EXIT_USER_ERROR)


def claim(folder: Path, name: str = "the run folder", *, overwrite: bool = False) -> None:
    """Lock ``folder`` for this process and make sure no earlier files are mixed into it."""
    folder.mkdir(parents=True, exist_ok=True)
    lock(folder)
    held = [p.name for p in sorted(folder.iterdir())]
    if not held:
        return
    if not overwrite:
        raise ConfigError(
            f"{name} {folder} already holds files ({', '.join(held[:5])}{', ...' if len(held) > 5 else ''}); "
            "carestar never writes into a folder that holds files: choose another folder, or add "
            "overwrite=true to replace what an earlier carestar run wrote there (other files are kept)"
        )
    for run in [folder, *(p for p in sorted(folder.iterdir()) if p.is_dir())]:  # a sweep: its jobs
        remove_earlier_run(run)


def lock(folder: Path) -> None:
    """An exclusive lock on ``folder``, held until the process ends; refuse if another holds it."""
    key = str(folder.resolve())
    if key in _locks:
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise ConfigError(
            f"{folder} is in use by another carestar run (it holds the folder's lock); "
            "choose another folder or wait for that run to end"
        ) from None
    _locks[key] = descriptor


def remove_earlier_run(folder: Path) -> list[str]:
    """Remove the files an earlier carestar run in ``folder`` listed in its ``run.json``."""
    removed = []
    if (folder / STAGING).is_dir():
        shutil.rmtree(folder / STAGING)
        removed.append(STAGING)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return removed
    try:
        listed = json.loads(manifest.read_text()).get("files", [])
    except (json.JSONDecodeError, AttributeError):
        listed = []
    root = folder.resolve()
    for relative in [*listed, MANIFEST]:
        path = (folder / relative).resolve()
        if path.is_relative_to(root) and path.is_file():
            path.unlink()
            removed.append(relative)
            _remove_empty_parents(path.parent, root)
    return removed


def _remove_empty_parents(folder: Path, root: Path) -> None:
    while folder != root and folder.is_relative_to(root) and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def hydra_files(folder: Path) -> list[str]:
    """What Hydra wrote into the run folder for this run: its config record and the log."""
    names = list(HYDRA_RECORD)
    if HydraConfig.initialized():
        names.append(f"{HydraConfig.get().job.name}.log")
    return [name for name in names if (folder / name).is_file()]


def prepare_output_folder(folder: Path, owned: list[str], *, overwrite: bool) -> None:
    """A folder for ``task=simulate out=DIR``: empty or new, or with ``overwrite=true`` only
    ``owned`` (the files carestar writes there) replaced."""
    if not folder.exists() or not any(folder.iterdir()):
        return
    if not folder.is_dir():
        raise ConfigError(f"out={folder} is a file; expected a folder (new or empty)")
    if not overwrite:
        held = [p.name for p in sorted(folder.iterdir())]
        raise ConfigError(
            f"out={folder} already holds files ({', '.join(held[:5])}{', ...' if len(held) > 5 else ''}); "
            "choose a new or empty folder, or add overwrite=true to replace only the study's files "
            f"({', '.join(owned)}) and keep the rest"
        )

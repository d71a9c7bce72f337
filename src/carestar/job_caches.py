"""Compile caches of their own for the jobs of a parallel sweep.

PyTensor (its C modules and its numba kernels, both under ``base_compiledir``), numba (the
libraries' ``cache=True`` functions) and JAX each keep a compile cache on disk. None of
them is safe for two processes writing at once: numba saves its cache index without a
lock, and PyTensor fixes its numba cache path when it is imported. Under Hydra's basic
launcher the jobs run one after another in one process, so they share the user's caches.
Under a parallel launcher (``hydra/launcher=parallel``, ``submitit_local``,
``submitit_slurm``) every job process takes a cache *slot* of its own before PyTensor is
imported:

- slot ``k`` is the folder ``<root>/slot-<k>`` (``root``: ``$CARESTAR_JOB_CACHES``, else
  ``~/.cache/carestar/job-caches``), held by an exclusive ``fcntl.flock`` for the life of
  the process, so no two live processes ever share one; a finished job's slot, warm, is
  taken by the next job;
- a new slot is seeded with a copy of the user's own caches (``PYTENSOR_FLAGS``'s
  ``base_compiledir`` or ``~/.pytensor``, and ``$NUMBA_CACHE_DIR`` when set), so a sweep
  after an ordinary run does not compile everything again;
- ``PYTENSOR_FLAGS`` (``base_compiledir``), ``NUMBA_CACHE_DIR`` and
  ``JAX_COMPILATION_CACHE_DIR`` are then pointed at the slot.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import sys
from pathlib import Path

log = logging.getLogger("carestar")

ROOT_VARIABLE = "CARESTAR_JOB_CACHES"
COMPILERS = ("pytensor", "numba", "jax")
_held: dict[str, int] = {}  # slot folder -> descriptor holding its lock (until the process ends)


def caches_root() -> Path:
    return Path(os.environ.get(ROOT_VARIABLE) or Path.home() / ".cache" / "carestar" / "job-caches")


def isolate_compile_caches() -> Path:
    """Point this process's compile caches at a slot of its own (taken, locked, seeded).

    Called by a job of a parallel sweep before anything imports PyTensor; a second call in
    the same process (a launcher that reuses its workers) keeps the slot it has."""
    if _held:
        return Path(next(iter(_held)))
    imported = [name for name in COMPILERS if name in sys.modules]
    if imported:
        raise RuntimeError(f"isolate_compile_caches() must run before {', '.join(imported)} is imported")
    shared = _shared_caches()
    slot = _take_slot(caches_root())
    if not (slot / ".seeded").exists():
        _seed(slot, shared)
    os.environ["PYTENSOR_FLAGS"] = _with_flag(os.environ.get("PYTENSOR_FLAGS", ""), "base_compiledir",
                                              str(slot / "pytensor"))
    os.environ["NUMBA_CACHE_DIR"] = str(slot / "numba")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(slot / "jax")
    log.info("compile caches of this job: %s (a slot of its own; parallel jobs never share one)", slot)
    return slot


def _shared_caches() -> dict[str, Path]:
    """The user's own caches, where a slot's first copy comes from."""
    flags = dict(part.split("=", 1) for part in os.environ.get("PYTENSOR_FLAGS", "").split(",") if "=" in part)
    shared = {"pytensor": Path(flags.get("base_compiledir", Path.home() / ".pytensor")).expanduser()}
    if os.environ.get("NUMBA_CACHE_DIR"):
        shared["numba"] = Path(os.environ["NUMBA_CACHE_DIR"])
    return shared


def _take_slot(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for k in range(10_000):
        slot = root / f"slot-{k}"
        slot.mkdir(exist_ok=True)
        descriptor = os.open(slot, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            continue
        _held[str(slot)] = descriptor
        return slot
    raise RuntimeError(f"no free compile-cache slot under {root}")


def _seed(slot: Path, shared: dict[str, Path]) -> None:
    for name, source in shared.items():
        if not source.is_dir():
            continue
        try:
            shutil.copytree(source, slot / name, dirs_exist_ok=True, symlinks=True)
        except (shutil.Error, OSError) as error:  # a file another process was writing: compiled again
            log.info("compile cache %s copied in part (%s); what is missing is compiled again", source,
                     str(error)[:200])
    (slot / ".seeded").touch()


def _with_flag(flags: str, key: str, value: str) -> str:
    kept = [part for part in flags.split(",") if part and not part.startswith(f"{key}=")]
    return ",".join([*kept, f"{key}={value}"])

"""Run directories: staged writing, the manifest (run.json), and loading a run back.

Everything a run writes goes first into ``<run>/_incomplete/``; only when all of it is
written is it moved into the run directory, and ``run.json`` (the manifest, with
``status: complete`` and the list of files the run wrote) is written last. A failed run
therefore leaves an ``_incomplete/`` folder and no manifest; an interrupted one (SIGINT,
SIGTERM: ``carestar.interrupts``) a manifest with ``status: interrupted`` and no verdict:
nothing that looks complete. Files of the user's in the run folder (``overwrite=true``) are
kept: sub-folders are merged, never replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import xarray as xr
from omegaconf import DictConfig, OmegaConf

STAGING = "_incomplete"
MANIFEST = "run.json"
POSTERIOR = "posterior.nc"
PACKAGES = (
    "carestar", "pymc", "pytensor", "arviz", "arviz-base", "arviz-stats", "arviz-plots",
    "numpy", "scipy", "pandas", "xarray", "hydra-core", "omegaconf", "pandera", "formulae",
    "scikit-learn", "stepmix", "matplotlib", "nutpie", "numpyro", "jax",
)
REPO_ROOT = Path(__file__).resolve().parents[2]


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_state(root: Path = REPO_ROOT) -> dict[str, Any]:
    """The commit the code came from and whether the work tree had uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (subprocess.CalledProcessError, FileNotFoundError):
        return {"commit": None, "dirty": None}


def config_hash(cfg: DictConfig) -> str:
    text = OmegaConf.to_yaml(cfg, resolve=True, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class Stopwatch:
    """Wall times of the run's stages, in seconds."""

    def __init__(self, say: Callable[[str], None] | None = None) -> None:
        self.start = time.perf_counter()
        self.times: dict[str, float] = {}
        self.say = say  # told each stage's name as it starts (carestar.terminal.stage_line)

    @contextmanager
    def stage(self, name: str):
        if self.say is not None:
            self.say(name)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.times[name] = round(time.perf_counter() - t0, 3)

    def total(self) -> float:
        return round(time.perf_counter() - self.start, 3)


class RunDirectory:
    """A Hydra run directory written through a staging folder."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.staging = self.path / STAGING
        if (self.path / MANIFEST).exists():
            raise FileExistsError(f"{self.path} already holds a complete run; choose another hydra.run.dir")
        if self.staging.exists():
            shutil.rmtree(self.staging)
        self.staging.mkdir(parents=True)
        self.git = git_state()  # at the start: the code the run is made with

    def git_record(self) -> dict[str, Any]:
        """The commit the run started from; with ``at_end`` as well when the repository
        changed while it ran (a commit, a checkout, edits made or undone): the run cannot
        then say which code each of its stages used."""
        now = git_state()
        return self.git if now == self.git else {**self.git, "at_end": now}

    def file(self, relative: str) -> Path:
        """Where to write ``relative`` while the run is in progress."""
        target = self.staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def folder(self, relative: str) -> Path:
        """A sub-folder of the staged run (e.g. ``figures``)."""
        target = self.staging / relative
        target.mkdir(parents=True, exist_ok=True)
        return target

    def write_json(self, relative: str, payload: dict[str, Any]) -> Path:
        path = self.file(relative)
        path.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")
        return path

    def write_posterior(self, idata: xr.DataTree) -> Path:
        path = self.file(POSTERIOR)
        idata.to_netcdf(path, engine="netcdf4")
        return path

    def complete(self, manifest: dict[str, Any]) -> Path:
        """Move the staged files into place, then write the manifest last."""
        written = sorted(p.relative_to(self.staging) for p in self.staging.rglob("*") if p.is_file())
        for relative in written:
            destination = self.path / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.staging / relative, destination)
        shutil.rmtree(self.staging)
        return self._manifest({**manifest, "status": "complete"}, [str(p) for p in written])

    def interrupted(self, manifest: dict[str, Any]) -> Path:
        """Mark the run interrupted: a manifest without a verdict; the staged files stay staged."""
        staged = sorted(str(p.relative_to(self.path)) for p in self.staging.rglob("*") if p.is_file())
        return self._manifest({**manifest, "status": "interrupted", "diagnostics_passed": None}, staged)

    def _manifest(self, manifest: dict[str, Any], written: list[str]) -> Path:
        from carestar.run_folders import hydra_files

        path = self.path / MANIFEST
        tmp = path.with_suffix(".json.tmp")
        files = [*hydra_files(self.path), *written, MANIFEST]
        tmp.write_text(json.dumps({**manifest, "files": files}, indent=2, default=_json_default) + "\n")
        os.replace(tmp, path)
        return path


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def load_run(path: str | Path) -> tuple[dict[str, Any], xr.DataTree]:
    """A complete run's manifest and posterior; refuses incomplete runs."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        from carestar.errors import CarestarError

        raise CarestarError(f"{path} is not a complete run (no {MANIFEST})")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("status") != "complete":
        from carestar.errors import CarestarError

        raise CarestarError(f"{path} is not a complete run (run.json says status: {manifest.get('status')})")
    return manifest, xr.open_datatree(path / POSTERIOR, engine="netcdf4").load()

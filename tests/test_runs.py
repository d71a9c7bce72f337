"""Run directories: a failed run never looks complete; a complete one is written last and kept."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from carestar.errors import CarestarError
from carestar.runs import MANIFEST, POSTERIOR, STAGING, RunDirectory, load_run


def tiny_posterior() -> xr.DataTree:
    rng = np.random.default_rng(0)
    posterior = xr.Dataset(
        {"beta": (("chain", "draw", "effect"), rng.normal(size=(2, 5, 3)))},
        coords={"chain": [0, 1], "draw": np.arange(5), "effect": ["a", "b", "c"]},
    )
    return xr.DataTree.from_dict({"posterior": posterior})


def write_everything(run: RunDirectory) -> None:
    run.write_posterior(tiny_posterior())
    run.file("summary.csv").write_text("name,mean\nbeta[a],0.1\n")
    run.write_json("diagnostics.json", {"passed": True, "value": np.float64(1.5)})
    (run.folder("figures") / "forest.png").write_bytes(b"png")


def test_exception_during_a_run_leaves_only_incomplete(tmp_path):
    path = tmp_path / "run"
    path.mkdir()
    (path / ".hydra").mkdir()  # Hydra writes this before the run starts
    with pytest.raises(RuntimeError, match="sampler died"):
        run = RunDirectory(path)
        write_everything(run)
        raise RuntimeError("sampler died")
    assert not (path / MANIFEST).exists()
    assert sorted(p.name for p in path.iterdir()) == sorted([".hydra", STAGING])
    staged = sorted(p.relative_to(path / STAGING).as_posix() for p in (path / STAGING).rglob("*"))
    assert staged == sorted(["diagnostics.json", "figures", "figures/forest.png", POSTERIOR,
                             "summary.csv"])
    with pytest.raises(CarestarError, match="not a complete run"):
        load_run(path)


def test_complete_moves_files_and_writes_the_manifest_last(tmp_path):
    path = tmp_path / "run"
    run = RunDirectory(path)
    write_everything(run)
    assert not (path / MANIFEST).exists()
    manifest_path = run.complete({"task": "fit", "seed": 7})
    assert manifest_path == path / MANIFEST
    assert not (path / STAGING).exists()
    files = [p for p in path.rglob("*") if p.is_file()]
    assert {p.relative_to(path).as_posix() for p in files} == {
        MANIFEST, POSTERIOR, "summary.csv", "diagnostics.json", "figures/forest.png"}
    # written last: no file is newer than the manifest
    newest = max(files, key=lambda p: p.stat().st_mtime_ns)
    assert (path / MANIFEST).stat().st_mtime_ns >= newest.stat().st_mtime_ns
    manifest = json.loads((path / MANIFEST).read_text())
    assert manifest == {"task": "fit", "seed": 7, "status": "complete",  # files: what overwrite=true may remove
                        "files": ["diagnostics.json", "figures/forest.png", POSTERIOR, "summary.csv", MANIFEST]}
    assert json.loads((path / "diagnostics.json").read_text())["value"] == 1.5
    assert not list(path.glob("*.tmp"))


def test_load_run_round_trip(tmp_path):
    path = tmp_path / "run"
    run = RunDirectory(path)
    write_everything(run)
    run.complete({"seed": 3})
    manifest, tree = load_run(path)
    assert manifest["status"] == "complete" and manifest["seed"] == 3
    xr.testing.assert_allclose(tree.posterior["beta"], tiny_posterior().posterior["beta"])


def test_manifest_write_interrupted_leaves_no_manifest(tmp_path, monkeypatch):
    """If writing run.json itself fails, there is no run.json (it is renamed into place)."""
    path = tmp_path / "run"
    run = RunDirectory(path)
    write_everything(run)

    def unserialisable(*args, **kwargs):
        raise TypeError("not JSON serialisable")

    monkeypatch.setattr(json, "dumps", unserialisable)
    with pytest.raises(TypeError):
        run.complete({"seed": 1})
    assert not (path / MANIFEST).exists()
    with pytest.raises(CarestarError):
        load_run(path)


def test_second_run_into_a_complete_directory_is_refused(tmp_path):
    path = tmp_path / "run"
    first = RunDirectory(path)
    write_everything(first)
    first.complete({"seed": 1})
    before = (path / MANIFEST).read_text()
    with pytest.raises(FileExistsError, match="already holds a complete run"):
        RunDirectory(path)
    assert (path / MANIFEST).read_text() == before
    assert not (path / STAGING).exists()


def test_rerun_after_a_failure_starts_clean(tmp_path):
    """A failed run's leftovers in _incomplete/ are not carried into the next run."""
    path = tmp_path / "run"
    failed = RunDirectory(path)
    failed.file("stale.txt").write_text("from the failed run")
    again = RunDirectory(path)
    again.file("summary.csv").write_text("x\n")
    again.complete({"seed": 2})
    assert not (path / "stale.txt").exists()
    assert (path / "summary.csv").exists()


def test_a_run_records_the_code_it_started_from_and_says_when_it_changed(tmp_path, monkeypatch):
    """A commit made while a long run (an SBC) was going must not be recorded as its code."""
    import carestar.runs as runs

    start, later = {"commit": "a" * 40, "dirty": False}, {"commit": "b" * 40, "dirty": True}
    monkeypatch.setattr(runs, "git_state", lambda: dict(start))
    run = runs.RunDirectory(tmp_path / "run")
    assert run.git_record() == start
    monkeypatch.setattr(runs, "git_state", lambda: dict(later))
    assert run.git_record() == {**start, "at_end": later}

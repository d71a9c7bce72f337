"""One run per folder, and nothing of the user's deleted (``carestar.run_folders``).

Before the guard, two runs sharing ``hydra.run.dir`` mixed their files (a second run's
``.hydra/`` over the first's), ``hydra.run.dir`` at a user folder replaced its ``figures/``,
and ``task=simulate out=DIR`` deleted ``DIR``. Refusals happen before any work, so these
command-line tests cost only the start-up.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import CONF, run_cli

from carestar.errors import EXIT_USER_ERROR, ConfigError
from carestar.run_folders import claim
from carestar.runs import RunDirectory
from carestar.study_files import study_file_names


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def user_folder(path: Path) -> Path:
    (path / "figures").mkdir(parents=True)
    (path / "figures" / "my_plot.png").write_bytes(b"the user's own figure")
    (path / "notes.txt").write_text("the user's notes\n")
    return path


def test_default_run_and_sweep_folders_are_stamped_to_the_microsecond():
    hydra = yaml.safe_load((CONF / "config.yaml").read_text())["hydra"]
    assert hydra["run"]["dir"].endswith("%H-%M-%S_%f}")
    assert hydra["sweep"]["dir"].endswith("%H-%M-%S_%f}")


@pytest.mark.parametrize(("overrides", "folder"), [
    ([], "outputs/fit/ordinal/"), (["model=lca"], "outputs/fit/lca/"),
    (["task=simulate"], "outputs/simulate/"), (["task=compare", "model=lca"], "outputs/compare/"),
    (["task=select_classes"], "outputs/select_classes/"), (["task=sbc"], "outputs/sbc/"),
    (["task=reproduce"], "outputs/reproduce/"),
])
def test_runs_of_tasks_not_about_one_model_are_filed_by_task(overrides, folder):
    """A fit is filed under its model; the other tasks under the task alone (issue 17)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        run_dir = str(cfg.hydra.run.dir)
    assert run_dir.startswith(folder) and re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_\d{6}",
                                                       run_dir[len(folder):]), run_dir


def test_a_second_run_into_a_finished_run_folder_is_refused(smoke_run):
    run_dir, first = smoke_run
    assert (run_dir / "run.json").exists(), first.stderr[-2000:]
    before = digest(run_dir)
    second = run_cli("sampler=smoke", "seed=5", f"hydra.run.dir={run_dir}", timeout=300)
    assert second.returncode == EXIT_USER_ERROR, second.stderr[-2000:]
    assert f"hydra.run.dir {run_dir} already holds files" in second.stderr
    assert "overwrite=true" in second.stderr and "Traceback" not in second.stderr
    assert digest(run_dir) == before  # the first run, its .hydra/ and its log untouched


def test_a_sweep_folder_that_holds_runs_is_refused(tmp_path):
    sweep = tmp_path / "sweep"
    (sweep / "0").mkdir(parents=True)
    (sweep / "0" / "run.json").write_text('{"status": "complete"}\n')
    result = run_cli("-m", "task=simulate", f"hydra.sweep.dir={sweep}", timeout=300)
    assert result.returncode == EXIT_USER_ERROR, result.stderr[-2000:]
    assert f"hydra.sweep.dir {sweep} already holds files" in result.stderr
    assert sorted(p.name for p in sweep.rglob("*")) == ["0", "run.json"]


def test_a_folder_locked_by_a_running_run_is_refused(tmp_path):
    folder = tmp_path / "busy"
    folder.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)", str(folder)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ConfigError, match="in use by another carestar run"):
            claim(folder, "hydra.run.dir")
    finally:
        holder.kill()
        holder.wait()


def test_user_files_are_never_deleted(tmp_path):
    user = user_folder(tmp_path / "mine")
    before = digest(user)
    as_run_dir = run_cli("task=simulate", f"hydra.run.dir={user}", timeout=300)
    assert as_run_dir.returncode == EXIT_USER_ERROR, as_run_dir.stderr[-2000:]
    assert f"hydra.run.dir {user} already holds files (figures, notes.txt)" in as_run_dir.stderr
    as_out = run_cli("task=simulate", f"out={user}", f"hydra.run.dir={tmp_path / 'run1'}", timeout=300)
    assert as_out.returncode == EXIT_USER_ERROR, as_out.stderr[-2000:]
    assert f"out={user} already holds files" in as_out.stderr
    assert digest(user) == before

    replaced = run_cli("task=simulate", f"out={user}", "overwrite=true", f"hydra.run.dir={tmp_path / 'run2'}",
                       timeout=300)
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    after = digest(user)
    assert {k: after[k] for k in before} == before  # the user's files kept, byte for byte
    assert sorted(set(after) - set(before)) == sorted(study_file_names())


def test_overwrite_removes_only_what_the_earlier_run_listed(tmp_path):
    folder = user_folder(tmp_path / "run")
    (folder / "figures" / "forest_effects.png").write_bytes(b"carestar's")
    (folder / "report.md").write_text("earlier report\n")
    (folder / "_incomplete").mkdir()
    (folder / "_incomplete" / "summary.csv").write_text("staged\n")
    listed = ["figures/forest_effects.png", "report.md", "../outside.txt", "run.json"]
    (tmp_path / "outside.txt").write_text("not in the run folder\n")
    (folder / "run.json").write_text(json.dumps({"status": "complete", "files": listed}))
    with pytest.raises(ConfigError, match="already holds files"):
        claim(folder, "hydra.run.dir")
    claim(folder, "hydra.run.dir", overwrite=True)
    assert sorted(digest(folder)) == ["figures/my_plot.png", "notes.txt"]
    assert (tmp_path / "outside.txt").exists()

    run = RunDirectory(folder)  # the new run merges its figures/ into the user's
    run.file("figures/forest_effects.png").write_bytes(b"new")
    manifest = json.loads(run.complete({"task": "fit"}).read_text())
    assert sorted(digest(folder)) == ["figures/forest_effects.png", "figures/my_plot.png", "notes.txt", "run.json"]
    assert manifest["files"] == ["figures/forest_effects.png", "run.json"]

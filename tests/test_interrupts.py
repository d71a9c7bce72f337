"""Ctrl-C (SIGINT) or SIGTERM during sampling: the run is marked interrupted, never complete.

PyMC and nutpie catch ``KeyboardInterrupt`` themselves and return a short trace; before
``carestar.interrupts`` such a run exited 0, marked complete and passing. Each test runs
``python run.py`` on a tiny CSV (so that compiling is quick) with far more draws than it
could finish, waits for sampling to start (the log's ``NUTS`` line), sends the signal, and
checks the exit status, the manifest, and that no sampler process is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from carestar.errors import CarestarError
from carestar.interrupts import RunInterrupted, check_complete, interruptible
from carestar.runs import load_run


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory) -> Path:
    rng = np.random.default_rng(1)
    x = rng.normal(size=40)
    path = tmp_path_factory.mktemp("interrupt") / "tiny.csv"
    pd.DataFrame({"y": (rng.random(40) < 1 / (1 + np.exp(-x))).astype(int), "x": x}).to_csv(path, index=False)
    return path


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split()[2] != "Z"


@pytest.mark.parametrize(
    ("sampler", "signum"),
    [("pymc", signal.SIGTERM), ("nutpie", signal.SIGINT)],  # SIGINT under pymc: test_handler_*
    ids=["pymc-SIGTERM", "nutpie-SIGINT"],
)
def test_signal_during_sampling_marks_the_run_interrupted(sampler, signum, tiny_csv, tmp_path):
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "data=csv", f"data.path={tiny_csv}", "model=binomial",
         "model.formula='y ~ x'", f"sampler={sampler}", "sampler.draws=10000000", "sampler.tune=100",
         "sampler.chains=2", "sampler.cores=2", f"hydra.run.dir={run_dir}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    log = run_dir / "run.log"
    deadline = time.monotonic() + 240
    while not (log.exists() and "NUTS" in log.read_text()):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "sampling never started"
        time.sleep(0.5)
    time.sleep(3)  # into the draws
    workers = children(process.pid)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)

    assert process.returncode == 128 + signum, err[-3000:]
    assert f"interrupted by {signal.Signals(signum).name}" in err
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "interrupted"
    assert manifest["diagnostics_passed"] is None
    assert not (run_dir / "report.md").exists() and not (run_dir / "posterior.nc").exists()
    with pytest.raises(CarestarError, match="not a complete run"):
        load_run(run_dir)
    time.sleep(1)
    assert not [pid for pid in workers if alive(pid)], "sampler worker processes outlived the run"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_handler_turns_a_caught_interrupt_into_run_interrupted(signum):
    """As PyMC does: the sampler swallows the KeyboardInterrupt and returns normally."""
    before = signal.getsignal(signum)
    with pytest.raises(RunInterrupted) as stop:
        with interruptible():
            try:
                os.kill(os.getpid(), signum)
                time.sleep(5)
            except KeyboardInterrupt:
                pass
    assert stop.value.exit_status == 128 + signum
    assert signal.getsignal(signum) is before


def test_an_interrupt_dropped_inside_a_ctypes_callback_is_raised_again(monkeypatch):
    """CI, 2026-12-02: SIGINT while numba compiled nutpie's model was dropped by a ctypes callback."""
    import ctypes

    import carestar.interrupts as interrupts

    monkeypatch.setattr(interrupts, "REDELIVER_S", 0.2)
    dropped, carried_on = [], []
    before = signal.getsignal(signal.SIGINT)  # what earlier tests in this process left there

    @ctypes.CFUNCTYPE(None)
    def callback():  # as llvmlite's object-cache callback, running Python code when the signal lands
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):
            time.sleep(0.001)
        dropped.append(True)

    with pytest.raises(RunInterrupted) as stop:
        with interruptible():
            callback()
            assert not dropped, "the interrupt was not raised inside the callback"
            time.sleep(30)  # the sampler carrying on as if nothing had happened
            carried_on.append(True)
    assert not carried_on, "the block ran to its end: the dropped interrupt was never raised again"
    assert stop.value.signal_name == "SIGINT"
    assert signal.getsignal(signal.SIGINT) is before


def test_a_short_trace_is_not_a_complete_run():
    import xarray as xr

    posterior = xr.Dataset({"mu": (("chain", "draw"), np.zeros((2, 7)))})
    tree = xr.DataTree.from_dict({"posterior": posterior})
    with interruptible() as received:
        check_complete(tree, {"chains": 2, "draws": 7}, received)
        with pytest.raises(RunInterrupted, match="2 chains x 7 draws of 2 x 10"):
            check_complete(tree, {"chains": 2, "draws": 10}, received)

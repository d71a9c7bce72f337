"""SIGINT and SIGTERM during a fit: the run is marked interrupted, never complete.

PyMC and nutpie catch ``KeyboardInterrupt`` themselves and return the draws made so far as
if sampling had finished. So, for the life of a fit, ``interruptible()`` installs its own
handler for both signals: it records the signal and raises ``KeyboardInterrupt``, so that
the samplers stop as they were designed to (PyMC ends its worker processes, nutpie aborts
its threads). When the sampler returns, or the ``KeyboardInterrupt`` escapes, the recorded
signal becomes ``RunInterrupted``. A trace shorter than the config asked for is treated
the same way (``check_complete``), whatever stopped it.

A ``KeyboardInterrupt`` raised while the main thread runs a ctypes callback is printed and
dropped ("Exception ignored on calling ctypes callback function"): numba's compiler, which
nutpie and PyTensor call, runs such callbacks (llvmlite's object cache), so a signal that
arrives while a model compiles could be lost and the sampler would go on to the end. Once a
signal has arrived, a watchdog thread therefore sends it again to the main thread every
``REDELIVER_S`` seconds until the block has ended.

``RunInterrupted`` is a ``BaseException``, as ``KeyboardInterrupt`` is, so that neither
Hydra nor a sweep's error handling takes it for a failed job: ``run.py`` exits with
``128 + signal`` (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
REDELIVER_S = 5.0  # longer than PyMC's 2 s of patience for its workers to stop


class RunInterrupted(BaseException):
    """The run was stopped by a signal (or its sampler returned fewer draws than asked)."""

    def __init__(self, signum: int, detail: str = "") -> None:
        self.signum = int(signum)
        self.detail = detail
        super().__init__(f"interrupted by {self.signal_name}" + (f": {detail}" if detail else ""))

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class _Received:
    signum: int | None = None
    watchdog: threading.Thread | None = None


def _redeliver(signum: int, ended: threading.Event, main_thread: int) -> None:
    while not ended.wait(REDELIVER_S):
        signal.pthread_kill(main_thread, signum)  # a real signal: it also ends a blocking wait


@contextmanager
def interruptible() -> Iterator[_Received]:
    """Turn SIGINT / SIGTERM inside the block into ``RunInterrupted`` (see the module doc)."""
    received = _Received()
    ended = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        if ended.is_set():  # a redelivery that landed as the block ended
            return
        if received.signum is None:
            received.signum = signum
            received.watchdog = threading.Thread(target=_redeliver, args=(signum, ended, threading.get_ident()),
                                                 daemon=True)
            received.watchdog.start()
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        try:
            yield received
        finally:
            ended.set()
            if received.watchdog is not None:
                received.watchdog.join()
    except BaseException as error:  # PyMC may turn the interrupt into its own error
        if received.signum is None and isinstance(error, KeyboardInterrupt):
            received.signum = signal.SIGINT
        if received.signum is None or isinstance(error, RunInterrupted):
            raise
        raise RunInterrupted(received.signum) from error
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
    if received.signum is not None:
        raise RunInterrupted(received.signum)


def check_complete(idata: Any, sampler: dict[str, Any], received: _Received) -> None:
    """Refuse a posterior with fewer chains or draws than the sampler config asked for."""
    if received.signum is not None:
        raise RunInterrupted(received.signum)
    if "posterior" not in getattr(idata, "children", {}) or "draws" not in sampler:
        return
    sizes = idata["posterior"].sizes
    want = (int(sampler.get("chains", 4)), int(sampler["draws"]))
    got = (int(sizes.get("chain", 0)), int(sizes.get("draw", 0)))
    if got != want:
        raise RunInterrupted(
            signal.SIGINT, f"the sampler returned {got[0]} chains x {got[1]} draws of {want[0]} x {want[1]}"
        )

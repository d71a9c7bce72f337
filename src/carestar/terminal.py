"""What a run says while it runs and when it ends.

* A line per stage of a fit (``stage_line``, logged: the console and the run's log), and,
  where no progress bar is shown (standard error not a terminal: CI, a cluster job,
  ``sampler.progressbar=false``), a line per chain at each quarter of its draws
  (``ChainMilestones``), from the pymc sampler's per-draw ``callback`` or nutpie's
  progress callback (``chain_milestones``).
* At the end, the verdict of the diagnostic gates and then the effects table, as brms's
  ``print(fit)``: posterior mean, SD, 90% interval, r_hat and bulk ESS, cut at
  ``EFFECT_ROWS`` rows with a pointer to ``summary.csv`` (``print_verdict``).
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger("carestar")

EFFECT_ROWS = 30

STAGES = {
    "load": "loading the data and preparing the model",
    "build": "building the model",
    "sample": "compiling the model and sampling",
    "postprocess": "postprocessing the draws",
    "diagnostics": "diagnostics: r_hat, ESS, divergences, BFMI, PSIS-LOO",
    "write": "writing the tables, figures and report",
    "fit": "fitting",
}

# (summary.csv column, printed heading): posterior summaries, then sampler=mle's
COLUMNS = {
    "mean": "mean", "sd": "sd", "eti90_lb": "5%", "eti90_ub": "95%", "r_hat": "r_hat", "ess_bulk": "ess_bulk",
    "estimate": "estimate", "se": "se", "ci95_lb": "2.5%", "ci95_ub": "97.5%",
}


def stage_line(name: str) -> None:
    log.info("%s ...", STAGES.get(name, name))


class ChainMilestones:
    """Logs ``chain c: n/N draws (tuning)`` when a chain passes each quarter of its
    ``tune + draws`` iterations, and once when it finishes."""

    def __init__(self, chains: int, tune: int, draws: int, quarters: int = 4) -> None:
        self.tune, self.total = tune, tune + draws
        self.marks = [round(self.total * q / quarters) for q in range(1, quarters + 1)]
        self.passed = [0] * chains
        self.lock = threading.Lock()  # nutpie calls back from its own thread

    def update(self, chain: int, done: int) -> None:
        with self.lock:
            while self.passed[chain] < len(self.marks) and done >= self.marks[self.passed[chain]]:
                mark = self.marks[self.passed[chain]]
                self.passed[chain] += 1
                phase = "done" if mark >= self.total else "tuning" if mark <= self.tune else "sampling"
                log.info("chain %d: %d/%d iterations (%s)", chain, mark, self.total, phase)

    def pymc_callback(self, trace=None, draw=None) -> None:
        """pymc's ``pm.sample(callback=...)``: called after every draw of every chain."""
        self.update(int(draw.chain), int(draw.draw_idx) + 1)

    def nutpie_callback(self, progresses) -> None:
        """nutpie's ``progress_callback``: a list of ``ChainProgress``, one per chain."""
        for chain, p in enumerate(progresses):
            if p.started:
                self.update(chain, int(p.finished_draws))


@contextmanager
def chain_milestones(nuts_sampler: str, milestones: ChainMilestones, kwargs: dict[str, Any]):
    """Hook ``milestones`` into the sampler ``pm.sample`` will run.

    pymc takes a per-draw ``callback`` (added to ``kwargs``). PyMC runs nutpie with its own
    progress callback (``NutpieProgressBarManager.update``) and refuses a ``callback``;
    for the length of the ``with``, that manager is replaced by one that also tells
    ``milestones``. numpyro offers no hook: its chains are silent without a terminal.
    """
    if nuts_sampler == "pymc":
        kwargs["callback"] = milestones.pymc_callback
        yield
        return
    if nuts_sampler != "nutpie":
        log.info("%s reports no per-chain progress without a terminal", nuts_sampler)
        yield
        return
    from pymc.sampling import mcmc

    original = mcmc.NutpieProgressBarManager

    class WithMilestones(original):
        def update(self, chain_progresses) -> None:
            milestones.nutpie_callback(chain_progresses)
            super().update(chain_progresses)

    mcmc.NutpieProgressBarManager = WithMilestones
    try:
        yield
    finally:
        mcmc.NutpieProgressBarManager = original


def effects_table(summary: pd.DataFrame, rows: int = EFFECT_ROWS) -> str:
    """The effects of ``summary.csv`` as text: mean, SD, 90% interval, r_hat, bulk ESS (or
    sampler=mle's estimate, SE, 95% interval), the first ``rows`` rows and a pointer to the rest."""
    cols = [c for c in COLUMNS if c in summary.columns]
    if summary.empty or not cols:
        return ""
    shown = summary[cols].head(rows).rename(columns=COLUMNS)
    shown.index.name = None
    mcmc = "mean" in cols
    head = ("Effects (posterior mean, SD, 90% interval; r_hat, bulk ESS):" if mcmc
            else "Effects (maximum likelihood estimate, SE, 95% interval):")
    counts = {"ess_bulk": lambda v: "-" if v != v else f"{v:.0f}"}  # an ESS is a number of draws
    text = shown.to_string(float_format=lambda v: f"{v:.3f}", na_rep="-", formatters=counts)
    lines = [head, *("  " + line for line in text.splitlines())]
    if len(summary) > rows:
        lines.append(f"  ... {len(summary) - rows} more rows in summary.csv")
    return "\n".join(lines)


def print_verdict(run_path: Path, diagnostics: dict[str, Any], summary: pd.DataFrame | None = None) -> None:
    """The gates (as ``diagnostics.json`` and ``report.md`` list them), then the effects."""
    from carestar.diagnostics import gate_lines, moment_matched_line

    verdict = "PASSED" if diagnostics["passed"] else "FAILED (results written, marked failed; exit status 3)"
    print(f"carestar: diagnostics {verdict}; run written to {run_path}")
    for name, value, threshold, passed in gate_lines(diagnostics):
        print(f"  {name:14s} {value:>10.4g}  threshold {threshold:<8g} {'pass' if passed else 'FAIL'}")
    if (loo := diagnostics.get("loo")) and loo.get("unreliable"):
        print(f"  PSIS-LOO is unreliable for {loo['n_pareto_k_high']} observation(s) with Pareto k > "
              f"{loo['pareto_k_threshold']}: {', '.join(loo['unreliable'][:20])}"
              + (" ..." if len(loo["unreliable"]) > 20 else ""))
    if line := moment_matched_line(diagnostics.get("loo")):
        print(f"  {line}")
    for key in ("log_likelihood", "marginal_log_likelihood"):
        if loglik := diagnostics.get(key):
            print(f"  log likelihood at the {loglik['at']}: {loglik['loglik']:.4f} (AIC {loglik['aic']:.2f}, "
                  f"BIC {loglik['bic']:.2f}); {loglik.get('kind', '')}")
    if summary is not None and (table := effects_table(summary)):
        print(table)

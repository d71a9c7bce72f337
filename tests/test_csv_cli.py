"""``data=csv`` from the command line: a reference fit, a group-term model, and bad input.

1. MASS::polr on the Copenhagen housing data (tests/data/reference/REFERENCES.md):
   ``polr(Sat ~ Infl + Type + Cont, weights = Freq)`` has log likelihood -1739.5746 and
   AIC 3495.149 (8 parameters: 6 effects, 2 cutpoints). ``sampler=mle`` reproduces both
   (within 1e-3); ``sampler=map`` is the posterior mode, priors included: its log likelihood
   is at most the maximum (measured: -1739.5755 with the default priors) and labelled as
   the mode's.
2. ``model=binomial`` on cbpp with ``(1|herd)`` completes a smoke run (too few draws for
   the gates: written, marked failed, exit status 3).
3. CSV mistakes: the catalogue in tests/test_bad_inputs.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, run_cli

from carestar.errors import EXIT_GATES_FAILED

pytestmark = pytest.mark.slow

REF = ROOT / "tests" / "data" / "reference"
POLR_LOGLIK = -1739.5746
POLR_AIC = 3495.149
HOUSING = [
    "model=ordinal", "data=csv", f"data.path={REF / 'housing.csv'}",
    'model.formula="Sat ~ Infl + Type + Cont"', "data.weights=Freq",
    "data.levels={Sat:[Low,Medium,High],Infl:[Low,Medium,High],"
    "Type:[Tower,Apartment,Atrium,Terrace],Cont:[Low,High]}",
]


def complete_run(run_dir: Path) -> dict:
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "complete"
    for name in ("posterior.nc", "summary.csv", "diagnostics.json", "report.md"):
        assert (run_dir / name).stat().st_size > 0, name
    assert not (run_dir / "_incomplete").exists()
    return manifest


def test_polr_loglik_and_aic(tmp_path):
    run_dir = tmp_path / "housing"
    result = run_cli(*HOUSING, "sampler=mle", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = complete_run(run_dir)
    assert manifest["sampler"] == "mle"
    assert manifest["data_hash"] == hashlib.sha256((REF / "housing.csv").read_bytes()).hexdigest()
    loglik = json.loads((run_dir / "diagnostics.json").read_text())["log_likelihood"]
    print(f"housing at the MLE: {loglik}")
    assert loglik["at"] == "maximum likelihood estimate"
    assert loglik["loglik"] == pytest.approx(POLR_LOGLIK, abs=1e-3)
    assert loglik["aic"] == pytest.approx(POLR_AIC, abs=1e-3)
    assert "log likelihood at the maximum likelihood estimate" in result.stdout
    # the command report.md gives pastes into bash: every override reaches Hydra as given
    line = re.search(r"Reproduce with `python run.py (.+?)`", (run_dir / "report.md").read_text()).group(1)
    words = subprocess.run(["bash", "-c", f"printf '%s\\0' {line}"], capture_output=True, text=True, check=True)
    assert words.stdout.split("\0")[:-1] == [*HOUSING, "sampler=mle"]


def test_map_is_the_posterior_mode_not_the_mle(tmp_path):
    run_dir = tmp_path / "housing_map"
    result = run_cli(*HOUSING, "sampler=map", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    loglik = json.loads((run_dir / "diagnostics.json").read_text())["log_likelihood"]
    print(f"housing at the mode: {loglik}")
    assert loglik["at"] == "posterior mode"
    assert POLR_LOGLIK - 0.05 < loglik["loglik"] <= POLR_LOGLIK + 1e-4
    assert "not the maximum likelihood estimate" in (run_dir / "report.md").read_text()


def test_cbpp_binomial_group_term_completes(tmp_path):
    run_dir = tmp_path / "cbpp"
    result = run_cli("model=binomial", "data=csv", f"data.path={REF / 'cbpp.csv'}",
                     'model.formula="incidence | trials(size) ~ C(period) + (1|herd)"',
                     "sampler=smoke", f"hydra.run.dir={run_dir}")
    assert result.returncode == EXIT_GATES_FAILED, result.stderr[-3000:]
    manifest = complete_run(run_dir)
    assert manifest["model"] == "binomial" and manifest["diagnostics_passed"] is False
    summary = pd.read_csv(run_dir / "summary.csv", index_col=0)
    assert any("herd_sd" in name for name in summary.index), list(summary.index)


# Bad input of a tidy CSV (missing file, missing column, missing values, weights): the
# catalogue in tests/test_bad_inputs.py.

"""Every command the documentation shows works pasted into bash.

Sources: README.md, docs/*.md, experiments/*/README.md. Two levels:

* **Every** ``python run.py ...`` command, in a fenced block or inline code, goes through
  bash's word splitting (so quoting mistakes show as they would in a terminal) and then
  through Hydra: each override must parse, and a command that is not a sweep must compose
  against ``conf/`` (no unknown group, option or key). Fast: nothing is fitted.
* Fenced blocks marked ```` ```bash ```` are commands a reader can run as written from the
  repository's root: the slow test runs each one through bash, from a scratch folder laid
  out like the repository, with ``sampler=smoke`` added to a fit (not to ``sampler=mle`` /
  ``map``, which are fast already) and ``reduced=true`` to ``task=reproduce experiment=``.
  Identical commands run once. Blocks marked ```` ```text ```` are examples with
  placeholders or long runs (they get the first level only); every fenced block must say
  which it is.
* Fenced blocks marked ```` ```python ```` (opening a run in a notebook) run as a script,
  each ``outputs/review/NAME`` they open replaced by the session's smoke run.

An experiment's README shows its sweep as text; ``expected.json`` holds the same commands
(checked here), and ``task=reproduce experiment=NAME`` runs them, so the reduced reproduce
in the README's reviewer section runs what the experiment's README shows.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, compose_config
from hydra.core.override_parser.overrides_parser import OverridesParser

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "experiments").glob("*/README.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"`(python run\.py[^`]*)`")
RUNNABLE = "bash"
LAYOUT = ("run.py", "conf", "models", "experiments", "tests")  # what a command run from the root sees


def blocks(path: Path) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(path.read_text())]


def commands(block: str) -> list[str]:
    """One string per command: continuation lines joined, comment lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def every_run_py_command() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        text = path.read_text()
        for _, block in blocks(path):
            found += [(str(path.relative_to(ROOT)), c) for c in commands(block) if c.startswith("python run.py")]
        found += [(str(path.relative_to(ROOT)), " ".join(c.split())) for c in INLINE.findall(FENCE.sub("", text))]
    return sorted(set(found))


def bash_words(command: str) -> list[str]:
    """The argv bash gives ``command`` (placeholders such as ``<date>`` filled in)."""
    command = command.replace("<date>", "2026-01-01_00-00-00")
    out = subprocess.run(["bash", "-c", f"printf '%s\\0' {command}"], capture_output=True, text=True)
    assert out.returncode == 0, f"bash cannot read `{command}`: {out.stderr}"
    return out.stdout.split("\0")[:-1]


def test_every_fenced_block_says_whether_it_runs():
    unmarked = [f"{p.relative_to(ROOT)}: {b.splitlines()[0] if b.strip() else '(empty)'}"
                for p in DOCS for lang, b in blocks(p) if not lang]
    assert not unmarked, "fenced blocks need ```bash (run by the tests) or ```text: " + "; ".join(unmarked)


@pytest.mark.parametrize(("doc", "command"), every_run_py_command())
def test_documented_command_parses_in_bash_and_hydra(doc, command):
    words = bash_words(command)
    assert words[:2] == ["python", "run.py"], words
    overrides = [w for w in words[2:] if not w.startswith("-")]
    OverridesParser.create().parse_overrides(overrides)  # raises on what Hydra cannot read
    if "-m" not in words and "--multirun" not in words:
        compose_config(*(o for o in overrides if not o.lstrip("+~").startswith("hydra.")))


def _matches(step: list[str], shown: list[str]) -> bool:
    """``shown`` is ``step`` with its ``{out}`` / ``{sweep}`` places filled in; where the
    files go (``hydra.run.dir`` / ``hydra.sweep.dir``) may be left out of the README."""
    def keep(words):
        return [w for w in words if not re.match(r"hydra\.(run|sweep)\.dir=", w)]

    step, shown = keep(step), keep(shown)
    patterns = [re.escape(w).replace(r"\{out\}", ".+").replace(r"\{sweep\}", ".+") for w in step]
    return len(step) == len(shown) and all(re.fullmatch(p, w) for p, w in zip(patterns, shown))


def test_experiment_readmes_show_what_reproduce_runs():
    """The commands of each experiment's README are its expected.json steps, in order."""
    for spec_path in sorted((ROOT / "experiments").glob("*/expected.json")):
        spec = json.loads(spec_path.read_text())
        shown = [bash_words(c) for _, b in blocks(spec_path.parent / "README.md") for c in commands(b)
                 if c.startswith("python")]
        for step in spec["steps"]:
            assert any(_matches(step, words) for words in shown), (
                f"{spec_path.parent.name}/README.md does not show the step {step}")


def runnable_commands() -> list[str]:
    found = [c for p in DOCS for lang, b in blocks(p) if lang == RUNNABLE for c in commands(b)]
    return list(dict.fromkeys(found))  # identical commands (the same fit) run once


def command_chains() -> list[list[str]]:
    """The runnable commands, split into chains that can run apart: a command that reads a
    run (``run=DIR``) follows the command that wrote it (``hydra.run.dir=DIR``)."""
    chains: list[list[str]] = []
    writer: dict[str, list[str]] = {}
    for command in runnable_commands():
        words = bash_words(command)
        reads = [w.split("=", 1)[1] for w in words if w.startswith("run=")]
        chain = next((writer[r] for r in reads if r in writer), None)
        if chain is None:
            chain = []
            chains.append(chain)
        chain.append(command)
        for w in words:
            if w.startswith("hydra.run.dir="):
                writer[w.split("=", 1)[1]] = chain
    return chains


def fast(command: str) -> str:
    words = bash_words(command)
    if words[:2] != ["python", "run.py"]:
        return command
    task = next((w.split("=", 1)[1] for w in words if w.startswith("task=")), "fit")
    if task == "fit" and not any(w.startswith("sampler=") for w in words):
        return f"{command} sampler=smoke"
    if task == "reproduce" and any(w.startswith("experiment=") for w in words) and "reduced=true" not in words:
        return f"{command} reduced=true"
    return command


def test_a_command_that_reads_a_run_follows_the_one_that_wrote_it():
    chains = command_chains()
    assert sorted(c for chain in chains for c in chain) == sorted(runnable_commands())
    review = next(chain for chain in chains if any("task=reproduce run=" in c for c in chain))
    assert "hydra.run.dir=outputs/review/default" in review[0] and len(review) == 2


@pytest.mark.slow
@pytest.mark.parametrize("chain", [
    pytest.param(chain, id=f"chain{i}", marks=pytest.mark.xdist_group(f"test_doc_commands[chain{i}]"))
    for i, chain in enumerate(command_chains())])
def test_runnable_commands_work_in_bash(chain, tmp_path):
    """Each chain from its own scratch folder, so that chains can run on different workers."""
    for name in LAYOUT:
        (tmp_path / name).symlink_to(ROOT / name)
    env = {**os.environ, "PYTHONWARNINGS": "ignore",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    failures = []
    for command in chain:
        result = subprocess.run(["bash", "-c", fast(command)], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=1200)
        # 3: a smoke fit completes and fails its gates, as it should with a few draws
        if result.returncode not in (0, 3):
            failures.append(f"`{fast(command)}` exited {result.returncode}:\n{(result.stdout + result.stderr)[-2000:]}")
    assert not failures, "\n\n".join(failures)


def python_blocks() -> list[tuple[str, str]]:
    return [(str(p.relative_to(ROOT)), b) for p in DOCS for lang, b in blocks(p) if lang == "python"]


@pytest.mark.slow
def test_python_blocks_run_on_a_run(smoke_run, tmp_path):
    run_dir, first = smoke_run
    assert (run_dir / "run.json").exists(), first.stderr[-2000:]
    assert python_blocks(), "README.md shows how to open a run in Python"
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "MPLBACKEND": "Agg"}
    for doc, block in python_blocks():
        code = re.sub(r"outputs/review/\w+", str(run_dir), block)
        result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, f"{doc}:\n{block}\n{result.stderr[-3000:]}"
    assert (tmp_path / "effects.png").stat().st_size > 0  # the re-plot

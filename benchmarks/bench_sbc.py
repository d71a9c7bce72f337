"""Benchmark ``task=sbc``: the wall time of N replications of the default ordinal model.

Runs ``python run.py task=sbc model=ordinal sbc.n=N`` (any extra Hydra overrides are passed
on) in a subprocess, as a user would, and reads the run's ``run.json`` and ``sbc.json``:
the whole command's wall time, its stages (build and compile, prior draws, replications,
writing), seconds per replication, and the verdict. Target: 200 replications in 10 minutes
on 2 cores.

    python benchmarks/bench_sbc.py                 # N = 200
    python benchmarks/bench_sbc.py --n 50 sbc.tune=1000 sbc.draws=1000

writes ``benchmarks/results/sbc.md`` (machine, versions, table).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_runs import machine, versions

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        command = [sys.executable, str(ROOT / "run.py"), "task=sbc", "model=ordinal", f"sbc.n={args.n}",
                   *args.overrides, f"hydra.run.dir={run_dir}"]
        t0 = time.perf_counter()
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if result.returncode not in (0, 3):
            sys.exit(f"the run failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
        stages = json.loads((run_dir / "run.json").read_text())["wall_time_s"]
        verdict = json.loads((run_dir / "sbc.json").read_text())
    line = (f"| `python run.py task=sbc model=ordinal sbc.n={args.n} {' '.join(args.overrides)}".rstrip()
            + f"` | {wall:.0f} s | {stages['build']:.0f} s | {stages['replications']:.0f} s | "
            f"{stages['replications'] / args.n:.2f} s | {'passed' if verdict['passed'] else 'failed'}: "
            f"{verdict['summary']} |")
    text = "\n".join([
        "# task=sbc benchmark", "", f"Machine: {machine()}; {versions()}.",
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} (other jobs may have shared the machine).", "",
        "| command | wall time | build + compile | replications | per replication | verdict |",
        "|---|---|---|---|---|---|", line, ""])
    out = ROOT / "benchmarks" / "results" / "sbc.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

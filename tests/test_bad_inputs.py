"""The catalogue of bad inputs: every one refused before any work, by carestar, with exit 2.

Each case is a command line (and, where it needs one, a broken copy of a valid study folder
or tidy CSV). It runs through ``run.py``'s entry point in this process (no subprocess per
case, so the catalogue is cheap) and must end with exit status 2 and a ``carestar: error:``
message holding every needle: the file, the column, the CSV lines (header = line 1), what
was expected. Nothing may be sampled: the run folder gets no ``run.json``, no
``posterior.nc``. A new bad input found goes here, so the count only grows
(``len(CASES)``: the bad inputs refused cleanly).
"""

from __future__ import annotations

import importlib.util
import inspect
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT
from helpers_study import synthetic_study

from carestar.errors import EXIT_USER_ERROR
from carestar.study_files import write_study

TIDY = "y,r,x,z,g,w\n" + "".join(
    f"{i % 2},{['Low', 'Mid', 'High'][i % 3]},{i * 0.37 % 3:.2f},{(i * 7) % 5},{'abcd'[i % 4]},{1 + i % 3}\n"
    for i in range(24)
)
BINOMIAL = ["data=csv", "data.path={csv}", "model=binomial", "model.formula='y ~ x + (1|g)'"]
ORDINAL = ["data=csv", "data.path={csv}", "model=ordinal", "model.formula='r ~ x'", "+data.levels.r=[Low,Mid,High]"]
STUDY = ["data=study", "data.dir={study}"]
LCA = ["data=csv", "data.path={csv}", "model=lca", "model.items=[y,r,g]", "model.n_classes=2"]


@dataclass
class Case:
    name: str
    args: list[str]
    needles: list[str]
    csv: Callable[[str], str | bytes] | None = None  # the tidy CSV's text -> the broken text
    study: Callable[[Path], None] | None = None  # breaks the copy of the study folder
    untouched: list[str] = field(default_factory=list)  # files (under the test's folder) that must not change


def edit(table: str, change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        path = folder / f"{table}.csv"
        change(pd.read_csv(path, dtype=str, keep_default_na=False)).to_csv(path, index=False)
    return apply


def set_cell(table: str, row: int, column: str, value: str) -> Callable[[Path], None]:
    def change(frame):
        frame.loc[row, column] = value
        return frame
    return edit(table, change)


def cell(text: str, row: int, column: str, value: str) -> str:
    lines = text.splitlines()
    header = lines[0].split(",")
    cells = lines[row + 1].split(",")
    cells[header.index(column)] = value
    lines[row + 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


def column(text: str, name: str, values: Callable[[int], str]) -> str:
    lines = text.splitlines()
    j = lines[0].split(",").index(name)
    out = [lines[0]]
    for i, line in enumerate(lines[1:]):
        cells = line.split(",")
        cells[j] = values(i)
        out.append(",".join(cells))
    return "\n".join(out) + "\n"


def make_dir(name: str) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        (folder / name).unlink()
        (folder / name).mkdir()
    return apply


def latin1(folder: Path) -> None:
    path = folder / "organisations.csv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[-1], "Ch\u00e2teau")
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))


def write_file(relative: str, text: str) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        (folder / relative).write_text(text)
    return apply


def remove(relative: str) -> Callable[[Path], None]:
    return lambda folder: (folder / relative).unlink()


CASES = [
    # ------------------------------------------------------------------ settings (issue 12 item 5)
    Case("seed-text", ["seed=abc"], ["seed='abc'", "whole number >= 0"]),
    Case("seed-negative", ["seed=-1"], ["seed=-1", "whole number >= 0"]),
    Case("seed-fraction", ["seed=1.5"], ["seed=1.5", "whole number"]),
    Case("draws-text", ["sampler.draws=many"], ["sampler.draws='many'", "whole number > 0"]),
    Case("draws-negative", ["sampler.draws=-5"], ["sampler.draws=-5", "whole number > 0"]),
    Case("draws-fraction", ["sampler.draws=10.5"], ["sampler.draws=10.5", "whole number > 0"]),
    Case("tune-negative", ["sampler.tune=-1"], ["sampler.tune=-1", "whole number >= 0"]),
    Case("chains-zero", ["sampler.chains=0"], ["sampler.chains=0", "whole number > 0"]),
    Case("cores-negative", ["sampler.cores=-2"], ["sampler.cores=-2", "whole number > 0"]),
    Case("target-accept-above-1", ["sampler.target_accept=1.5"], ["sampler.target_accept=1.5", "between 0 and 1"]),
    Case("target-accept-0", ["sampler.target_accept=0"], ["sampler.target_accept=0", "between 0 and 1"]),
    Case("progressbar-text", ["sampler.progressbar=sometimes"], ["sampler.progressbar='sometimes'", "auto"]),
    Case("chain-method-unknown", ["++sampler.chain_method=fast"], ["sampler.chain_method='fast'", "vectorized"]),
    Case("adaptation-unknown", ["++sampler.adaptation=dense"], ["sampler.adaptation='dense'", "low_rank"]),
    Case("adaptation-for-pymc", ["sampler=pymc", "++sampler.adaptation=low_rank"], ["sampler.adaptation='low_rank'", "read by nutpie alone"]),
    Case("chain-method-for-nutpie", ["++sampler.chain_method=vectorized"], ["sampler.chain_method='vectorized'", "read by numpyro alone"]),
    Case("nuts-sampler-unknown", ["sampler.nuts_sampler=stan"], ["nuts_sampler='stan'", "pymc"]),
    Case("max-rhat-text", ["diagnostics.max_rhat=abc"], ["diagnostics.max_rhat='abc'", "a number >= 1"]),
    Case("max-rhat-below-1", ["diagnostics.max_rhat=0.5"], ["diagnostics.max_rhat=0.5", "a number >= 1"]),
    Case("min-ess-negative", ["diagnostics.min_ess_bulk=-1"], ["diagnostics.min_ess_bulk=-1", ">= 0"]),
    Case("max-divergences-fraction", ["diagnostics.max_divergences=0.5"], ["max_divergences=0.5", "whole number"]),
    Case("max-moment-matched-negative", ["diagnostics.max_moment_matched=-1"],
         ["diagnostics.max_moment_matched=-1", "a whole number >= 0"]),
    Case("sampler-unknown-key", ["++sampler.drawz=10"], ["sampler.drawz is not a sampler setting", "draws, tune"]),
    Case("diagnostics-unknown-key", ["++diagnostics.max_rhatt=1.1"], ["diagnostics.max_rhatt", "max_rhat"]),
    Case("target-builtins-open", ["++data.x._target_=builtins.open", "++data.x.file={tmp}/victim.txt",
                                  "++data.x.mode=w"], ["data.x._target_=builtins.open", "carestar."],
         untouched=["victim.txt"]),
    Case("target-shutil-copyfile", ["++data.x._target_=shutil.copyfile", "++data.x.src={tmp}/other.txt",
                                    "++data.x.dst={tmp}/victim.txt"], ["shutil.copyfile", "refused"],
         untouched=["victim.txt"]),
    Case("target-model-os-system", ["++model.priors._target_=os.system", "++model.priors.command=true"],
         ["model.priors._target_=os.system"]),
    Case("target-data-replaced", ["data._target_=subprocess.run", "++data.args=[true]"], ["subprocess.run"]),
    Case("task-unknown", ["task=nosuch"], ["task='nosuch' is not a task", "fit"]),
    Case("predictor-unknown", ["model.predictors=[strategy_type,budget]"], ["budget", "model.predictors"]),
    Case("study-without-dir", ["data=study"], ["data=study needs data.dir"]),
    # ------------------------------------------------------------------ levels of the hierarchy (issue 13 item 3)
    Case("groups-unknown-level", ["model.groups=[org,county]"], ["model.groups", "'county'", "'region'"]),
    Case("groups-not-a-list", ["model.groups=region"], ["model.groups='region'", "a list"]),
    Case("groups-twice", ["model.groups=[org,org]"], ["model.groups=['org', 'org']", "twice"]),
    Case("groups-on-csv", [*ORDINAL, "model.groups=[org,region]"], ["model.groups=['org', 'region']",
                                                                    "data=study", "(1|g)"]),
    Case("region-sd-above-org-sd", ["data.ratings.region_sd=0.9"], ["data.ratings.region_sd=0.9",
                                                                    "data.ratings.org_sd=0.8"]),
    Case("region-sd-negative", ["data.ratings.region_sd=-0.1"], ["data.ratings.region_sd=-0.1", "[0,"]),
    Case("study-folder-missing", ["data=study", "data.dir={tmp}/nowhere"], ["nowhere", "study folder not found"]),
    Case("simulate-into-user-folder", ["task=simulate", "out={tmp}/mine"], ["out=", "already holds files",
                                                                          "overwrite=true"],
         untouched=["mine/notes.txt"]),
    Case("run-dir-holds-files", ["task=simulate", "hydra.run.dir={tmp}/mine"], ["hydra.run.dir", "already holds"],
         untouched=["mine/notes.txt"]),
    # ------------------------------------------------------------------ study files
    Case("study-missing-column", STUDY, ["ratings.csv", "'stars'", "missing column"],
         study=edit("ratings", lambda f: f.drop(columns="stars"))),
    Case("study-renamed-column", STUDY, ["resources.csv", "rename 'deprivaton' -> 'deprivation'"],
         study=edit("resources", lambda f: f.rename(columns={"deprivation": "deprivaton"}))),
    Case("study-stars-out-of-range", STUDY, ["ratings.csv", "column 'stars'", "'5'", "rows: 6", "between 0 and 3"],
         study=set_cell("ratings", 4, "stars", "5")),
    Case("study-non-numeric", STUDY, ["resources.csv", "'spend_per_head'", "'lots'", "rows: 4"],
         study=set_cell("resources", 2, "spend_per_head", "lots")),
    Case("study-1e300", STUDY, ["resources.csv", "'spend_per_head'", "out of range", "rows: 4"],
         study=set_cell("resources", 2, "spend_per_head", "1e300")),
    Case("study-literal-nan", STUDY, ["resources.csv", "'deprivation'", "literal 'NaN'", "rows: 5"],
         study=set_cell("resources", 3, "deprivation", "NaN")),
    Case("study-empty-cell", STUDY, ["ratings.csv", "'stars'", "empty cells", "rows: 3"],
         study=set_cell("ratings", 1, "stars", "")),
    Case("study-duplicate-org-year", STUDY, ["ratings.csv", "duplicate", "(org, year)"],
         study=edit("ratings", lambda f: pd.concat([f, f.iloc[[3]]], ignore_index=True))),
    Case("study-empty-table", STUDY, ["ratings.csv", "no rows"],
         study=lambda d: (d / "ratings.csv").write_text((d / "ratings.csv").read_text().splitlines()[0] + "\n")),
    Case("study-unknown-org", STUDY, ["ratings.csv", "column 'org'", "'E007'", "organisations.csv"],
         study=edit("organisations", lambda f: f[f["org"] != "E007"])),
    Case("study-region-outside-set", STUDY, ["organisations.csv", "'country'", "'Wales'", "rows: 2"],
         study=set_cell("organisations", 0, "country", "Wales")),
    Case("study-table-missing", STUDY, ["strategy.csv", "file not found"], study=remove("strategy.csv")),
    Case("study-table-is-a-folder", STUDY, ["ratings.csv", "is a folder, not a file"], study=make_dir("ratings.csv")),
    Case("study-latin-1", STUDY, ["organisations.csv", "not UTF-8", "line 4", "rows: 4", "UTF-8"], study=latin1),
    Case("study-truth-not-json", STUDY, ["truth.json", "not valid JSON"], study=write_file("truth.json", "{oops")),
    # ------------------------------------------------------------------ a tidy CSV and its formula
    Case("csv-missing-file", ["data=csv", "data.path={tmp}/nowhere.csv", "model.formula='y ~ x'"],
         ["nowhere.csv", "file not found"]),
    Case("csv-is-a-folder", ["data=csv", "data.path={tmp}", "model.formula='y ~ x'"], ["is a folder"]),
    Case("country-csv-without-country-columns", ["data=csv", "data.path={csv}", "model=country",
                                                   "model.formula='y ~ x + (1|g)'"],
         ["tidy.csv", "model=country needs the column(s) ['org', 'measure', 'country']", "one row per organisation"]),
    Case("country-csv-figure4", ["data=csv", "data.path={csv}", "model=country", "model.figure4=true",
                                 "model.formula='y ~ x + (1|g)'"],
         ["model.figure4=true", "country_comparison", "data=csv", "tidy.csv", "model.figure4=false"]),
    Case("country-study-without-kinds", [*STUDY, "model=country"],
         ["model.kinds is null", "data=study has no kind column", "formula without kind"]),
    Case("csv-empty-file", BINOMIAL, ["tidy.csv", "the file is empty"], csv=lambda t: ""),
    Case("csv-header-only", BINOMIAL, ["tidy.csv", "no data rows"], csv=lambda t: t.splitlines()[0] + "\n"),
    Case("csv-latin-1", BINOMIAL, ["tidy.csv", "not UTF-8", "line 5", "0xe9"],
         csv=lambda t: cell(t, 3, "g", "caf\u00e9").encode("latin-1")),
    Case("csv-weights-column-missing", [*BINOMIAL, "data.weights=wt"], ["weights column 'wt'", "did you mean 'w'?"]),
    Case("csv-weights-non-numeric", [*BINOMIAL, "data.weights=w"], ["column 'w'", "non-numeric", "rows: 4"],
         csv=lambda t: cell(t, 2, "w", "two")),
    Case("csv-weights-negative", [*BINOMIAL, "data.weights=w"], ["column 'w'", "negative", "rows: 3"],
         csv=lambda t: cell(t, 1, "w", "-1")),
    Case("csv-weights-inf", [*BINOMIAL, "data.weights=w"], ["column 'w'", "infinite", "rows: 6", "whole numbers"],
         csv=lambda t: cell(t, 4, "w", "inf")),
    Case("csv-weights-all-zero", [*BINOMIAL, "data.weights=w"], ["column 'w'", "every frequency weight is 0"],
         csv=lambda t: column(t, "w", lambda i: "0")),
    Case("csv-weights-fractional", [*BINOMIAL, "data.weights=w"], ["column 'w'", "fractional", "rows: 2, 3"],
         csv=lambda t: column(t, "w", lambda i: "0.5" if i < 2 else "1")),
    Case("csv-predictor-1e300", BINOMIAL, ["tidy.csv", "column 'x'", "too large", "1e+300", "rows: 7"],
         csv=lambda t: cell(t, 5, "x", "1e300")),
    Case("csv-predictor-inf", BINOMIAL, ["column 'x'", "too large", "inf", "rows: 3"],
         csv=lambda t: cell(t, 1, "x", "inf")),
    Case("csv-predictor-text", BINOMIAL, ["column 'x'", "non-numeric", "'abc'", "rows: 4"],
         csv=lambda t: cell(t, 2, "x", "abc")),
    Case("csv-lca-covariate-missing", [*LCA, "model.covariates=[x]"],
         ["tidy.csv", "column 'x'", "missing covariate", "rows: 3", "data.dropna=true"],
         csv=lambda t: cell(t, 1, "x", "")),
    Case("csv-lca-covariate-formula-unknown-column", [*LCA, "model.covariates='x * nope'"],
         ["model.covariates 'x * nope'", "['nope'] not in the data"]),
    Case("csv-predictor-missing", BINOMIAL, ["column 'x'", "missing values", "rows: 3", "data.dropna=true"],
         csv=lambda t: cell(t, 1, "x", "")),
    Case("csv-predictor-constant", [*BINOMIAL[:3], "model.formula='y ~ x'"], ["column 'x'", "one value only"],
         csv=lambda t: column(t, "x", lambda i: "1")),
    Case("csv-formula-missing-column", [*BINOMIAL[:3], "model.formula='y ~ xx'"], ["column 'xx'", "did you mean 'x'?"]),
    Case("csv-formula-does-not-parse", [*BINOMIAL[:3], "model.formula='y ~ x +'"], ["does not parse"]),
    Case("csv-outcome-one-category", BINOMIAL, ["one category only"], csv=lambda t: column(t, "y", lambda i: "1")),
    Case("csv-more-successes-than-trials", [*BINOMIAL[:3], "model.formula='y | trials(z) ~ x'"],
         ["more successes than trials", "rows: 2"], csv=lambda t: cell(column(t, "z", lambda i: "3"), 0, "y", "4")),
    Case("csv-ordinal-level-not-listed", ORDINAL, ["'r'", "'Huge'", "rows: 4"], csv=lambda t: cell(t, 2, "r", "Huge")),
    Case("csv-ordinal-no-intercept", [*ORDINAL[:3], "model.formula='r ~ 0 + x'", ORDINAL[4]], ["intercept"]),
    Case("csv-levels-unknown-column", [*ORDINAL, "+data.levels.q=[a,b]"], ["data.levels names column 'q'"]),
    # ------------------------------------------------------------------ issue 14: families, formula terms
    Case("ordinal-unknown-family", ["model.family=stopping"], ["model.family='stopping'", "cumulative, sratio, cratio, acat"]),
    Case("csv-formula-smooth", [*ORDINAL[:3], "model.formula='r ~ s(x)'", ORDINAL[4]], ["'s(x)'", "smooth", "Supported:"]),
    Case("csv-formula-gaussian-process", [*ORDINAL[:3], "model.formula='r ~ gp(x)'", ORDINAL[4]], ["'gp(x)'", "Supported:"]),
    Case("csv-formula-measurement-error", [*BINOMIAL[:3], "model.formula='y ~ me(x, z)'"], ["'me(x, z)'", "Supported:"]),
    Case("csv-formula-unknown-function", [*BINOMIAL[:3], "model.formula='y ~ x + foo(z)'"], ["'foo(z)'", "unknown function"]),
    # ------------------------------------------------------------------ issue 14 item 3: monotonic effects mo(x)
    Case("csv-mo-not-whole-numbers", [*BINOMIAL[:3], "model.formula='y ~ mo(x)'"],
         ["tidy.csv", "column 'x'", "mo(x) needs an ordered predictor", "0.37", "rows: 3", "whole numbers 0, 1, ..., D"]),
    Case("csv-mo-negative", [*BINOMIAL[:3], "model.formula='y ~ mo(z)'"],
         ["tidy.csv", "column 'z'", "mo(z)", "rows: 2", "whole numbers 0, 1, ..., D"], csv=lambda t: cell(t, 0, "z", "-1")),
    Case("csv-mo-text-without-order", [*BINOMIAL[:3], "model.formula='y ~ mo(g)'"],
         ["tidy.csv", "column 'g'", "order is not known", "data.levels.g"]),
    Case("csv-mo-interaction", [*BINOMIAL[:3], "model.formula='y ~ mo(z):x'"], ["'mo(z):x'", "main effect of one column"]),
    Case("csv-mo-and-linear", [*BINOMIAL[:3], "model.formula='y ~ z + mo(z)'"], ["'z' is both mo(z) and another term"]),
    Case("study-mo-not-ordered", [*STUDY, "model.predictors=[\"mo(spend_per_head)\"]"],
         ["mo(spend_per_head) is not an ordered predictor", "local_measures_level"]),
    Case("csv-formula-cs-binomial", [*BINOMIAL[:3], "model.formula='y ~ x + cs(z)'"], ["cs(z)", "only the ordinal model"]),
    Case("csv-formula-cs-in-group-term", [*ORDINAL[:3], "model.formula='r ~ x + (cs(z)|g)'", ORDINAL[4]],
         ["'cs(z)'", "a term of its own", "not inside an interaction, a call or a group term"]),
    Case("sbc-cumulative-cs", ["task=sbc", *ORDINAL[:3], "model.formula='r ~ cs(x)'", ORDINAL[4]],
         ["task=sbc", "cumulative model with cs() terms", "model.family=acat"]),
    Case("csv-formula-cs-and-ordinary-effect", [*ORDINAL[:3], "model.formula='r ~ x + cs(x)'", ORDINAL[4]],
         ["'x' is both an ordinary effect and in cs(x)", "not identified"]),
]


def _load_run_module():
    spec = importlib.util.spec_from_file_location("carestar_run_entry", ROOT / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # Hydra finds conf/ beside the file of a task function defined in __main__ (as run.py's is)
    inspect.unwrap(module.main).__module__ = "__main__"
    return module


@pytest.fixture(scope="module")
def entry():
    return _load_run_module()


@pytest.fixture(scope="module")
def valid_study(tmp_path_factory) -> Path:
    return write_study(synthetic_study(1), tmp_path_factory.mktemp("valid") / "study")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_before_any_work(case, entry, valid_study, tmp_path, capsys, monkeypatch):
    (tmp_path / "victim.txt").write_text("precious\n")
    (tmp_path / "other.txt").write_text("other\n")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("the user's\n")
    study = Path(shutil.copytree(valid_study, tmp_path / "study"))
    if case.study:
        case.study(study)
    csv = tmp_path / "tidy.csv"
    text = case.csv(TIDY) if case.csv else TIDY
    csv.write_bytes(text if isinstance(text, bytes) else text.encode())
    before = {name: (tmp_path / name).read_bytes() for name in case.untouched}
    args = [a.format(tmp=tmp_path, study=study, csv=csv) for a in case.args]
    if not any(a.startswith("hydra.run.dir=") for a in args):
        args.append(f"hydra.run.dir={tmp_path / 'run'}")
    monkeypatch.setattr(sys, "argv", ["run.py", "sampler=smoke", *args])

    with pytest.raises(SystemExit) as stop:
        entry.main()
    err = capsys.readouterr().err
    assert stop.value.code == EXIT_USER_ERROR, err[-2000:]
    assert "carestar: error:" in err and "Traceback" not in err, err[-2000:]
    message = err[err.index("carestar: error:"):]
    for needle in case.needles:
        assert needle in message, f"{needle!r} not in:\n{message}"
    assert len(message.splitlines()) <= 8, message
    assert not list(tmp_path.rglob("run.json")) and not list(tmp_path.rglob("posterior.nc"))
    for name, content in before.items():
        assert (tmp_path / name).read_bytes() == content, f"{name} was changed"


def test_the_catalogue_only_grows():
    """The count of bad inputs refused cleanly (issue 12 closed with 69; issue 14: 74; cs(), mo(), model=country: 86;
    model.groups and region_sd: 92)."""
    assert len(CASES) >= 92
    assert len({c.name for c in CASES}) == len(CASES)

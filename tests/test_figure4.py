"""The poster's Figure 4 (``experiment=figure4``: ``model=country model.figure4=true``).

Slow: one run of the experiment as a user types it, with shorter chains (nutpie, 2 x
(300 + 300)), read back: the figure passes the layout rules of every run figure
(``tests/test_figures.py``), the markdown table has the three countries and the note that
Japan's column is documents only, and the estimated Northern Ireland - England difference
for internal-management measures has the sign of the synthetic truth and a 90% interval
that covers it. Fast: the grid and note on made-up estimates, the quantities without
kinds on made-up draws, and ``data=csv`` refused.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from conftest import compose_config, run_cli
from helpers_study import synthetic_study
from hydra.utils import instantiate
from test_country import fake_posterior
from test_figures import check_all

from carestar.errors import ConfigError
from carestar.micro_measures import prevalence
from carestar.runs import load_run
from carestar.synthetic import COUNTRY_COMPARISON
from models.country import CountryModel
from models.country_figure4 import NOTE, figure4, markdown, surveyed
from models.country_summaries import kind_estimates, prevalence_draws

COUNTRIES = ("England", "Northern Ireland", "Japan")
SHORT = ("sampler.draws=300", "sampler.tune=300", "sampler.chains=2")


@pytest.fixture(scope="module")
def figure4_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("figure4") / "run"
    result = run_cli("experiment=figure4", *SHORT, f"hydra.run.dir={run_dir}")
    assert result.returncode in (0, 3), (result.stdout + result.stderr)[-3000:]
    return run_dir


def made_up_estimates(truth: bool = True) -> pd.DataFrame:
    rows = []
    for kind, (e, n) in {"national": (0.55, 0.6), "internal": (0.45, 0.75)}.items():
        rows += [{"quantity": "share using", "country": "England", "kind": kind, "mean": e, "q05": e - 0.03,
                  "q95": e + 0.03, "truth": e + 0.01 if truth else float("nan")},
                 {"quantity": "share using", "country": "Northern Ireland", "kind": kind, "mean": n,
                  "q05": n - 0.15, "q95": n + 0.1, "truth": n - 0.02 if truth else float("nan")},
                 {"quantity": "difference", "country": "Northern Ireland - England", "kind": kind,
                  "mean": n - e, "q05": n - e - 0.15, "q95": n - e + 0.12,
                  "truth": n - e - 0.03 if truth else float("nan")}]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("truth", [True, False])
def test_grid_and_estimates_read_as_a_paper_needs(truth):
    """Without sampling: the layout rules, Japan's column headed and noted as documents only."""
    n_orgs = {"England": 150, "Northern Ireland": 5}
    fig = figure4(COUNTRY_COMPARISON, made_up_estimates(truth), n_orgs)
    try:
        check_all({"figure4_countries": fig}, {"figure4_countries"})
        grid = fig.axes[0]
        heads = [t.get_text() for t in grid.get_xticklabels()]
        assert [h.split("\n")[0] for h in heads] == list(COUNTRIES)
        assert "no survey" in heads[2] and "survey: 150 councils" in heads[0]
        assert "documentary evidence only" in grid.get_xlabel() and "no survey" not in heads[0]
        cells = {t.get_text().replace("\n", " ") for t in grid.texts}
        assert set(COUNTRY_COMPARISON["Japan"]) <= cells
    finally:
        plt.close(fig)
    table = markdown(COUNTRY_COMPARISON, made_up_estimates(truth), n_orgs)
    assert NOTE in table and ("| truth |" in table) == truth


@pytest.mark.slow
def test_experiment_writes_figure4(figure4_run):
    run_dir = figure4_run
    for path in ("figures/figure4_countries.png", "tables/figure4_countries.md", "tables/figure4_estimates.csv"):
        assert (run_dir / path).stat().st_size > 0, path
    cfg = compose_config("experiment=figure4", *SHORT)
    model = instantiate(cfg.model)
    design = model.prepare(instantiate(cfg.data))
    _, idata = load_run(run_dir)
    figures = model.figures(idata, design)
    try:
        check_all({"figure4_countries": figures["figure4_countries"]}, {"figure4_countries"})
    finally:
        for fig in figures.values():
            plt.close(fig)


@pytest.mark.slow
def test_table_has_the_three_countries_and_the_japan_note(figure4_run):
    text = (figure4_run / "tables/figure4_countries.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| dimension |"))
    assert [c.strip().split(" (")[0] for c in header.strip("|").split("|")][1:] == list(COUNTRIES)
    assert "Japan (documents only, no survey)" in header and NOTE in text
    for dimension in COUNTRY_COMPARISON["dimension"]:
        assert f"| {dimension} |" in text
    assert "| difference | Northern Ireland - England | internal management |" in text


@pytest.mark.slow
def test_internal_management_difference_recovers_the_truth(figure4_run):
    """The poster's finding (Northern Ireland used more micro-level measures for internal
    management): the estimate has the truth's sign and its 90% interval covers the truth."""
    table = pd.read_csv(figure4_run / "tables/figure4_estimates.csv")
    row = table[(table["quantity"] == "difference") & (table["kind"] == "internal")].iloc[0]
    assert row["truth"] > 0 and row["mean"] > 0 and row["q05"] > 0, row.to_dict()
    assert row["q05"] <= row["truth"] <= row["q95"], row.to_dict()
    assert row["country"] == "Northern Ireland - England"
    shares = table[table["quantity"] == "share using"].set_index(["country", "kind"])["mean"]
    assert row["mean"] == pytest.approx(shares[("Northern Ireland", "internal")] - shares[("England", "internal")],
                                        abs=1e-12)


def test_figure4_with_a_tidy_csv_is_refused_before_any_work(tmp_path):
    """A CSV has no country_comparison table: the configuration error, before the design."""
    path = tmp_path / "mine.csv"
    path.write_text("org,measure,country,used\n" + "".join(
        f"o{i},m{j},{'A' if i < 3 else 'B'},{(i + j) % 2}\n" for i in range(6) for j in range(2)))
    cfg = compose_config("data=csv", f"data.path={path}", "model=country", "model.figure4=true",
                         'model.formula="used ~ country + (1 | org)"')
    model = instantiate(cfg.model)
    with pytest.raises(ConfigError, match=r"model.figure4=true draws the study's country_comparison.*data=csv"):
        model.prepare(instantiate(cfg.data))
    assert model.figure4 is True


def test_without_kinds_one_group_of_all_measures():
    """A formula without kind (as data=study without model.kinds): one row per country and a
    difference over all measures, its truth the mean of the measures' true differences; every
    prevalence equal when only the intercept moves (made-up draws, no sampling)."""
    model = CountryModel(formula="used ~ country + (1 + country | measure) + (1 | org)", figure4=True)
    design = model.prepare(synthetic_study(1))
    assert design.kind_of_measure is None and list(design.comparison.columns[1:]) == list(COUNTRIES)
    table = kind_estimates(prevalence_draws(fake_posterior(design, -0.7, 1.3), design), design)
    assert list(table["kind"]) == ["all measures"] * 3
    shares = table[table["quantity"] == "share using"]
    np.testing.assert_allclose(shares["mean"], prevalence(-0.7, 1.3), rtol=1e-12)
    diff = table[table["quantity"] == "difference"].iloc[0]
    assert diff["mean"] == pytest.approx(0.0, abs=1e-12)
    assert diff["truth"] == pytest.approx(np.mean(list(design.truth["difference_by_measure"].values())))
    assert surveyed(design) == {"England": 150, "Northern Ireland": 5}
    fig = figure4(design.comparison, table, surveyed(design))
    try:
        check_all({"figure4_countries": fig}, {"figure4_countries"})
    finally:
        plt.close(fig)

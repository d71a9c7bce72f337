"""model=country: the table from the study, the organisation-integrated LOO units and
prevalences against direct quadrature, the unpooled model's maximum likelihood against
scikit-learn's, and (slow) recovery of the synthetic country differences by kind."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from helpers_study import synthetic_config, synthetic_study
from scipy import integrate
from scipy.special import expit

from carestar import mle
from carestar.errors import ConfigError
from carestar.micro_measures import prevalence
from carestar.synthetic import SyntheticParams
from carestar.study_files import load_study, write_study
from carestar.tidy_csv import load_csv
from models.country import CountryModel, org_log_likelihood
from models.country_summaries import difference_table, prevalence_draws


def kinds():
    return SyntheticParams.from_config(synthetic_config()).micro_measures.kind


@pytest.fixture(scope="module")
def design():
    return CountryModel(kinds=kinds()).prepare(synthetic_study(1))


def fake_posterior(design, intercept, org_sd, draws=2):
    """Every effect 0 but the intercept and the organisation SD."""
    shape = (1, draws)
    data = {"intercept": (("chain", "draw"), np.full(shape, intercept)),
            "beta": (("chain", "draw", "effect"), np.zeros(shape + (len(design.effects),))),
            "org_sd": (("chain", "draw", "org_coef"), np.full(shape + (1,), org_sd))}
    for term in design.groups:
        k = 1 + (0 if term.slopes is None else term.slopes.shape[1])
        data[f"{term.group.name}_effect"] = (("chain", "draw", term.group.name, f"{term.group.name}_coef"),
                                             np.zeros(shape + (len(term.group.levels), k)))
    return xr.Dataset(data, coords={"chain": [0], "draw": np.arange(draws), "effect": design.effects})


def test_study_table_has_the_country_dims_and_kinds(design):
    study = synthetic_study(1)
    assert design.n == len(study.micro_measures)
    assert design.country.levels == ("England", "Northern Ireland")
    assert len(design.org.levels) == len(study.organisations.query("country != 'Japan'"))
    assert dict(zip(design.measure.levels, design.kind_of_measure)) == kinds()
    assert design.effects == ["countryNorthern Ireland", "kindinternal", "countryNorthern Ireland:kindinternal"]
    model = CountryModel(kinds=kinds()).build(design)
    assert {"org", "measure"} <= set(model.coords)
    assert model.named_vars_to_dims["measure_effect"] == ("measure", "measure_coef")
    assert model.named_vars_to_dims["org_z"] == ("org", "org_coef")
    assert list(model.coords["measure_coef"]) == ["Intercept", "countryNorthern Ireland"]


def test_a_measure_without_a_kind_is_refused():
    partial = dict(list(kinds().items())[:-1])
    with pytest.raises(ConfigError, match="gives no kind for the measure"):
        CountryModel(kinds=partial).prepare(synthetic_study(1))


def test_study_folder_is_read_with_the_issues_formula(tmp_path):
    """data=study: micro_measures.csv and organisations.csv as written, no kind column needed
    with a formula without kind."""
    folder = write_study(synthetic_study(1), tmp_path / "study")
    design = CountryModel(formula="used ~ country + (1 + country | measure) + (1 | org)").prepare(load_study(folder))
    assert design.n == len(synthetic_study(1).micro_measures) and design.kind_of_measure is None
    assert design.effects == ["countryNorthern Ireland"]
    assert np.array_equal(design.y, synthetic_study(1).micro_measures["used"].to_numpy(int))


def test_org_unit_log_likelihood_integrates_the_intercept_out(design):
    """Gauss-Hermite per organisation against adaptive quadrature (scipy.integrate.quad)."""
    post = fake_posterior(design, 0.4, 0.9)
    unit = org_log_likelihood(post, design)
    for o in (0, len(design.org.levels) - 1):
        y = np.asarray(design.y)[design.org.codes == o]

        def density(u):
            p = expit(0.4 + u)
            return np.prod(np.where(y == 1, p, 1 - p)) * np.exp(-u ** 2 / (2 * 0.81)) / np.sqrt(2 * np.pi * 0.81)

        exact = np.log(integrate.quad(density, -10, 10, epsabs=1e-14)[0])
        # 21 nodes, org SD 0.9: error ~1e-6 in a unit's log likelihood, far below any LOO SE
        assert unit[0, 0, o] == pytest.approx(exact, abs=1e-5)


def test_prevalence_integrates_the_org_effect_as_the_truth_does(design):
    draws = prevalence_draws(fake_posterior(design, -0.7, 1.3), design)
    assert draws["prevalence"].dims == ("chain", "draw", "country", "measure")
    np.testing.assert_allclose(draws["prevalence"].values, prevalence(-0.7, 1.3), rtol=1e-12)
    table = difference_table(draws, design)
    assert set(table["level"]) == {"measure", "kind", "all"}
    np.testing.assert_allclose(table["difference"], 0.0, atol=1e-12)


def test_unpooled_model_matches_sklearn_maximum_likelihood(tmp_path):
    """The model without partial pooling (a fixed effect per measure, one country difference
    plus one for internal measures, no organisation term) on a user's table (data=csv) at its
    maximum likelihood (sampler=mle) equals an established ML logistic regression
    (scikit-learn, no penalty), and its prevalences are that regression's predictions."""
    from sklearn.linear_model import LogisticRegression

    study = synthetic_study(1)
    frame = study.micro_measures.merge(study.organisations[["org", "country"]], on="org")
    frame["ni_internal"] = ((frame["country"] == "Northern Ireland")
                            & frame["measure"].map(kinds()).eq("internal")).astype(int)
    frame.to_csv(tmp_path / "micro.csv", index=False)
    model = CountryModel(formula="used ~ measure + country + ni_internal")
    design = model.prepare(load_csv(tmp_path / "micro.csv", levels={"country": ["England", "Northern Ireland"]}))
    idata = mle.maximum_likelihood(model, design, {"name": "mle"}, seed=1)
    assert bool(idata["maximum_likelihood"].attrs["converged"])
    ours = idata.posterior
    X, y = design.X.to_numpy(float), np.asarray(design.y)
    ref = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(ours["beta"].values.ravel(), ref.coef_.ravel(), atol=2e-4)
    assert ours["intercept"].values.item() == pytest.approx(float(ref.intercept_[0]), abs=2e-4)
    draws = prevalence_draws(ours, design)
    fitted = ref.predict_proba(X)[:, 1]
    cell = design.country.codes * len(design.measure.levels) + design.measure.codes
    # rows of a cell differ only in ni_internal, which is constant within a cell: one fitted value each
    by_cell = np.array([fitted[cell == c].mean() for c in range(2 * len(design.measure.levels))])
    np.testing.assert_allclose(draws["prevalence"].values.ravel(), by_cell, atol=1e-4)
    loglik = np.sum(y * np.log(fitted) + (1 - y) * np.log1p(-fitted))
    assert idata["maximum_likelihood"].attrs["loglik"] == pytest.approx(loglik, abs=1e-6)


@pytest.mark.slow
def test_country_differences_by_kind_recovered_over_seeds():
    """The true Northern Ireland - England difference of each kind inside its 90% interval,
    for two synthetic studies (one model compiled once, nutpie; short chains: 300 draws each
    of 2 chains, enough for a 90% interval's ends to within a few hundredths). Seeds
    20071101, 1 and 2 with 500 + 500 draws also passed (219 s, too long for the suite)."""
    from carestar.refit import Refitter

    model = CountryModel(kinds=kinds())
    sampler = {"name": "nutpie", "nuts_sampler": "nutpie", "draws": 300, "tune": 300, "chains": 2, "cores": 2,
               "target_accept": 0.8}
    seeds = (20071101, 1)
    designs = [model.prepare(synthetic_study(s)) for s in seeds]
    refit = Refitter(model.build(designs[0]), sampler)
    for seed, design in zip(seeds, designs):
        idata = refit.fit(np.asarray(design.y), seed)
        table = difference_table(prevalence_draws(idata.posterior, design), design).set_index(["level", "name"])
        for kind, truth in design.truth["difference_by_kind"].items():
            row = table.loc[("kind", kind)]
            assert row["q05"] <= truth <= row["q95"], (seed, kind, truth, row.to_dict())

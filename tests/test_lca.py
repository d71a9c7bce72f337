"""Item responses (every bad input), the LCA likelihood against plain numpy, a short fit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy.stats import dirichlet

from carestar.errors import ConfigError, DataError
from carestar.figures import save_figures
from carestar.item_responses import IdentificationWarning, ItemResponses, check_n_classes
from carestar.study import Study
from models.lca import LatentClassModel, fit_em, row_loglik, simulate


def _study(local_practice: pd.DataFrame) -> Study:
    empty = pd.DataFrame()
    return Study(empty, empty, empty, empty, local_practice, empty, empty, source="test")


def _long(rows):
    t = pd.DataFrame(rows, columns=["org", "item", "degree_of_use", "used"])
    t["degree_of_use"] = t["degree_of_use"].astype("Int64")
    t["used"] = t["used"].astype("Int64")
    return t


GOOD = [
    ("a", "targets", 0, None), ("a", "criteria", None, 1),
    ("b", "targets", 3, None), ("b", "criteria", None, 0),
    ("c", "targets", 5, None),  # c: criteria missing
]


def test_from_study_codes_kinds_and_missing():
    r = ItemResponses.from_study(_study(_long(GOOD)))
    assert r.items == ("targets", "criteria")
    assert r.kinds == ("ordinal", "binary")
    assert r.n_categories == (6, 2)
    np.testing.assert_array_equal(r.codes, [[0, 1], [3, 0], [5, -1]])
    assert r.select(["targets"]).codes[:, 0].tolist() == [0, 3, 5]
    with pytest.raises(DataError, match="answer none"):
        r.select(["criteria"])


def test_item_with_one_observed_category():
    rows = [("a", "x", None, 1), ("b", "x", None, 1), ("a", "y", 1, None), ("b", "y", 2, None)]
    with pytest.raises(DataError, match="'x' has 1 observed category") as e:
        ItemResponses.from_study(_study(_long(rows)))
    assert e.value.rows == [2, 3] and "two different" in e.value.expected


def test_items_naming_missing_columns():
    with pytest.raises(ConfigError, match=r"\['nope'\] not in the data"):
        ItemResponses.from_study(_study(_long(GOOD)), items=["targets", "nope"])
    frame = pd.DataFrame({"A": [1, 2], "B": [1, 2]})
    with pytest.raises(ConfigError, match="'C'"):
        ItemResponses.from_frame(frame, ["A", "C"])


def test_n_classes_below_one_and_too_many():
    r = ItemResponses.from_study(_study(_long(GOOD)))
    with pytest.raises(ConfigError, match=">= 1"):
        check_n_classes(r, 0)
    with pytest.raises(ConfigError, match="only 3 rows"):
        check_n_classes(r, 4)
    v = pd.read_csv("tests/data/reference/values.csv")
    rv = ItemResponses.from_frame(v, list("ABCD"), weights="count")
    with pytest.raises(ConfigError, match="cannot be identified: 19 free parameters"):
        check_n_classes(rv, 4)


def test_more_parameters_than_patterns_warns():
    r, _ = simulate(30, [0.5, 0.5], np.full((2, 8, 3), 1 / 3), seed=1)
    with pytest.warns(IdentificationWarning, match="33 free parameters but the data hold only"):
        check_n_classes(r, 2)


@pytest.mark.parametrize("bad", [[1, -2, 3], [1, 0.5, 3]])
def test_negative_or_fractional_weights(bad):
    frame = pd.DataFrame({"A": [1, 2, 1], "B": [2, 1, 1], "n": bad})
    with pytest.raises(DataError, match="whole numbers >= 0") as e:
        ItemResponses.from_frame(frame, ["A", "B"], weights="n", source="my.csv")
    assert e.value.rows == [3] and e.value.column == "n" and e.value.file == "my.csv"


def test_organisation_with_every_item_missing():
    rows = GOOD + [("d", "targets", None, None), ("d", "criteria", None, None)]
    with pytest.raises(DataError, match=r"\['d'\] answer none") as e:
        ItemResponses.from_study(_study(_long(rows)))
    assert e.value.rows == [7, 8]
    frame = pd.DataFrame({"A": [1, 2, None], "B": [2, 1, None]})
    with pytest.raises(DataError, match="answer none") as e:
        ItemResponses.from_frame(frame, ["A", "B"])
    assert e.value.rows == [4]


def test_both_value_columns_in_a_row():
    rows = GOOD + [("d", "targets", 2, 1)]
    with pytest.raises(DataError, match="both degree_of_use and used") as e:
        ItemResponses.from_study(_study(_long(rows)))
    assert e.value.rows == [7]


def test_from_frame_missing_covariate_stops_unless_dropna(caplog):
    frame = pd.DataFrame({"A": ["no", "yes", "no", "yes", None], "B": [2, 1, 1, 2, 1],
                          "GPA": [1.0, None, 3.0, 2.0, 1.0]})
    with pytest.raises(DataError, match="missing covariate") as e:
        ItemResponses.from_frame(frame, ["A", "B"], covariates=["GPA"], source="my.csv")
    assert e.value.rows == [3] and e.value.column == "GPA" and "dropna" in str(e.value)
    with caplog.at_level("WARNING"):
        r = ItemResponses.from_frame(frame.drop(index=1), ["A", "B"], covariates=["GPA"],
                                     dropna=False)
        assert r.n_org == 4 and r.codes[3, 0] == -1  # the missing answer stays
        r = ItemResponses.from_frame(frame, ["A", "B"], covariates=["GPA"], dropna=True)
    assert "dropped 2 of 5 rows" in caplog.text and "lines 3, 6" in caplog.text
    assert r.category_labels == (("no", "yes"), (1, 2))
    assert r.n_org == 3 and r.covariates["GPA"].tolist() == [1.0, 3.0, 2.0]


# -- likelihood: PyMC graph vs plain numpy --------------------------------------------------
def _point_check(model, prepared, rng):
    r, K = prepared.responses, prepared.n_classes
    shares = rng.dirichlet(np.ones(K))
    probs = np.zeros((K, r.n_item, r.max_categories))
    point = {}
    for j, c in enumerate(r.n_categories):
        probs[:, j, :c] = rng.dirichlet(np.ones(c), size=K)
    names = [v.name for v in model.free_RVs]
    point["class_shares"] = shares
    if "item_probs" in names:
        point["item_probs"] = probs
    else:
        for c in sorted(set(r.n_categories)):
            js = [j for j in range(r.n_item) if r.n_categories[j] == c]
            point[f"item_probs_C{c}"] = probs[:, js, :c]
    logp = model.compile_logp(jacobian=False)
    ip = model.initial_point()
    value_point = {}
    for rv in model.free_RVs:
        vv = model.rvs_to_values[rv]
        tr = model.rvs_to_transforms[rv]
        x = point[rv.name]
        value_point[vv.name] = tr.forward(x).eval() if tr is not None else x
    assert set(value_point) == set(ip)
    got = logp(value_point)
    ll = float(r.row_weights @ row_loglik(r, probs, shares))
    prior = dirichlet(np.ones(K)).logpdf(shares) + sum(
        dirichlet(np.ones(c)).logpdf(probs[k, j, :c])
        for k in range(K) for j, c in enumerate(r.n_categories))
    np.testing.assert_allclose(got, ll + prior, rtol=1e-9)
    pot = model.compile_logp(vars=model.potentials, jacobian=False)
    np.testing.assert_allclose(pot(value_point), ll, rtol=1e-9)


def test_logp_matches_numpy_with_missing_weights_and_mixed_items():
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({
        "bin1": rng.integers(0, 2, 40).astype(float),
        "bin2": rng.integers(0, 2, 40).astype(float),
        "deg": rng.integers(0, 6, 40).astype(float),
        "n": rng.integers(0, 5, 40),
    })
    frame.loc[[3, 7], "deg"] = np.nan
    frame.loc[[5], "bin1"] = np.nan
    r = ItemResponses.from_frame(frame, ["bin1", "bin2", "deg"], weights="n")
    m = LatentClassModel(n_classes=2, em_starts=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IdentificationWarning)
        prep = m.prepare(r)
    model = m.build(prep)
    assert model.named_vars_to_dims["item_probs"] == ("class", "item", "category")
    _point_check(model, prep, rng)


def test_logp_matches_numpy_single_group():
    rng = np.random.default_rng(6)
    r, _ = simulate(60, [0.6, 0.4], rng.dirichlet(np.ones(3), size=(2, 5)), seed=2, missing=0.1)
    m = LatentClassModel(n_classes=2, em_starts=2)
    prep = m.prepare(r)
    model = m.build(prep)
    assert [v.name for v in model.free_RVs] == ["class_shares", "item_probs"]
    _point_check(model, prep, rng)
    iv = m.initvals(prep)
    assert iv["item_probs"].shape == (2, 5, 3) and np.all(iv["item_probs"] > 0)


def test_em_covariate_initvals_shape():
    r, _ = simulate(80, [0.6, 0.4], np.array([[[0.9, 0.1]] * 4, [[0.2, 0.8]] * 4]), seed=3)
    cov = pd.DataFrame({"x": np.random.default_rng(0).normal(size=80)})
    r = ItemResponses(r.orgs, r.items, r.codes, r.n_categories, r.category_labels, r.kinds,
                      covariates=cov)
    m = LatentClassModel(n_classes=2, covariates=["x"], em_starts=2)
    prep = m.prepare(r)
    model = m.build(prep)
    assert model.named_vars_to_dims["class_coefs"] == ("class_free", "coef")
    assert m.initvals(prep)["class_coefs"].shape == (1, 2)
    em = fit_em(r, 2, n_init=2)
    assert em.coefs is not None and np.allclose(em.coefs[0], 0)


# -- a short real fit: chains start at EM, relabel, r_hat ------------------------------------
@pytest.mark.slow
def test_simulated_150x12x3_converges_after_relabelling(tmp_path):
    import time

    from carestar import diagnostics as diag

    rng = np.random.default_rng(11)
    probs = rng.dirichlet(np.full(3, 0.5), size=(3, 12))
    r, z = simulate(150, [0.5, 0.3, 0.2], probs, seed=12, missing=0.05)
    m = LatentClassModel(n_classes=3)
    prep = m.prepare(r)
    model = m.build(prep)
    t = time.time()
    # 4 x 500 draws: r_hat's own noise reached 1.0108-1.0122 on 3 of 7 sampler seeds (the
    # chains agreeing on the classes); 4 x 1000: 1.0082 or less on 6 of 6 seeds
    with model:
        idata = pm.sample(1000, tune=500, chains=4, cores=1, random_seed=3, progressbar=False,
                          initvals=m.initvals(prep), compute_convergence_checks=False)
    raw = idata.copy()
    idata = m.postprocess(idata, prep)
    wall = time.time() - t
    conv = diag.convergence(idata, m.monitored(idata), {
        "max_rhat": 1.01, "min_ess_bulk": 400, "min_ess_tail": 200, "max_divergences": 0,
        "min_bfmi": 0.3})
    info = m.diagnostics(idata, prep)["latent_classes"]
    print(f"wall {wall:.1f}s", conv["checks"]["max_rhat"], info)
    assert conv["checks"]["max_rhat"]["value"] <= 1.01  # the run's own gate, at 4 x 1000 draws
    assert info["chains_agree"]
    tables = m.tables(idata, prep)
    assert set(tables) >= {"class_shares", "item_profiles", "class_membership", "fit", "ppc_answers"}
    assert tables["ppc_answers"]["inside"].mean() >= 0.75  # the fitted model reproduces its answers
    assert 0.8 < tables["fit"]["relative_entropy"].iloc[0] <= 1
    assert idata["log_likelihood"]["responses"].shape[-1] == 150
    assert (tmp_path / "item_profiles.png").exists() is False
    assert save_figures(m.figures(idata, prep), tmp_path)["item_profiles"].exists()
    assert "Chains agree" in m.report_section(idata, prep)
    # one interval width everywhere (90%, as summary.csv): issue 17
    assert "| 90% interval |" in m.report_section(idata, prep) and "94%" not in m.report_section(idata, prep)
    assert {"q05", "q95"} <= set(tables["class_shares"]) and {"q05", "q95"} <= set(tables["item_profiles"])
    share = idata["posterior"]["class_shares"].isel({"class": 0})
    assert tables["class_shares"]["q95"].iloc[0] == pytest.approx(float(share.quantile(0.95)))
    assert info["posterior_matches_em"], info["posterior_vs_em"]
    assert "not at the maximum likelihood" not in m.report_section(idata, prep)
    # classes ordered by use (class 1 = lowest) in the tables the run writes
    from models.lca.em import class_use
    assert np.all(np.diff(class_use(prep.em.probs, r.n_categories)) > 0)
    prof = tables["item_profiles"]
    mean = np.zeros(prep.em.probs.shape)
    mean[prof["class"] - 1, [r.items.index(i) for i in prof["item"]], prof["category"]] = \
        prof["mean"]
    assert np.all(np.diff(class_use(mean, r.n_categories)) > 0)
    # fed an EM point from another mode (shares of a different solution), it says so
    from dataclasses import replace
    other = replace(prep, em=replace(prep.em, shares=prep.em.shares[::-1].copy()))
    flagged = m.postprocess(raw, other)
    assert not m.diagnostics(flagged, other)["latent_classes"]["posterior_matches_em"]
    assert "not at the maximum likelihood (EM) solution" in m.report_section(flagged, other)


def test_ordinal_emission_locations_sum_to_zero_over_classes():
    """Each item's class locations sum to zero over the classes (not over the items)."""
    rng = np.random.default_rng(8)
    r, _ = simulate(60, [0.5, 0.3, 0.2], rng.dirichlet(np.ones(6), size=(3, 4)), seed=4)
    r = ItemResponses(r.orgs, r.items, r.codes, r.n_categories, r.category_labels,
                      ("ordinal",) * 4)
    m = LatentClassModel(n_classes=3, ordinal_emission=True, em_starts=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prep = m.prepare(r)
    model = m.build(prep)
    assert model.named_vars_to_dims["class_location"] == ("item_ordinal", "class")
    draw = pm.draw(model["class_location"], random_seed=1)
    np.testing.assert_allclose(draw.sum(axis=1), 0, atol=1e-9)
    assert np.abs(draw.sum(axis=0)).max() > 1e-3  # free across items: a class may be high on all
    iv = m.initvals(prep)["class_location"]
    assert iv.shape == (4, 3)
    np.testing.assert_allclose(iv.sum(axis=1), 0, atol=1e-9)


def test_weighted_rows_become_units_for_loo():
    from models.lca import loo_units

    ll = np.arange(2 * 3 * 3, dtype=float).reshape(2, 3, 3)
    out, names = loo_units(ll, ["a", "b", "c"], np.array([2.0, 0.0, 1.0]))
    assert names == ["a.1", "a.2", "c.1"]
    np.testing.assert_array_equal(out, ll[..., [0, 0, 2]])
    same, labels = loo_units(ll, ["a", "b", "c"], None)
    assert same is ll and labels == ["a", "b", "c"]

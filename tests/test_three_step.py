"""The three-step shortcut's pieces that need no fit: ordering k-means clusters by use, the
``model.three_step.classify`` config, and experiments/three_step/aggregate.py on fake runs.

The parts that need the synthetic study are in tests/test_joint.py (three-step section).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from carestar.errors import ConfigError
from carestar.item_responses import ItemResponses
from models.joint import JointModel, order_clusters_by_use, three_step_methods
from models.kmeans import KMeansBaseline
from models.lca import simulate


# ---------------------------------------------------------------------------------------
# ordering clusters by use of local practice
# ---------------------------------------------------------------------------------------
def _responses(codes, n_categories):
    codes = np.asarray(codes)
    return ItemResponses(
        orgs=tuple(f"o{i}" for i in range(len(codes))),
        items=tuple(f"i{j}" for j in range(codes.shape[1])), codes=codes,
        n_categories=tuple(n_categories),
        category_labels=tuple(tuple(range(c)) for c in n_categories),
        kinds=tuple("binary" if c == 2 else "ordinal" for c in n_categories))


def test_clusters_ordered_by_use_by_hand():
    """Use = mean over items of the mean of code / (C_j - 1) over the members who answered.

    Cluster 7 answers only item 0 (5 of 5: use 1.0; its missing item 1 is skipped, not 0,
    which would give 0.5), cluster 3 uses little (0.2 and 0: 0.1), cluster 5 some
    ((0.6 + 0.4) / 2 and 1: 0.75), so the order is 3 < 5 < 7.
    """
    r = _responses([[5, -1], [5, -1], [1, 0], [1, 0], [3, 1], [2, 1]], [6, 2])
    assert order_clusters_by_use(np.array([7, 7, 3, 3, 5, 5]), r).tolist() == [2, 2, 0, 0, 1, 1]


def _three_classes(seed=0):
    """Classes 0 / 1 / 2 that use 8 items (0-5) little / somewhat / much, 10% missing."""
    low, mid, high = ([0.6, 0.2, 0.1, 0.05, 0.03, 0.02], [0.05, 0.15, 0.3, 0.3, 0.15, 0.05],
                      [0.02, 0.03, 0.05, 0.1, 0.2, 0.6])
    probs = np.array([[low] * 8, [mid] * 8, [high] * 8])
    return simulate(240, [0.3, 0.4, 0.3], probs, seed=seed, missing=0.1)


def test_kmeans_clusters_come_out_ordered_by_use():
    r, z = _three_classes()
    labels = KMeansBaseline(n_clusters=3).fit(r, seed=1).labels  # numbered by size
    ordered = order_clusters_by_use(labels, r)
    assert sorted(set(ordered)) == [0, 1, 2]
    assert (ordered == z).mean() > 0.9, np.bincount(ordered * 3 + z, minlength=9)


def test_cluster_order_does_not_depend_on_the_labels():
    r, _ = _three_classes(1)
    labels = KMeansBaseline(n_clusters=3).fit(r, seed=1).labels
    expected = order_clusters_by_use(labels, r)
    for perm in ([3, 1, 2], [2, 3, 1], [30, 10, 20]):
        relabelled = np.array(perm)[labels - 1]  # labels are 1..3
        assert (order_clusters_by_use(relabelled, r) == expected).all(), perm


# ---------------------------------------------------------------------------------------
# model.three_step.classify
# ---------------------------------------------------------------------------------------
def test_classify_methods():
    assert three_step_methods({}) == ("em",)
    assert three_step_methods({"classify": "kmeans"}) == ("kmeans",)
    assert three_step_methods({"classify": ["em", "kmeans", "em"]}) == ("em", "kmeans")
    assert JointModel(three_step={"enabled": True, "classify": ["kmeans"]}
                      ).three_step_classify == ("kmeans",)


def test_unknown_classify_method_is_refused_before_any_work():
    with pytest.raises(ConfigError, match=r"three_step.classify.*\['lca'\].*'em', 'kmeans'"):
        JointModel(three_step={"enabled": True, "classify": ["em", "lca"]})


def test_experiment_classifies_by_em_and_kmeans():
    from conftest import compose_config
    from hydra.utils import instantiate

    cfg = compose_config("experiment=three_step")
    assert list(cfg.model.three_step.classify) == ["em", "kmeans"]
    assert instantiate(cfg.model).three_step_classify == ("em", "kmeans")


# ---------------------------------------------------------------------------------------
# aggregate.py on fake run folders
# ---------------------------------------------------------------------------------------
def _effects(m2, m3, half=0.2):
    return pd.DataFrame({"class": [1, 2, 3], "mean": [0.0, m2, m3],
                         "q05": [0.0, m2 - half, m3 - half], "q95": [0.0, m2 + half, m3 + half],
                         "truth": [0.0, 0.4, 0.8]})


def _run(folder, seed, tables, manifest=True):
    (folder / "tables").mkdir(parents=True)
    if manifest:
        (folder / "run.json").write_text(json.dumps({"seed": seed}))
    for name, table in tables.items():
        table.to_csv(folder / "tables" / f"{name}.csv", index=False)


def test_aggregate_three_approaches_and_old_runs(tmp_path):
    """Two new runs (joint, EM, k-means, agreement), one old run (no k-means, no agreement)
    and one unfinished run (no run.json: skipped)."""
    from experiments.three_step.aggregate import main

    sweep = tmp_path / "sweep"
    for i, seed in enumerate((1, 2)):
        _run(sweep / str(i), seed, {
            "class_effects": _effects(0.4, 0.8),
            "three_step_class_effects": _effects(0.3, 0.6),
            "three_step_kmeans_class_effects": _effects(0.1, 0.5),
            "three_step_agreement": pd.DataFrame({
                "comparison": ["em vs kmeans", "em vs truth", "kmeans vs truth"],
                "adjusted_rand_index": [0.5 + 0.1 * i, 0.7, 0.6]})})
    _run(sweep / "2", 3, {"class_effects": _effects(0.4, 0.8),
                          "three_step_class_effects": _effects(0.3, 0.6)})
    _run(sweep / "3", 4, {"class_effects": _effects(9.0, 9.0)}, manifest=False)
    out = tmp_path / "out"
    main([str(sweep), "--out", str(out)])

    fits = pd.read_csv(out / "fits.csv")
    assert sorted(fits["seed"].unique()) == [1, 2, 3]
    assert fits.groupby("approach")["seed"].nunique().to_dict() == {
        "joint": 3, "three-step (EM)": 3, "three-step (k-means)": 2}
    text = (out / "results.md").read_text()
    assert "(3 synthetic studies)" in text
    assert "| joint | 2 | 3 | 0.40 | +0.000 (0.000) |" in text, text
    assert "| three-step (EM) | 3 | 3 | 0.80 | -0.200 (0.000) |" in text, text
    assert "| three-step (k-means) | 2 | 2 | 0.40 | -0.300 (0.000) |" in text, text
    assert "| three-step (k-means) | 3 | 2 | 0.80 | -0.300 (0.000) | 0.300 | 0.00 (0.00) |" in text
    assert "| em vs kmeans | 2 | 0.55 | 0.50 to 0.60 |" in text, text
    assert (out / "three_step.png").stat().st_size > 0


def test_aggregate_writes_into_the_sweep_and_records_only_when_asked(tmp_path, monkeypatch):
    """By default the sweep's own folder gets the result, and the repository's recorded
    result is left alone; ``--record`` writes there."""
    from experiments.three_step import aggregate

    recorded = tmp_path / "recorded"
    monkeypatch.setattr(aggregate, "RECORDED", recorded)
    sweep = tmp_path / "sweep"
    _run(sweep / "0", 1, {"class_effects": _effects(0.4, 0.8),
                          "three_step_class_effects": _effects(0.3, 0.6)})
    aggregate.main([str(sweep)])
    assert {"results.md", "summary.csv", "agreement.csv", "fits.csv", "three_step.png"} <= {p.name for p in sweep.iterdir()}
    assert not recorded.exists()
    aggregate.main([str(sweep), "--record"])
    assert (recorded / "results.md").read_text() == (sweep / "results.md").read_text()
    summary = pd.read_csv(recorded / "summary.csv")
    assert summary.loc[summary["approach"] == "three-step (EM)", "bias"].round(3).tolist() == [-0.1, -0.2]


def test_aggregate_old_runs_have_no_agreement_section(tmp_path):
    from experiments.three_step.aggregate import main

    _run(tmp_path / "sweep" / "0", 1, {"class_effects": _effects(0.4, 0.8),
                                       "three_step_class_effects": _effects(0.3, 0.6)})
    main([str(tmp_path / "sweep"), "--out", str(tmp_path / "out")])
    text = (tmp_path / "out" / "results.md").read_text()
    assert "three-step (EM)" in text and "k-means" not in text and "Rand" not in text


def test_aggregate_reports_convergence_and_the_converged_subset(tmp_path):
    """diagnostics.json of each run: the count passing, and the table again for those only."""
    from experiments.three_step.aggregate import main

    sweep = tmp_path / "sweep"
    for i, (m2, passed) in enumerate([(0.4, True), (0.4, True), (1.4, False)]):
        _run(sweep / str(i), i + 1, {"class_effects": _effects(m2, 0.8)})
        checks = {"max_rhat": {"value": 1.002 if passed else 1.05},
                  "min_ess_bulk": {"value": 900 if passed else 120}}
        (sweep / str(i) / "diagnostics.json").write_text(json.dumps({
            "convergence": {"passed": passed, "checks": checks},
            "latent_classes": {"chains_agree": passed}}))
    out = tmp_path / "out"
    main([str(sweep), "--out", str(out)])
    text = (out / "results.md").read_text()
    assert "passing every convergence gate: 2 of 3; chains agreeing on the classes: 2" in text
    assert "worst 1.050" in text and "(worst 120)" in text, text
    subset = text.split("Only the studies whose joint fit passed every gate:")[1]
    assert "| joint | 2 | 2 | 0.40 | +0.000 (0.000) |" in subset, subset  # the bad fit left out
    assert "| joint | 2 | 3 | 0.40 | +0.333" in text, text
    assert pd.read_csv(out / "convergence.csv")["passed"].tolist() == [True, True, False]


def test_aggregate_pools_sweeps_and_refuses_a_seed_run_twice(tmp_path):
    """Seeds 1-2 from one sweep and 3 from another are one result; a seed in both stops it."""
    from experiments.three_step.aggregate import main

    tables = {"class_effects": _effects(0.4, 0.8), "three_step_class_effects": _effects(0.3, 0.6)}
    for seed in (1, 2):
        _run(tmp_path / "first" / str(seed - 1), seed, tables)
    _run(tmp_path / "second" / "0", 3, tables)
    main([str(tmp_path / "first"), str(tmp_path / "second"), "--out", str(tmp_path / "out")])
    assert sorted(pd.read_csv(tmp_path / "out" / "fits.csv")["seed"].unique()) == [1, 2, 3]
    assert "(3 synthetic studies)" in (tmp_path / "out" / "results.md").read_text()

    _run(tmp_path / "second" / "1", 2, tables)
    with pytest.raises(SystemExit, match=r"seeds \[2\] were run in more than one"):
        main([str(tmp_path / "first"), str(tmp_path / "second"), "--out", str(tmp_path / "out")])

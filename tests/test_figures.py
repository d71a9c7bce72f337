"""Every figure of a run, read as a reader would: labels that name their scale, a zero line
in forest plots, legends clear of titles and data, tick labels that do not overlap, 90%
intervals, and a visible mark on the figures of a run that failed its gates.

The figures are matplotlib ``Figure`` objects (``carestar.run_figures``), so these checks
read their artists after a draw; no image is compared. The fits are the session's
(``smoke_run``: the default ordinal model with ``sampler=smoke``; ``joint_fit``), the
binomial model's draws its prior's (no sampling), the k-means baseline fitted as it is.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from conftest import ROOT, compose_config
from hydra.utils import instantiate
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from carestar.figures import save_figures
from carestar.run_figures import failed_gates, sampled_run_figures, write_run_figures
from carestar.runs import load_run


def _texts(fig: Figure) -> list[str]:
    out = [t.get_text() for t in fig.texts]
    if fig._suptitle is not None:  # noqa: SLF001 (matplotlib keeps it apart from fig.texts)
        out.append(fig._suptitle.get_text())  # noqa: SLF001
    for ax in fig.axes:
        out += [ax.get_title(loc) for loc in ("left", "center", "right")]
        out += [ax.get_xlabel(), ax.get_ylabel()]
        if (legend := ax.get_legend()) is not None:
            out += [t.get_text() for t in legend.get_texts()] + [legend.get_title().get_text()]
    return out


def _overlap(a, b, pad: float = 1.0) -> bool:
    return a.x0 + pad < b.x1 and b.x0 + pad < a.x1 and a.y0 + pad < b.y1 and b.y0 + pad < a.y1


def check_layout(name: str, fig: Figure) -> None:
    """Labels present; legends over no title and no axes; tick labels apart."""
    canvas = FigureCanvasAgg(fig)  # a saved figure is closed: draw it on a canvas of its own
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    canvas.draw()
    renderer = canvas.get_renderer()
    titles = [t for ax in fig.axes for t in (ax.title, ax._left_title, ax._right_title)  # noqa: SLF001
              if t.get_text()]
    if fig._suptitle is not None:  # noqa: SLF001
        titles.append(fig._suptitle)  # noqa: SLF001
    assert titles, f"{name}: no title"
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            assert ax.get_ylabel() or ax.get_xlabel(), f"{name}: colour bar without a label"
            continue
        assert ax.get_xlabel().strip(), f"{name}: an axis without an x label ({ax.get_title()!r})"
        shared = ax.get_shared_y_axes().get_siblings(ax)  # a row of panels labelled once
        assert any(a.get_ylabel().strip() or any(t.get_text() for t in a.get_yticklabels()) for a in shared), \
            f"{name}: an axis without a y label"
        for axis_labels in (ax.get_yticklabels(), ax.get_xticklabels()):
            boxes = [t.get_window_extent(renderer) for t in axis_labels if t.get_text() and t.get_visible()]
            for i in range(len(boxes) - 1):
                assert not _overlap(boxes[i], boxes[i + 1]), f"{name}: tick labels overlap on {ax.get_title()!r}"
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for title in titles:
            assert not _overlap(box, title.get_window_extent(renderer)), f"{name}: legend covers a title"
        for ax in fig.axes:
            assert not _overlap(box, ax.get_window_extent(renderer), pad=2.0), f"{name}: legend covers data"


def check_forest(fig: Figure, *, scale: str, reference: str | None) -> None:
    """Effect panels: a dashed line at 0 and an x label naming the scale (and the
    reference category); probability, SD and cutpoint panels without a zero line."""
    effect_axes = [ax for ax in fig.axes if "ffect" in ax.get_title(loc="left")]
    assert effect_axes, "a forest plot without an effects panel"
    for ax in effect_axes:
        zero = [line for line in ax.get_lines() if line.get_gid() == "zero_line"]
        assert zero and np.allclose(zero[0].get_xdata(), 0.0), ax.get_title(loc="left")
    effects = effect_axes[0]
    assert scale in effects.get_xlabel(), effects.get_xlabel()
    if reference:
        assert f"vs {reference}" in effects.get_xlabel(), effects.get_xlabel()
    for ax in fig.axes:
        title = ax.get_title(loc="left")
        if title.startswith(("Group SDs", "Cutpoints", "Class shares")):
            assert not [line for line in ax.get_lines() if line.get_gid() == "zero_line"], title
    assert any("90% interval" in t for t in _texts(fig))


def check_all(figures: dict[str, Figure], interval_figures: set[str]) -> None:
    for name, fig in figures.items():
        check_layout(name, fig)
        if name in interval_figures:
            assert any("90%" in t for t in _texts(fig)), f"{name} does not say its interval is 90%"


@pytest.fixture(scope="module")
def ordinal_figures(smoke_run):
    run_dir, _ = smoke_run
    cfg = compose_config("model=ordinal", "sampler=smoke")
    model = instantiate(cfg.model)
    prepared = model.prepare(instantiate(cfg.data))
    _, idata = load_run(run_dir)
    diagnostics = json.loads((run_dir / "diagnostics.json").read_text())
    figures = sampled_run_figures(model, idata, prepared)
    yield run_dir, diagnostics, figures
    for fig in figures.values():
        plt.close(fig)


@pytest.mark.slow
def test_every_figure_of_the_default_smoke_run_is_written_and_marked_failed(ordinal_figures, tmp_path):
    run_dir, diagnostics, figures = ordinal_figures
    expected = {"forest_effects", "ppc_star_counts", "figure1_strategy", "rank_plots", "loo_pit"}
    assert set(figures) == expected
    assert {p.stem for p in (run_dir / "figures").glob("*.png")} == expected  # what the run wrote
    failed = failed_gates(diagnostics)
    assert failed and "max_rhat" in failed  # 40 draws a chain: the smoke run fails its gates
    path = write_run_figures({"loo_pit": figures["loo_pit"]}, tmp_path, diagnostics)["loo_pit"]
    banner = [t for t in figures["loo_pit"].texts if t.get_gid() == "failed_gates"]
    assert banner and banner[0].get_text().startswith("FAILED GATES: max_rhat")
    assert path.stat().st_size > 10_000
    passed = {**diagnostics, "convergence": {"checks": {}}, "loo": None}
    assert failed_gates(passed) == []


@pytest.mark.slow
def test_default_run_figures_read_as_a_paper_needs(ordinal_figures):
    _, _, figures = ordinal_figures
    check_all(figures, {"forest_effects", "ppc_star_counts", "figure1_strategy"})
    check_forest(figures["forest_effects"], scale="latent logit", reference="defender")
    titles = [ax.get_title(loc="left") for ax in figures["forest_effects"].axes]
    assert titles[:2] == ["Effects (a positive one moves ratings up)", "Year effects (vs the mean year)"]
    rank = figures["rank_plots"]
    assert len(rank.axes) == 8 and all(ax.get_xlabel() == "fractional rank" for ax in rank.axes)
    assert figures["loo_pit"].axes[0].get_xlabel() == "LOO-PIT value"
    assert figures["ppc_star_counts"].get_suptitle() == "Posterior predictive check: star counts per year"


@pytest.mark.slow
@pytest.mark.xdist_group("joint_fit")  # on the worker that fits it for test_joint
def test_joint_model_figures(joint_fit):
    model, prep, idata = joint_fit
    figures = sampled_run_figures(model, idata, prep)
    try:
        assert {"forest_effects", "figure1_strategy", "item_profiles", "drivers", "rank_plots",
                "ppc_answers"} <= set(figures)
        assert "loo_pit" not in figures  # a vector likelihood per organisation: the answers are checked
        check_all(figures, {"forest_effects", "figure1_strategy", "item_profiles", "drivers", "ppc_answers"})
        check_forest(figures["forest_effects"], scale="latent logit", reference="defender")
        shares = [ax for ax in figures["forest_effects"].axes if ax.get_title(loc="left").startswith("Class shares")]
        assert shares and "probability" in shares[0].get_xlabel()  # apart from the effects
        profiles = figures["item_profiles"]
        classes = [ax.get_title() for ax in profiles.axes[1:]]
        assert [c.split("\n")[0] for c in classes] == [f"class {k}" for k in prep.class_labels]
        class_axes = [ax for ax in profiles.axes[1:] if ax.get_title()]
        assert all(any(isinstance(c, ErrorbarContainer) for c in ax.containers) for ax in class_axes)
    finally:
        for fig in figures.values():
            plt.close(fig)


def test_binomial_figures_without_sampling():
    """The binomial model's posterior predictive figure, forest panels, rank plots and
    LOO-PIT for the cbpp model, from draws made up around glmer's estimates (2 chains x
    40; no sampling, no compiling): the figures, not the fit, are under test."""
    import xarray as xr

    cfg = compose_config("data=csv", "data.path=tests/data/reference/cbpp.csv", "model=binomial",
                         'model.formula="incidence | trials(size) ~ C(period) + (1|herd)"')
    cfg.data.path = str(ROOT / "tests/data/reference/cbpp.csv")
    model = instantiate(cfg.model)
    design = model.prepare(instantiate(cfg.data))
    rng = np.random.default_rng(3)
    herds = list(design.groups[0].group.levels)
    sd = np.abs(rng.normal(0.65, 0.1, (2, 40, 1)))
    post = xr.Dataset(
        {"intercept": (("chain", "draw"), rng.normal(-1.4, 0.2, (2, 40))),
         "beta": (("chain", "draw", "effect"), rng.normal([-1.0, -1.1, -1.8], 0.3, (2, 40, 3))),
         "herd_sd": (("chain", "draw", "herd_coef"), sd),
         "herd_effect": (("chain", "draw", "herd", "herd_coef"),
                         sd[:, :, None, :] * rng.normal(size=(2, 40, len(herds), 1)))},
        coords={"chain": [0, 1], "draw": np.arange(40), "effect": design.effects, "herd": herds,
                "herd_coef": ["Intercept"]})
    groups = model.pointwise(xr.DataTree.from_dict({"posterior": post}), design, seed=1)
    tree = xr.DataTree.from_dict({
        "posterior": post, **groups,
        "observed_data": xr.Dataset({design.outcome: ("obs", np.asarray(design.y))},
                                    coords={"obs": np.arange(design.n)})})
    figures = sampled_run_figures(model, tree, design)
    try:
        assert {"forest_effects", "ppc_proportions", "rank_plots", "loo_pit"} <= set(figures)
        check_all(figures, {"forest_effects", "ppc_proportions"})
        check_forest(figures["forest_effects"], scale="log odds", reference="its first level")
        ppc = figures["ppc_proportions"].axes[0]
        assert ppc.get_xlabel() == "herd" and len(ppc.get_xticks()) == len(herds)
    finally:
        for fig in figures.values():
            plt.close(fig)


def test_kmeans_heatmap_colour_bar_on_the_printed_scale():
    cfg = compose_config("model=kmeans", "model.compare_lca=false")  # the figure does not use it
    model = instantiate(cfg.model)
    prepared = model.prepare(instantiate(cfg.data))
    figures = model.figures(model.fit(prepared, seed=1), prepared)
    fig = figures["cluster_profiles"]
    try:
        check_all(figures, set())
        heat, bar = fig.axes
        assert "% of the item's top category" in bar.get_ylabel()
        assert heat.images[0].get_clim() == (0, 100)
        printed = [float(t.get_text()) for t in heat.texts]
        assert printed and min(printed) >= 0 and max(printed) <= 100
        assert np.allclose(sorted(printed), np.sort(np.rint(heat.images[0].get_array().ravel())))
    finally:
        plt.close(fig)


def test_three_step_figure_numbers_studies_by_seed():
    sys.path.insert(0, str(ROOT / "experiments" / "three_step"))
    import aggregate
    import pandas as pd

    fits = pd.read_csv(ROOT / "experiments" / "three_step" / "fits.csv")
    fig = aggregate.figure(fits)
    try:
        check_all({"three_step": fig}, {"three_step"})
        seeds = sorted(int(s) for s in fits["seed"].unique())
        for ax in fig.axes:
            ticks = set(ax.get_xticks(minor=True)) | set(ax.get_xticks())  # matplotlib drops minor under major
            assert ticks == set(range(len(seeds)))  # a tick per study
            labels = {int(x): t.get_text() for x, t in zip(ax.get_xticks(), ax.get_xticklabels())}
            assert labels[0] == str(seeds[0]) and len(labels) >= len(seeds) // 5
            assert all(text == str(seeds[x]) for x, text in labels.items())  # each label its own study's seed
            assert ax.get_xlabel() == "synthetic study (seed)"
    finally:
        plt.close(fig)


def test_saved_figures_are_pngs(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    paths = save_figures({"a": fig}, tmp_path, failed=["max_rhat"])
    assert Path(paths["a"]).read_bytes()[:4] == b"\x89PNG"
    assert [t.get_text() for t in fig.texts if t.get_gid() == "failed_gates"] == [
        "FAILED GATES: max_rhat (see diagnostics.json)"]


def test_gallery_commands_compose():
    """Each command of the gallery (docs/figures/regenerate.py) is a config Hydra composes."""
    sys.path.insert(0, str(ROOT / "docs" / "figures"))
    import regenerate

    assert set(regenerate.RUNS) == {"ordinal", "lca", "kmeans", "joint", "binomial", "country"}
    for overrides, _ in regenerate.RUNS.values():
        compose_config(*overrides)

"""Figures: comparative 1-D curves, 2-D contour and surface PNGs, self-contained HTML."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from gradscope.errors import GradscopeError
from gradscope.landscape import (
    LandscapeSettings,
    compare_landscapes,
    compute_landscape,
    open_landscape,
    plot_1d,
    plot_contour,
    plot_html,
    plot_surface,
    save_plots,
)
from kit.landscape import accuracy, ce_loss, classification_batches, mlp

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5_000


def test_comparative_1d_figure_has_one_curve_per_source(tmp_path: Path) -> None:
    models = {"adam": mlp(), "sam": mlp(), "graphsam": mlp()}
    out = compare_landscapes(models, classification_batches(), ce_loss, LandscapeSettings(points_x=7),
                             metric_fn=accuracy, metric_name="accuracy", out_dir=tmp_path, progress=False)
    fig = plot_1d(out, tmp_path / "cmp.png")
    ax = fig.axes[0]
    curves = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert [c.get_label() for c in curves] == ["adam", "sam", "graphsam"]
    for c, ls in zip(curves, out.values()):
        np.testing.assert_array_equal(c.get_xdata(), ls.x)
        np.testing.assert_array_equal(c.get_ydata(), ls.loss)
    assert _is_png(tmp_path / "cmp.png")
    # from files too, and the metric instead of the loss
    fig_m = plot_1d(sorted(tmp_path.glob("*.h5")), quantity="metric")
    assert fig_m.axes[0].get_ylabel() == "accuracy"


def test_2d_pngs_and_partial_surfaces(tmp_path: Path) -> None:
    ls = compute_landscape(mlp(), classification_batches(), ce_loss, LandscapeSettings(dims=2, points_x=7, points_y=5),
                           out_path=tmp_path / "s.h5", progress=False)
    plot_contour(ls, tmp_path / "c.png")
    plot_surface(tmp_path / "s.h5", tmp_path / "s.png", log=True)
    assert _is_png(tmp_path / "c.png") and _is_png(tmp_path / "s.png")
    partial = open_landscape(tmp_path / "s.h5")
    partial.done[:2] = False  # an interrupted run: NaN holes must not break the plots
    plot_contour(partial, tmp_path / "p.png")
    assert _is_png(tmp_path / "p.png")
    with pytest.raises(GradscopeError, match="2-D"):
        plot_1d(ls)
    with pytest.raises(GradscopeError, match="1-D"):
        plot_contour(compute_landscape(mlp(), classification_batches(), ce_loss, LandscapeSettings(points_x=3),
                                       progress=False))
    with pytest.raises(GradscopeError, match="no metric"):
        plot_contour(ls, quantity="metric")


def test_html_is_self_contained(tmp_path: Path) -> None:
    ls = compute_landscape(mlp(), classification_batches(), ce_loss, LandscapeSettings(dims=2, points_x=5),
                           progress=False)
    path = plot_html(ls, tmp_path / "s.html")
    text = path.read_text(encoding="utf-8")
    has_plot = "Plotly.newPlot" in text
    external_scripts = re.findall(r"<script[^>]*\bsrc=[^>]*>", text)
    assert has_plot and external_scripts == []  # works offline: nothing is fetched
    assert path.stat().st_size > 1_000_000  # plotly.js is inlined


def test_save_plots_writes_everything(tmp_path: Path) -> None:
    batches = classification_batches()
    one = compare_landscapes({"a": mlp(), "b": mlp()}, batches, ce_loss, LandscapeSettings(points_x=5), progress=False)
    two = compute_landscape(mlp(), batches, ce_loss, LandscapeSettings(dims=2, points_x=5), label="sam run",
                            progress=False)
    paths = save_plots(list(one.values()) + [two], tmp_path / "fig")
    names = sorted(p.name for p in paths)
    assert names == sorted([
        "landscape_1d.png", "landscape_1d.html", "landscape_sam_run_contour.png", "landscape_sam_run_surface.png",
        "landscape_sam_run.html",
    ])
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)


def test_comparison_figure_overlays_curves_and_draws_a_contour_per_surface(tmp_path: Path) -> None:
    from gradscope.landscape import comparison_figure, comparison_plotly
    from gradscope.landscape.plot import comparison_panels

    batches = classification_batches()
    curves = compare_landscapes({"a": mlp(), "b": mlp()}, batches, ce_loss, LandscapeSettings(points_x=5), progress=False)
    surface = compute_landscape(mlp(), batches, ce_loss, LandscapeSettings(dims=2, points_x=5), label="s",
                                progress=False)
    items = [("A", curves["a"]), ("S", surface), ("B", curves["b"])]
    assert comparison_panels(items) == 2
    fig = comparison_figure(items, colors=["#111111", "#222222", "#333333"])
    left, right = fig.axes[:2]
    lines = [line for line in left.get_lines() if not line.get_label().startswith("_")]
    assert [line.get_label() for line in lines] == ["A", "B"]
    assert [line.get_color() for line in lines] == ["#111111", "#333333"]  # each item keeps its own colour
    np.testing.assert_array_equal(lines[1].get_ydata(), curves["b"].loss)
    assert right.get_title() == "S: 2-D loss" and right.get_ylabel().startswith("β")
    p = comparison_plotly(items)
    np.testing.assert_allclose(np.asarray(p.data[2].z, dtype=float), surface.loss)
    partial = open_landscape(compute_landscape(mlp(), batches, ce_loss, LandscapeSettings(dims=2, points_x=3),
                                               out_path=tmp_path / "p.h5", progress=False).path)
    partial.done[:] = False
    partial.done[1, 1] = True  # one point computed: a note instead of a contour that cannot be drawn
    fig = comparison_figure([("P", partial)])
    assert "too few points computed" in [t.get_text() for t in fig.axes[0].texts]
    with pytest.raises(GradscopeError, match="draws into 1 axes"):
        comparison_figure([("P", partial)], axes=list(comparison_figure(items).axes[:2]))


def test_density_figure(tmp_path: Path) -> None:
    from gradscope.landscape import SpectralDensity, plot_density

    density = SpectralDensity(nodes=np.array([[0.0, 1.0, 4.0]]), weights=np.array([[0.2, 0.5, 0.3]]))
    plot_density({"sam": density}, tmp_path / "d.png")
    assert _is_png(tmp_path / "d.png")
    with pytest.raises(GradscopeError, match="no spectral density"):
        plot_density({})

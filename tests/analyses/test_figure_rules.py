"""Figures a reader can trust at a glance (analyses.plotting): one colour per run in every figure and
report section, whole-number ticks on epoch and step axes, legends that cover no data, an attention
heat map whose title clears its colour bar, and table columns in one number format."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.colors as mcolors
import numpy as np
import pytest
from matplotlib.container import BarContainer
from kit.traces import sam_like, write_landscape, write_trace

import analyses.report as report
from analyses import plotting
from analyses.attention import attention_heatmap, heatmap_figure
from analyses.kinds import KINDS, PlotOptions
from analyses.runs import load_runs
from analyses.tables import format_column, to_markdown

LABELS = ("Adam", "SAM", "GraphSAM")
EPOCHS = {"epoch": np.arange(6), "train_loss": np.linspace(1, 0.5, 6), "val_loss": np.linspace(1.1, 0.7, 6),
          "test_loss": np.linspace(1.2, 0.8, 6), "val_roc_auc": np.linspace(0.6, 0.8, 6),
          "test_roc_auc": np.linspace(0.5, 0.7, 6), "graphs_per_s": np.full(6, 100.0),
          "attention_entropy": np.linspace(2.0, 2.5, 6)}


@pytest.fixture
def runs(tmp_path):
    """Adam first (no ε: left out of Observation 2), so a figure that numbered the runs it draws would
    shift SAM's and GraphSAM's colours; only SAM has a landscape."""
    x = np.linspace(-1, 1, 9)
    adam = {"omega_norm": np.linspace(1, 2, 60), "omega_change": np.linspace(0, 1, 60), "grad_evals": np.ones(60),
            "epoch": np.arange(60) // 10}
    write_trace(tmp_path / "adam" / "trace.h5", adam, EPOCHS, optimizer="Adam")
    write_trace(tmp_path / "sam" / "trace.h5", sam_like(60, 1), EPOCHS, optimizer="SAM")
    write_landscape(tmp_path / "sam" / "landscape" / "d1.h5", x, x**2)
    gsam = sam_like(60, 2)
    gsam["cos_eps_exact"] = np.where(np.arange(60) % 4 == 1, 0.4, np.nan)
    write_trace(tmp_path / "gsam" / "trace.h5", gsam, EPOCHS, optimizer="GraphSAM")
    loaded = load_runs([tmp_path / "adam", tmp_path / "sam", tmp_path / "gsam"])
    assert [r.label for r in loaded] == list(LABELS)
    return loaded


def _hex(color) -> str:
    return mcolors.to_hex(color)


def _owner(text: str) -> str | None:
    """The run a legend text, trace name or tick label belongs to (``"SAM: ‖ε_t‖"`` → ``SAM``)."""
    for label in sorted(LABELS, key=len, reverse=True):
        if text == label or text.startswith((f"{label}:", f"{label} ")):
            return label
    return None


def _mpl_colors(fig) -> dict[str, set[str]]:
    """Run → colours of its lines, legend entries and bars in a matplotlib figure."""
    found: dict[str, set[str]] = {}
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    for legend in legends:
        for handle, text in zip(legend.legend_handles, legend.get_texts()):
            owner = _owner(text.get_text())
            if owner and hasattr(handle, "get_color"):
                found.setdefault(owner, set()).add(_hex(handle.get_color()))
    for ax in fig.axes:
        for line in ax.get_lines():
            owner = _owner(line.get_label())
            if owner:
                found.setdefault(owner, set()).add(_hex(line.get_color()))
        names = [t.get_text() for t in ax.get_xticklabels()]
        for container in ax.containers:
            if isinstance(container, BarContainer) and len(container.patches) == len(names):
                for patch, name in zip(container.patches, names):
                    if _owner(name):
                        found.setdefault(_owner(name), set()).add(_hex(patch.get_facecolor()))
    return found


def _plotly_colors(fig) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for trace in fig.data:
        owner = _owner(trace.name or "")
        line = getattr(trace, "line", None)
        if owner and line is not None and line.color:
            found.setdefault(owner, set()).add(_hex(line.color))
        marker = getattr(trace, "marker", None)
        if marker is not None and isinstance(marker.color, (tuple, list)):  # bars: one colour per run
            for name, colour in zip(trace.x, marker.color):
                if _owner(str(name)):
                    found.setdefault(_owner(str(name)), set()).add(_hex(colour))
    return found


def _merge(into: dict[str, set[str]], more: dict[str, set[str]]) -> None:
    for owner, colours in more.items():
        into.setdefault(owner, set()).update(colours)


def _one_colour_each(found: dict[str, set[str]], expected_runs: set[str]) -> None:
    assert set(found) == expected_runs, found
    assert all(len(c) == 1 for c in found.values()), found
    colours = [next(iter(c)) for c in found.values()]
    assert len(set(colours)) == len(colours), found  # and no two runs share one
    want = plotting.run_colors(LABELS)
    assert all(next(iter(found[r])) == want[r] for r in found), (found, want)


def test_every_plot_kind_gives_each_run_its_colour(runs):
    """`gradscope plot KIND RUN…`: the k-th run has the k-th colour in every kind, matplotlib and plotly."""
    options = PlotOptions(colors=plotting.run_colors(LABELS))
    everything: dict[str, set[str]] = {}
    for name, kind in KINDS.items():
        usable = [r for r in runs if r.landscapes] if kind.needs_landscape else runs
        if name == "obs2":
            usable = runs[1:]
        _merge(everything, _mpl_colors(kind.figure(usable, options)))
        _merge(everything, _plotly_colors(kind.plotly(usable, options)))
    _one_colour_each(everything, set(LABELS))


def test_a_figure_of_some_runs_keeps_their_colours_without_being_told(runs):
    """Without ``colors``, a figure numbers the runs it was given (Adam's absence from obs2 shifts nothing)."""
    fig = KINDS["obs2"].figure(runs, PlotOptions())  # Adam is given, and left out for lack of ε
    found = _mpl_colors(fig)
    assert set(found) == {"SAM", "GraphSAM"}
    assert found["SAM"] == {plotting.color(1)} and found["GraphSAM"] == {plotting.color(2)}


def test_every_report_section_gives_each_run_its_colour(runs, tmp_path, monkeypatch):
    figures = []
    original = report._plotly_div
    monkeypatch.setattr(report, "_plotly_div", lambda fig, div_id: figures.append(fig) or original(fig, div_id))
    report.build_report(runs, tmp_path / "r.html", kinds=[k for k in report.SECTIONS if k != "attention"])
    assert len(figures) == len(KINDS)
    everything: dict[str, set[str]] = {}
    for fig in figures:
        _merge(everything, _plotly_colors(fig))
    _one_colour_each(everything, set(LABELS))


# -- ticks and legends ------------------------------------------------------------------------------
def _visible_ticks(ax, axis: str = "x") -> np.ndarray:
    lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    ticks = ax.get_xticks() if axis == "x" else ax.get_yticks()
    return ticks[(ticks >= lo - 1e-9) & (ticks <= hi + 1e-9)]


@pytest.mark.parametrize("name", ["loss", "entropy", "obs1", "norms"])
def test_epoch_and_step_axes_have_whole_number_ticks(name, runs):
    fig = KINDS[name].figure(runs[1:], PlotOptions(zoom=(0, 5) if name in ("obs1", "norms") else None))
    fig.canvas.draw()
    axes = fig.axes if name != "entropy" else fig.axes[:1]  # entropy's right panel: layer/head bars
    for ax in axes:
        ticks = _visible_ticks(ax)
        assert ticks.size >= 2 and np.all(ticks == np.round(ticks)), (name, ax.get_xlabel(), ticks)


def test_plotly_epoch_axes_tick_whole_numbers(runs):
    fig = KINDS["loss"].plotly(runs, PlotOptions())
    assert fig.layout.xaxis.dtick >= 1 and float(fig.layout.xaxis.dtick).is_integer()
    assert fig.layout.xaxis.tickformat == "d"


def _data_extents(ax):
    """Window extent of the axes' plotting area (where the data is drawn)."""
    return ax.get_window_extent()


@pytest.mark.parametrize("name", list(KINDS))
def test_legends_cover_no_data(name, runs):
    usable = [r for r in runs if r.landscapes] if KINDS[name].needs_landscape else runs[1:]
    fig = KINDS[name].figure(usable, PlotOptions())
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    if name == "throughput":  # bars named on the x axis: no legend needed
        assert legends == []
        return
    assert legends, name
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>":
                continue
            assert not box.overlaps(_data_extents(ax)), (name, box, _data_extents(ax))


def test_a_legend_beside_axes_a_caller_passed_in(runs):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    from analyses.losses import loss_figure

    loss_figure(runs[1:], axes=axes)
    fig.canvas.draw()
    legend = axes[-1].get_legend()
    assert legend is not None
    box = legend.get_window_extent(fig.canvas.get_renderer())
    assert not any(box.overlaps(ax.get_window_extent()) for ax in axes)


# -- the attention heat map -------------------------------------------------------------------------
def test_heat_map_title_names_the_layer_and_clears_the_colour_bar():
    from test_attention import StandIn, stand_in_capture

    fig = attention_heatmap(StandIn(), None, molecule=0, layer=-1, capture=stand_in_capture)
    title = fig.get_suptitle()
    assert "layer -1" not in title and "layer 1 (the last of 2)" in title
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    text_box = fig._suptitle.get_window_extent(renderer)
    for ax in fig.axes:  # the map and its colour bar
        assert not text_box.overlaps(ax.get_window_extent(renderer)), ax.get_label()
    smiles = "CC(=O)Oc1ccccc1C(=O)O" * 3  # long: wrapped, not cut off by the figure's edge
    fig = heatmap_figure(np.eye(4) / 4, title=f"{smiles}\ntest #0, layer 1 (the last of 2), mean over heads")
    fig.canvas.draw()
    box = fig._suptitle.get_window_extent(fig.canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width


# -- tables -----------------------------------------------------------------------------------------
def test_a_column_shares_one_number_format():
    assert format_column([2.413, 2.7239, None, math.nan]) == ["2.4130", "2.7239", "—", "—"]
    assert format_column([1.0, 0.2645, 3.781]) == ["1.0000", "0.2645", "3.7810"]
    assert format_column([67.45, 72.46]) == ["67.45", "72.46"]
    assert format_column([12, 24]) == ["12", "24"]
    assert format_column([1.5e-7, 0.25]) == ["1.500e-07", "2.500e-01"]  # one needs it: the column is scientific
    table = to_markdown([{"run": "a", "x": 2.413}, {"run": "b", "x": 2.7239}])
    assert "| a | 2.4130 |" in table and "| b | 2.7239 |" in table

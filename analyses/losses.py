"""Loss curves per optimizer (GraphSAM paper, Wang et al., ICLR 2024, Fig. 5).

Left panel: ``epochs/train_loss``; right panel: ``epochs/test_loss``, or ``epochs/val_loss``
for a run that did not record a test loss (the legend says which). One colour per run.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analyses import plotting
from analyses.runs import MissingDataError, RunLike, epoch_column, epochs_axis, has_column, labelled
from gradscope.trace import Trace


@dataclass(frozen=True)
class LossCurves:
    """One run's per-epoch losses; ``held_out`` is ``"test"`` or ``"val"`` (or None)."""

    label: str
    epochs: np.ndarray
    train: np.ndarray | None
    held_out: str | None
    held_out_loss: np.ndarray | None


def loss_curves(trace: Trace, label: str = "") -> LossCurves:
    """The train and held-out (test, else validation) loss per epoch of one run."""
    epochs = epochs_axis(trace, label)
    train = epoch_column(trace, "train_loss", label) if has_column(trace, "epochs", "train_loss") else None
    held_out, values = None, None
    for split in ("test", "val"):
        if has_column(trace, "epochs", f"{split}_loss"):
            candidate = epoch_column(trace, f"{split}_loss", label)
            if np.isfinite(candidate).any():
                held_out, values = split, candidate
                break
    if (train is None or not np.isfinite(train).any()) and values is None:
        raise MissingDataError(f"{label or 'trace'}: trace has no epochs/train_loss, test_loss or val_loss (needed for loss curves)")
    return LossCurves(label, epochs, train, held_out, values)


def _collect(traces: Sequence[RunLike], labels: Sequence[str] | None) -> list[tuple[int, LossCurves]]:
    return [(i, loss_curves(trace, label)) for i, (label, trace) in enumerate(labelled(traces, labels))]


def _right_title(curves: list[tuple[int, LossCurves]]) -> str:
    kinds = {c.held_out for _, c in curves if c.held_out}
    return {frozenset({"test"}): "test loss", frozenset({"val"}): "validation loss"}.get(frozenset(kinds), "test / validation loss")


def _legend_label(c: LossCurves, curves: list[tuple[int, LossCurves]]) -> str:
    """The run's label; "(val)" where it shows a validation loss beside runs that show a test loss."""
    mixed = len({other.held_out for _, other in curves if other.held_out}) > 1
    return f"{c.label} ({c.held_out})" if mixed and c.held_out else c.label


def loss_figure(traces: Sequence[RunLike], labels: Sequence[str] | None = None, axes: Axes | Sequence[Axes] | None = None,
                logy: bool = False, colors: Mapping[str, str] | None = None) -> Figure:
    """Fig. 5: train loss (left) and test / validation loss (right) per epoch, one line per run."""
    curves = _collect(traces, labels)
    pal = plotting.palette([c.label for _, c in curves], colors)
    fig, (left, right) = plotting.mpl_axes(axes, 2)
    for _, c in curves:
        if c.train is not None:
            left.plot(c.epochs, c.train, marker="o", markersize=3, color=pal[c.label], label=c.label)
        if c.held_out_loss is not None:
            right.plot(c.epochs, c.held_out_loss, marker="o", markersize=3, color=pal[c.label],
                       label=_legend_label(c, curves))
    for ax, title in ((left, "train loss"), (right, _right_title(curves))):
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title(title)
        if logy:
            ax.set_yscale("log")
    plotting.integer_ticks(left, right)
    entries = [(Line2D([], [], color=pal[c.label], marker="o", markersize=3), _legend_label(c, curves)) for _, c in curves]
    plotting.legend_below(fig, [left, right], ncols=min(len(curves), 3), entries=entries)
    return fig


def loss_plotly(traces: Sequence[RunLike], labels: Sequence[str] | None = None, logy: bool = False,
                colors: Mapping[str, str] | None = None) -> Any:
    """Interactive (plotly) :func:`loss_figure`."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    curves = _collect(traces, labels)
    pal = plotting.palette([c.label for _, c in curves], colors)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("train loss", _right_title(curves)))
    for _, c in curves:
        line = dict(color=pal[c.label])
        if c.train is not None:
            fig.add_trace(go.Scatter(x=c.epochs, y=c.train, mode="lines+markers", name=c.label, legendgroup=c.label, line=line), row=1, col=1)
        if c.held_out_loss is not None:
            fig.add_trace(go.Scatter(x=c.epochs, y=c.held_out_loss, mode="lines+markers", name=f"{c.label} ({c.held_out})",
                                     legendgroup=c.label, line=line), row=1, col=2)
    fig.update_xaxes(title_text="epoch")
    plotting.plotly_integer_axis(fig, np.concatenate([c.epochs for _, c in curves]))
    fig.update_yaxes(title_text="loss", type="log" if logy else "linear")
    return plotting.plotly_layout(fig)

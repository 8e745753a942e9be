"""Attention entropy per run: sharpness-aware training spreads attention more evenly.

Wang et al., ICLR 2024 (arXiv 2406.13137), Fig. 10: the mean attention entropy of the trained
CoMPT on BBBP is lowest for Adam (2.4130), higher for GraphSAM (2.7239) and SAM (2.8382). The
recorder stores per epoch ``epochs/attention_entropy`` (mean row entropy in nats over layers,
heads and molecules) and optionally ``epochs/attention_entropy_layer_head`` (epochs × layers ×
heads).

The number reported for a run is the value at one epoch row (``at``: by default the last epoch
that measured it, ``"best"`` for the best validation epoch, or an epoch number). When only the
layer × head dataset was recorded, the run's value is its mean over layers and heads.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from analyses import plotting
from analyses.epochs import epoch_row
from analyses.paper import PAPER_ATTENTION_ENTROPY
from analyses.runs import MissingDataError, RunLike, canonical, epoch_column, epochs_axis, has_column, labelled
from gradscope.trace import Trace

LAYER_HEAD = "attention_entropy_layer_head"
ENTROPY_LABEL = "attention entropy (nats)"


@dataclass(frozen=True)
class EntropySummary:
    """One run's attention entropy at one epoch (``per_layer_head``: layers × heads, or None)."""

    label: str
    epoch: int
    mean: float
    per_layer_head: np.ndarray | None
    paper: float | None

    @property
    def per_layer(self) -> np.ndarray | None:
        """Mean over heads of each layer."""
        return None if self.per_layer_head is None else self.per_layer_head.mean(axis=1)

    def as_row(self) -> dict[str, Any]:
        return {"run": self.label, "epoch": self.epoch, "attention_entropy": self.mean,
                "paper_attention_entropy": self.paper}


def entropy_curve(trace: Trace, label: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(epochs, mean attention entropy per epoch); from the layer × head dataset when needed."""
    epochs = epochs_axis(trace, label)
    if has_column(trace, "epochs", "attention_entropy"):
        values = epoch_column(trace, "attention_entropy", label)
        if np.isfinite(values).any():
            return epochs, values
    if has_column(trace, "epochs", LAYER_HEAD):
        grid = _layer_head(trace, label)
        return epochs, grid.reshape(grid.shape[0], -1).mean(axis=1)
    raise MissingDataError(f"{label or 'trace'}: trace has no attention entropy (epochs/attention_entropy)")


def _layer_head(trace: Trace, label: str) -> np.ndarray:
    grid = epoch_column(trace, "attention_entropy_layer_head", label)
    if grid.ndim == 2:  # one layer, or layers flattened: treat as layers × 1 head
        grid = grid[:, :, None]
    if grid.ndim != 3:
        raise MissingDataError(f"{label or 'trace'}: epochs/{LAYER_HEAD} must be epochs × layers × heads, got shape {grid.shape}")
    return grid


def entropy_summary(trace: Trace, label: str = "", at: str | int = "last", metric: str | None = None) -> EntropySummary:
    """The run's attention entropy at epoch row ``at`` ("last", "best" or an epoch number)."""
    epochs, curve = entropy_curve(trace, label)
    if at == "last":  # the last epoch that measured it
        defined = np.flatnonzero(np.isfinite(curve))
        row = int(defined[-1]) if defined.size else int(curve.shape[0] - 1)
    else:
        row = epoch_row(trace, at, label, metric)
    value = float(curve[row])
    if not np.isfinite(value):
        raise MissingDataError(f"{label or 'trace'}: attention entropy undefined at epoch {int(epochs[row])}")
    grid = _layer_head(trace, label)[row] if has_column(trace, "epochs", LAYER_HEAD) else None
    if grid is not None and not np.isfinite(grid).all():
        grid = None
    return EntropySummary(label=label, epoch=int(epochs[row]), mean=value, per_layer_head=grid,
                          paper=PAPER_ATTENTION_ENTROPY.get(canonical(trace)))


def entropy_table(traces: Sequence[RunLike], labels: Sequence[str] | None = None, at: str | int = "last") -> list[dict[str, Any]]:
    """One row per run: ``run``, ``epoch``, ``attention_entropy``, ``paper_attention_entropy``."""
    return [entropy_summary(trace, label, at).as_row() for label, trace in labelled(traces, labels)]


def _collect(traces: Sequence[RunLike], labels: Sequence[str] | None, at: str | int) -> list[tuple[int, str, np.ndarray, np.ndarray, EntropySummary]]:
    out = []
    for i, (label, trace) in enumerate(labelled(traces, labels)):
        epochs, curve = entropy_curve(trace, label)
        out.append((i, label, epochs, curve, entropy_summary(trace, label, at)))
    return out


def _head_names(shape: tuple[int, int]) -> list[str]:
    return [f"L{layer}H{head}" for layer in range(shape[0]) for head in range(shape[1])]


def _at_title(at: str | int) -> str:
    return {"last": "at the last epoch", "best": "at the best validation epoch"}.get(str(at), f"at epoch {at}")


def entropy_figure(
    traces: Sequence[RunLike], labels: Sequence[str] | None = None, at: str | int = "last",
    axes: Axes | Sequence[Axes] | None = None, colors: Mapping[str, str] | None = None,
) -> Figure:
    """Fig. 10: entropy over epochs per run (paper values dotted), and per layer × head bars.

    The right panel shows grouped bars per layer/head at epoch ``at`` when every run recorded
    ``attention_entropy_layer_head`` with the same shape, else one bar per run.
    """
    runs = _collect(traces, labels, at)
    pal = plotting.palette([label for _, label, *_ in runs], colors)
    fig, (left, right) = plotting.mpl_axes(axes, 2)
    for i, label, epochs, curve, summary in runs:
        left.plot(epochs, curve, marker="o", markersize=3, color=pal[label], label=label)
        if summary.paper is not None:
            left.axhline(summary.paper, color=pal[label], linestyle=":", linewidth=1.0,
                         label=f"{label} (paper {summary.paper:.4f})")
    left.set_xlabel("epoch")
    left.set_ylabel(ENTROPY_LABEL)
    left.set_title("attention entropy over training")
    plotting.integer_ticks(left)
    grids = [s.per_layer_head for *_, s in runs]
    if all(g is not None for g in grids) and len({g.shape for g in grids}) == 1:  # type: ignore[union-attr]
        names = _head_names(grids[0].shape)  # type: ignore[union-attr]
        width = 0.8 / len(runs)
        x = np.arange(len(names))
        for k, (i, label, *_rest) in enumerate(runs):
            right.bar(x + (k - (len(runs) - 1) / 2) * width, np.ravel(grids[k]), width=width, color=pal[label])
        right.set_xticks(x, names, rotation=90, fontsize="small")
        right.set_xlabel("layer / head")
    else:
        x = np.arange(len(runs))
        right.bar(x, [s.mean for *_, s in runs], color=[pal[label] for _, label, *_ in runs])
        for k, (*_, s) in enumerate(runs):
            if s.paper is not None:
                right.plot([k - 0.4, k + 0.4], [s.paper, s.paper], color="black", linestyle=":", linewidth=1.2)
        right.set_xticks(x, [label for _, label, *_ in runs])
        right.set_xlabel("run (dotted: paper)")
    right.set_ylabel(ENTROPY_LABEL)
    right.set_title(_at_title(at))
    plotting.legend_below(fig, [left, right], ncols=min(len(runs), 3))
    return fig


def entropy_plotly(traces: Sequence[RunLike], labels: Sequence[str] | None = None, at: str | int = "last",
                   colors: Mapping[str, str] | None = None) -> Any:
    """Interactive (plotly) :func:`entropy_figure`."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    runs = _collect(traces, labels, at)
    pal = plotting.palette([label for _, label, *_ in runs], colors)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("attention entropy over training", _at_title(at)))
    for i, label, epochs, curve, summary in runs:
        fig.add_trace(go.Scatter(x=epochs, y=curve, mode="lines+markers", name=label, legendgroup=label,
                                 line=dict(color=pal[label])), row=1, col=1)
        if summary.paper is not None:
            fig.add_trace(go.Scatter(x=[epochs[0], epochs[-1]], y=[summary.paper] * 2, mode="lines",
                                     name=f"{label} (paper {summary.paper:.4f})",
                                     line=dict(color=pal[label], dash="dot")), row=1, col=1)
    grids = [s.per_layer_head for *_, s in runs]
    if all(g is not None for g in grids) and len({g.shape for g in grids}) == 1:  # type: ignore[union-attr]
        names = _head_names(grids[0].shape)  # type: ignore[union-attr]
        for k, (i, label, *_rest) in enumerate(runs):
            fig.add_trace(go.Bar(x=names, y=np.ravel(grids[k]), name=label, legendgroup=label, showlegend=False,
                                 marker_color=pal[label]), row=1, col=2)
        fig.update_layout(barmode="group")
        fig.update_xaxes(title_text="layer / head", row=1, col=2)
    else:
        fig.add_trace(go.Bar(x=[label for _, label, *_ in runs], y=[s.mean for *_, s in runs], showlegend=False,
                             marker_color=[pal[label] for _, label, *_ in runs]), row=1, col=2)
        fig.update_xaxes(title_text="run", row=1, col=2)
    fig.update_xaxes(title_text="epoch", row=1, col=1)
    plotting.plotly_integer_axis(fig, np.concatenate([epochs for _, _, epochs, *_ in runs]), row=1, col=1)
    fig.update_yaxes(title_text=ENTROPY_LABEL)
    return plotting.plotly_layout(fig)

"""Throughput and accuracy per optimizer (GraphSAM paper, Wang et al., ICLR 2024, Tables 2 and 7).

The paper's claim is that GraphSAM trains nearly as fast as the base optimizer (one
forward-backward pass per step except at anchors) while SAM needs two, at equal or better
accuracy. Per run this table gives:

- ``graphs_per_s``: mean over epochs of ``epochs/graphs_per_s`` (epochs with NaN ignored);
- ``vs_sam`` and ``vs_adam``: that throughput divided by the SAM run's and the Adam run's (the
  first run whose optimizer is SAM / Adam; ``None`` when there is none);
- ``metric``, ``test_metric``, ``best_epoch``: ``epochs/test_<metric>`` at the epoch with the best
  ``val_<metric>`` (see :mod:`analyses.epochs`);
- ``grad_evals``: total forward-backward passes the optimizer spent (sum of ``steps/grad_evals``),
  ``steps`` and ``passes_per_step`` (their ratio: 2 for SAM, about 1 for GraphSAM).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from analyses import plotting
from analyses.epochs import best_epoch_row, pick_metric
from analyses.runs import MissingDataError, RunLike, canonical, column, epoch_column, epochs_axis, has_column, labelled, optimizer_label
from gradscope.metrics import METRICS
from gradscope.trace import Trace

COLUMNS = ("run", "optimizer", "graphs_per_s", "vs_sam", "vs_adam", "metric", "test_metric", "best_epoch",
           "grad_evals", "steps", "passes_per_step")
HEADERS = {"graphs_per_s": "graphs/s", "vs_sam": "× SAM", "vs_adam": "× Adam", "test_metric": "test metric",
           "best_epoch": "best epoch", "grad_evals": "optimizer passes", "passes_per_step": "passes/step"}


def _mean_finite(values: np.ndarray) -> float | None:
    v = values[np.isfinite(values)]
    return float(v.mean()) if v.size else None


def _run_row(label: str, trace: Trace, metric: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {c: None for c in COLUMNS}
    row["run"] = label
    row["optimizer"] = optimizer_label(trace)
    if has_column(trace, "epochs", "graphs_per_s"):
        row["graphs_per_s"] = _mean_finite(epoch_column(trace, "graphs_per_s", label))
    try:
        name = pick_metric(trace, metric, label)
        best = best_epoch_row(trace, name, label)
        value = float(epoch_column(trace, f"test_{name}", label)[best])
        row.update(metric=name, test_metric=value if np.isfinite(value) else None,
                   best_epoch=int(epochs_axis(trace, label)[best]))
    except MissingDataError:
        if metric is not None:
            raise
    if has_column(trace, "steps", "grad_evals"):
        evals = column(trace, "steps", "grad_evals", label)
        evals = evals[np.isfinite(evals) & (evals >= 0)].astype(np.int64)  # -1 marks "unknown"
        row["grad_evals"] = int(evals.sum())
        row["steps"] = int(evals.size)
        row["passes_per_step"] = float(evals.sum() / evals.size) if evals.size else None
    return row


def throughput_table(traces: Sequence[RunLike], labels: Sequence[str] | None = None, metric: str | None = None) -> list[dict[str, Any]]:
    """Tables 2 and 7: one row per run with the columns of :data:`COLUMNS` (``None`` = not recorded).

    Raises a MissingDataError when no run has a throughput, a test metric or a step count.
    """
    pairs = labelled(traces, labels)
    rows = [_run_row(label, trace, metric) for label, trace in pairs]
    if all(r["graphs_per_s"] is None and r["test_metric"] is None and r["grad_evals"] is None for r in rows):
        raise MissingDataError("no run recorded epochs/graphs_per_s, a test metric or steps/grad_evals (needed for the throughput table)")
    for key, ratio in (("sam", "vs_sam"), ("adam", "vs_adam")):
        ref = next((r for r, (_, t) in zip(rows, pairs) if canonical(t) == key and r["graphs_per_s"]), None)
        if ref is None:
            continue
        for r in rows:
            if r["graphs_per_s"] is not None:
                r[ratio] = r["graphs_per_s"] / ref["graphs_per_s"]
    return rows


def _metric_title(rows: list[dict[str, Any]]) -> str:
    names = {r["metric"] for r in rows if r["metric"]}
    return f"test {names.pop()} (best val epoch)" if len(names) == 1 else "test metric (best val epoch)"


def _accuracy_title(rows: list[dict[str, Any]]) -> str:
    names = {r["metric"] for r in rows if r["metric"]}
    known = METRICS.get(names.pop()) if len(names) == 1 else None
    return "test metric" if known is None else f"test {known.name} ({'higher' if known.higher_is_better else 'lower'} is better)"


def throughput_figure(traces: Sequence[RunLike], labels: Sequence[str] | None = None, metric: str | None = None,
                      axes: Axes | Sequence[Axes] | None = None, colors: Mapping[str, str] | None = None) -> Figure:
    """Bars of graphs/s (annotated with the ratio to SAM) and of the test metric, per run."""
    rows = throughput_table(traces, labels, metric)
    fig, (left, right) = plotting.mpl_axes(axes, 2)
    names = [r["run"] for r in rows]
    x = np.arange(len(rows))
    pal = plotting.palette(names, colors)
    colors = [pal[name] for name in names]
    speeds = [np.nan if r["graphs_per_s"] is None else r["graphs_per_s"] for r in rows]
    bars = left.bar(x, speeds, color=colors)
    for bar, r in zip(bars, rows):
        if r["vs_sam"] is not None:
            left.annotate(f"{r['vs_sam']:.2f}× SAM", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                          ha="center", va="bottom", fontsize="small")
    left.set_xticks(x, names)
    left.set_ylabel("graphs/s")
    left.set_title("training throughput")
    scores = [np.nan if r["test_metric"] is None else r["test_metric"] for r in rows]
    right.bar(x, scores, color=colors)
    right.set_xticks(x, names)
    right.set_ylabel(_metric_title(rows))
    right.set_title(_accuracy_title(rows))
    return fig


def throughput_plotly(traces: Sequence[RunLike], labels: Sequence[str] | None = None, metric: str | None = None,
                      colors: Mapping[str, str] | None = None) -> Any:
    """Interactive (plotly) :func:`throughput_figure`."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    rows = throughput_table(traces, labels, metric)
    names = [r["run"] for r in rows]
    pal = plotting.palette(names, colors)
    colors = [pal[name] for name in names]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training throughput", _accuracy_title(rows)))
    text = [f"{r['vs_sam']:.2f}× SAM" if r["vs_sam"] is not None else "" for r in rows]
    fig.add_trace(go.Bar(x=names, y=[r["graphs_per_s"] for r in rows], text=text, marker_color=colors, showlegend=False), row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=[r["test_metric"] for r in rows], marker_color=colors, showlegend=False), row=1, col=2)
    fig.update_yaxes(title_text="graphs/s", row=1, col=1)
    fig.update_yaxes(title_text=_metric_title(rows), row=1, col=2)
    return plotting.plotly_layout(fig)

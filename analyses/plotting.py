"""Shared plumbing of the figures: matplotlib axes, colours, ticks, legends, zoom windows, plotly decimation.

Matplotlib figures are built as :class:`matplotlib.figure.Figure` objects (Agg canvas, no
pyplot state), so the library works headless and never opens a window. Plotly figures carry
long step series decimated to a min/max envelope so that an HTML page of a 100,000-step run
stays small while every spike stays visible.

Rules every figure follows, so that a reader can trust it at a glance:

- **One colour per run** (:func:`run_colors`): the k-th run given gets the k-th colour of
  :data:`COLORS`, in every figure and in every section of the report, also where a figure draws
  only some of the runs (the report hands the whole set's colours to each section, see
  ``analyses.kinds.PlotOptions.colors``).
- **Integer ticks** on epoch and step axes (:func:`integer_ticks`, :func:`plotly_integer_axis`).
- **Legends beside the data, never over it** (:func:`legend_below`): one legend per figure,
  below the panels.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.legend import Legend
from matplotlib.ticker import MaxNLocator

from gradscope.errors import GradscopeError

#: Colours of the runs, in order (matplotlib's tab10), shared by matplotlib and plotly figures.
COLORS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)

#: Most points one plotly line carries before it is decimated (see :func:`decimate`).
PLOTLY_MAX_POINTS = 4000


def color(i: int) -> str:
    """The colour of the ``i``-th run (see :func:`run_colors`)."""
    return COLORS[i % len(COLORS)]


def run_colors(labels: Sequence[str]) -> dict[str, str]:
    """The one colour assignment of every figure: run label → colour, the k-th distinct label
    given getting :func:`color` ``(k)`` (the order of the runs on the command line)."""
    out: dict[str, str] = {}
    for label in labels:
        if label not in out:
            out[label] = color(len(out))
    return out


def palette(labels: Sequence[str], colors: Mapping[str, str] | None = None) -> dict[str, str]:
    """Colours for ``labels`` (every run the figure was given): those of ``colors`` (a whole
    report's :func:`run_colors`), else :func:`run_colors` of ``labels``; a label ``colors`` lacks
    gets the next colour that no run uses."""
    if colors is None:
        return run_colors(labels)
    free = [c for c in COLORS if c not in set(colors.values())] or list(COLORS)
    out: dict[str, str] = {}
    for label in labels:
        if label not in out:
            out[label] = colors[label] if label in colors else free[sum(lb not in colors for lb in out) % len(free)]
    return out


def integer_ticks(*axes: Axes, axis: str = "x") -> None:
    """Ticks at whole numbers only (epochs and steps are counted, never halved)."""
    for ax in axes:
        (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True))


def plotly_integer_axis(fig: Any, values: Sequence[float] | np.ndarray, **where: Any) -> None:
    """Plotly x ticks at whole numbers: a step of 1, 2 or 5 × 10^k giving at most about 8 ticks."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    span = float(finite.max() - finite.min()) if finite.size else 1.0
    raw = max(1.0, span / 8.0)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    fig.update_xaxes(tickmode="linear", tick0=0, dtick=int(step), tickformat="d", **where)


def legend_below(fig: Figure, axes: Sequence[Axes], *, ncols: int | None = None,
                 entries: Sequence[tuple[Any, str]] | None = None) -> Legend | None:
    """One legend for the figure, below its panels: ``entries`` (handle, text), else the labelled
    artists of every axes, each label once.

    A figure built here (constrained layout) gets it under the panels; axes a caller passed in
    get it to the right of the last axes, outside it. Either way it covers no data.
    """
    handles: list[Any] = [h for h, _ in entries or ()]
    names: list[str] = [n for _, n in entries or ()]
    for ax in axes:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            if entries is None and name not in names:
                handles.append(handle)
                names.append(name)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if not handles:
        return None
    if isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
        return fig.legend(handles, names, loc="outside lower center", ncols=ncols or min(len(names), 3),
                          fontsize="small", frameon=False)
    return axes[-1].legend(handles, names, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                           fontsize="small")


def mpl_axes(axes: Axes | Sequence[Axes] | None, n: int, *, width: float = 5.0, height: float = 3.6) -> tuple[Figure, list[Axes]]:
    """``n`` side-by-side axes: the given ones (checked), or a new constrained-layout figure."""
    if axes is None:
        fig = Figure(figsize=(width * n, height), layout="constrained")
        FigureCanvasAgg(fig)
        subplots = fig.subplots(1, n, squeeze=False)
        return fig, list(subplots[0])
    axs = [axes] if isinstance(axes, Axes) else list(np.ravel(np.asarray(axes, dtype=object)))
    if len(axs) != n:
        raise GradscopeError(f"this figure draws into {n} axes; {len(axs)} given")
    return axs[0].figure, axs


def parse_zoom(text: str | None) -> tuple[float, float] | None:
    """``"A:B"`` → ``(A, B)`` with A < B (step numbers); ``None`` passes through."""
    if text is None:
        return None
    parts = str(text).split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise GradscopeError(f"--zoom must be A:B with two step numbers, got {text!r}") from None
    return check_zoom((lo, hi))


def check_zoom(zoom: tuple[float, float] | None) -> tuple[float, float] | None:
    if zoom is None:
        return None
    lo, hi = (float(v) for v in zoom)
    if not np.isfinite(lo) or not np.isfinite(hi) or lo >= hi:
        raise GradscopeError(f"zoom window needs A < B, got {lo:g}:{hi:g}")
    return lo, hi


def default_zoom(steps: np.ndarray) -> tuple[float, float]:
    """The first tenth of the steps (at least 10 steps), where the dynamics change fastest."""
    first, last = float(np.nanmin(steps)), float(np.nanmax(steps))
    span = max(10.0, float(np.ceil((last - first) / 10.0)))
    return first, min(last, first + span) if last > first else first + 1.0


def in_window(x: np.ndarray, zoom: tuple[float, float]) -> np.ndarray:
    """Boolean mask of ``zoom[0] ≤ x ≤ zoom[1]``."""
    return (x >= zoom[0]) & (x <= zoom[1])


def decimate(x: np.ndarray, y: np.ndarray, max_points: int = PLOTLY_MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most ``max_points`` points: per bucket of consecutive points, its min and max.

    The envelope keeps every spike (unlike a stride), and the kept points stay in their
    original order. A bucket that holds only NaN keeps one NaN so that gaps stay gaps.
    Series no longer than ``max_points`` are returned unchanged.
    """
    x = np.asarray(x)
    y = np.asarray(y, dtype=np.float64)
    n = y.shape[0]
    if n <= max_points:
        return x, y
    buckets = np.array_split(np.arange(n), max(1, max_points // 2))
    keep: list[int] = []
    for idx in buckets:
        vals = y[idx]
        finite = np.isfinite(vals)
        if not finite.any():
            keep.append(int(idx[0]))
            continue
        lo = int(idx[np.nanargmin(vals)])
        hi = int(idx[np.nanargmax(vals)])
        keep.extend(sorted({lo, hi}))
    sel = np.asarray(keep, dtype=np.int64)
    return x[sel], y[sel]


def finite_any(values: np.ndarray) -> bool:
    return bool(np.isfinite(values).any())


def plotly_layout(fig: Any, title: str | None = None, height: int = 420) -> Any:
    """Common plotly styling: white template, fixed height, the legend at the right."""
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin=dict(l=60, r=20, t=70 if title else 40, b=50),
    )
    if title:
        fig.update_layout(title=dict(text=title, x=0.01))
    return fig

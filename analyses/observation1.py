"""Observation 1 of the GraphSAM paper: ε changes slowly, ω does not, and ‖ω‖ ≫ ‖ε‖.

Wang et al., ICLR 2024 (arXiv 2406.13137), §3 Fig. 3a and Fig. 8 plot the step-to-step changes
‖ε_{t+1}−ε_t‖ and ‖ω_{t+1}−ω_t‖ of SAM over training, Fig. 9 the norms ‖ε_t‖ and ‖ω_t‖. The
trace stores the change *into* row t (``eps_change[t] = ‖ε_t − ε_{t−1}‖``), so the curves are
drawn at the later step of each pair. Several runs are overlaid (one colour per run; ε solid,
ω dashed) with a second panel zoomed on a step window.

The numbers summarise the observation: the ratio std(‖Δω‖)/std(‖Δε‖) (population standard
deviations over the steps where each is defined; > 1 means ε varies less) and the median of
‖ω_t‖/‖ε_t‖ over steps where both are defined and ‖ε_t‖ > 0.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from analyses import plotting
from analyses.runs import MissingDataError, RunLike, labelled, step_column, steps_axis
from gradscope.trace import Trace

#: Per quantity: matplotlib (mathtext) and plotly (HTML) labels.
SYMBOLS: dict[str, tuple[str, str]] = {
    "eps_change": (r"$\|\epsilon_{t+1}-\epsilon_t\|$", "‖ε<sub>t+1</sub>−ε<sub>t</sub>‖"),
    "omega_change": (r"$\|\omega_{t+1}-\omega_t\|$", "‖ω<sub>t+1</sub>−ω<sub>t</sub>‖"),
    "eps_norm": (r"$\|\epsilon_t\|$", "‖ε<sub>t</sub>‖"),
    "omega_norm": (r"$\|\omega_t\|$", "‖ω<sub>t</sub>‖"),
}
DASHES = {"eps_change": "-", "eps_norm": "-", "omega_change": "--", "omega_norm": "--"}
PLOTLY_DASHES = {"-": "solid", "--": "dash"}

CHANGE_PAIR = ("eps_change", "omega_change")
NORM_PAIR = ("eps_norm", "omega_norm")


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def _std(values: np.ndarray) -> float:
    v = _finite(values)
    return float(np.std(v)) if v.size else float("nan")


@dataclass(frozen=True)
class Observation1Numbers:
    """Summary of Observation 1 for one run (NaN where the run has no ε, e.g. Adam)."""

    label: str
    steps: int
    eps_change_std: float
    omega_change_std: float
    change_std_ratio: float
    median_norm_ratio: float

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


def observation1_numbers(trace: Trace, label: str = "") -> Observation1Numbers:
    """std of ‖Δε‖ and ‖Δω‖, their ratio std(‖Δω‖)/std(‖Δε‖), and median ‖ω_t‖/‖ε_t‖."""
    purpose = "Observation 1"
    eps_change = step_column(trace, "eps_change", label, purpose=purpose)
    omega_change = step_column(trace, "omega_change", label, purpose=purpose)
    eps_norm = step_column(trace, "eps_norm", label, purpose=purpose)
    omega_norm = step_column(trace, "omega_norm", label, purpose=purpose)
    s_eps, s_omega = _std(eps_change), _std(omega_change)
    ratio = s_omega / s_eps if np.isfinite(s_eps) and s_eps > 0 else float("nan")
    ok = np.isfinite(eps_norm) & np.isfinite(omega_norm) & (eps_norm > 0)
    median_ratio = float(np.median(omega_norm[ok] / eps_norm[ok])) if ok.any() else float("nan")
    return Observation1Numbers(
        label=label, steps=int(eps_change.shape[0]), eps_change_std=s_eps, omega_change_std=s_omega,
        change_std_ratio=ratio, median_norm_ratio=median_ratio,
    )


def observation1_table(traces: Sequence[RunLike], labels: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One :meth:`Observation1Numbers.as_row` per run."""
    return [observation1_numbers(trace, label).as_row() for label, trace in labelled(traces, labels)]


# --- series ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Series:
    run: int
    label: str
    name: str
    x: np.ndarray
    y: np.ndarray


def _collect(traces: Sequence[RunLike], labels: Sequence[str] | None, names: tuple[str, str], purpose: str) -> list[_Series]:
    """Both quantities of every run; quantities that are NaN throughout (Adam's ε) are left out."""
    out: list[_Series] = []
    for i, (label, trace) in enumerate(labelled(traces, labels)):
        x = steps_axis(trace, label)
        found = 0
        for name in names:
            y = step_column(trace, name, label, purpose=purpose)
            if plotting.finite_any(y):
                out.append(_Series(i, label, name, x, y))
                found += 1
        if not found:
            raise MissingDataError(f"{label}: {' and '.join(names)} hold no defined value (needed for {purpose})")
    return out


def _zoom_for(series: list[_Series], zoom: tuple[float, float] | None) -> tuple[float, float]:
    zoom = plotting.check_zoom(zoom)
    if zoom is not None:
        return zoom
    return plotting.default_zoom(np.concatenate([s.x for s in series]))


def _palette(traces: Sequence[RunLike], labels: Sequence[str] | None, colors: Mapping[str, str] | None) -> dict[str, str]:
    return plotting.palette([label for label, _ in labelled(traces, labels)], colors)


def _mpl_pair(series: list[_Series], zoom: tuple[float, float], axes: Any, ylabel: str, logy: bool, title: str,
              pal: Mapping[str, str]) -> Figure:
    fig, (full, zoomed) = plotting.mpl_axes(axes, 2)
    inside_any = False
    for s in series:
        kw = dict(color=pal[s.label], linestyle=DASHES[s.name], linewidth=1.0)
        full.plot(s.x, s.y, label=f"{s.label}: {SYMBOLS[s.name][0]}", **kw)
        inside = plotting.in_window(s.x, zoom)
        inside_any |= bool(inside.any())
        zoomed.plot(s.x[inside], s.y[inside], label=f"{s.label}: {SYMBOLS[s.name][0]}", **kw)
    if not inside_any:
        raise MissingDataError(f"zoom window {zoom[0]:g}:{zoom[1]:g} holds no recorded step")
    for ax, sub in ((full, title), (zoomed, f"steps {zoom[0]:g}–{zoom[1]:g}")):
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.set_title(sub)
        if logy:
            ax.set_yscale("log")
    plotting.integer_ticks(full, zoomed)
    full.axvspan(zoom[0], zoom[1], color="0.85", alpha=0.5, zorder=0)
    plotting.legend_below(fig, [full, zoomed], ncols=2)
    return fig


def _plotly_pair(series: list[_Series], zoom: tuple[float, float], ylabel: str, logy: bool, title: str,
                 pal: Mapping[str, str]) -> Any:
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    fig = make_subplots(rows=1, cols=2, subplot_titles=(title, f"steps {zoom[0]:g}–{zoom[1]:g}"))
    for s in series:
        name = f"{s.label}: {SYMBOLS[s.name][1]}"
        line = dict(color=pal[s.label], dash=PLOTLY_DASHES[DASHES[s.name]], width=1)
        x, y = plotting.decimate(s.x, s.y)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=name, legendgroup=name, line=line), row=1, col=1)
        inside = plotting.in_window(s.x, zoom)
        x, y = plotting.decimate(s.x[inside], s.y[inside])
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=name, legendgroup=name, line=line, showlegend=False), row=1, col=2)
    for col in (1, 2):
        fig.update_xaxes(title_text="step", row=1, col=col)
        fig.update_yaxes(title_text=ylabel, type="log" if logy else "linear", row=1, col=col)
    steps = np.concatenate([s.x for s in series])
    plotting.plotly_integer_axis(fig, steps, row=1, col=1)
    plotting.plotly_integer_axis(fig, steps[plotting.in_window(steps, zoom)], row=1, col=2)
    return plotting.plotly_layout(fig)


def observation1_figure(
    traces: Sequence[RunLike], labels: Sequence[str] | None = None, zoom: tuple[float, float] | None = None,
    axes: Axes | Sequence[Axes] | None = None, logy: bool = False, colors: Mapping[str, str] | None = None,
) -> Figure:
    """Fig. 3a / Fig. 8: ‖Δε‖ (solid) and ‖Δω‖ (dashed) over steps, full range and a zoom window.

    ``zoom`` is a ``(first_step, last_step)`` window (default: the first tenth of training);
    ``axes`` two matplotlib axes to draw into (else a new figure); ``colors`` label → colour
    (default :func:`analyses.plotting.run_colors`).
    """
    series = _collect(traces, labels, CHANGE_PAIR, "Observation 1")
    return _mpl_pair(series, _zoom_for(series, zoom), axes, "change between consecutive steps", logy, "all steps",
                     _palette(traces, labels, colors))


def observation1_plotly(traces: Sequence[RunLike], labels: Sequence[str] | None = None, zoom: tuple[float, float] | None = None,
                        logy: bool = False, colors: Mapping[str, str] | None = None) -> Any:
    """Interactive (plotly) :func:`observation1_figure`."""
    series = _collect(traces, labels, CHANGE_PAIR, "Observation 1")
    return _plotly_pair(series, _zoom_for(series, zoom), "change between consecutive steps", logy, "all steps",
                        _palette(traces, labels, colors))


def norms_figure(
    traces: Sequence[RunLike], labels: Sequence[str] | None = None, zoom: tuple[float, float] | None = None,
    axes: Axes | Sequence[Axes] | None = None, logy: bool = True, colors: Mapping[str, str] | None = None,
) -> Figure:
    """Fig. 9: ‖ε_t‖ (solid) and ‖ω_t‖ (dashed) over steps (log scale), full range and zoom."""
    series = _collect(traces, labels, NORM_PAIR, "the norm plot")
    return _mpl_pair(series, _zoom_for(series, zoom), axes, "gradient norm", logy, "all steps",
                     _palette(traces, labels, colors))


def norms_plotly(traces: Sequence[RunLike], labels: Sequence[str] | None = None, zoom: tuple[float, float] | None = None,
                 logy: bool = True, colors: Mapping[str, str] | None = None) -> Any:
    """Interactive (plotly) :func:`norms_figure`."""
    series = _collect(traces, labels, NORM_PAIR, "the norm plot")
    return _plotly_pair(series, _zoom_for(series, zoom), "gradient norm", logy, "all steps",
                        _palette(traces, labels, colors))

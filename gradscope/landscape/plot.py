"""Figures of landscapes: PNG (matplotlib, Agg) and interactive HTML (plotly) — the one plotting module.

Only :class:`~gradscope.landscape.io.Landscape` objects (or files) are needed, not the model.
Matplotlib is used through ``matplotlib.figure.Figure`` directly — no pyplot, so importing this
module never changes the backend of a notebook or a GUI session. HTML files embed plotly.js
(``include_plotlyjs=True``) so that they open offline. :mod:`analyses.landscapes` (the report and
``gradscope plot landscape``) draws with these functions too.

* :func:`plot_1d` — curves of one or several parameter sets over a shared axis (GraphSAM paper,
  Fig. 2 style); the centre θ₀ of each is α = 0.
* :func:`plot_contour` — 2-D contour map with the centre marked.
* :func:`plot_surface` — 3-D surface.
* :func:`comparison_figure` / :func:`comparison_plotly` — Fig. 2 as one figure: every 1-D
  landscape overlaid in the first panel, one contour panel per 2-D landscape.
* :func:`plot_html` — an interactive plotly surface (2-D) or curves (1-D).
* :func:`plot_density` — the Hessian eigenvalue density of a sharpness measurement.
* :func:`save_plots` — the figures of a set of landscapes, as ``gradscope landscape`` writes them.

Points not evaluated yet (``done`` = 0, an interrupted run) are gaps (NaN).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gradscope.errors import GradscopeError
from gradscope.landscape.io import Landscape, file_label, open_landscape
from gradscope.landscape.spectrum import SpectralDensity

LandscapeLike = Landscape | str | Path
Many = LandscapeLike | Sequence[LandscapeLike] | Mapping[str, LandscapeLike]
Labelled = Sequence[tuple[str, Landscape]]


def _load(item: LandscapeLike) -> Landscape:
    return item if isinstance(item, Landscape) else open_landscape(item, with_directions=False)


def labelled_landscapes(items: Many) -> list[tuple[str, Landscape]]:
    """``(label, Landscape)`` pairs: a mapping's keys, else each landscape's own label."""
    if isinstance(items, (Landscape, str, Path)):
        ls = _load(items)
        return [(ls.label, ls)]
    if isinstance(items, Mapping):
        out = [(str(k), _load(v)) for k, v in items.items()]
    else:
        out = [(ls.label, ls) for ls in map(_load, items)]
    if not out:
        raise GradscopeError("no landscapes to plot")
    return out


def landscape_values(ls: Landscape, quantity: str) -> np.ndarray:
    """The evaluated ``loss`` or ``metric`` grid of ``ls`` as float64, NaN where not yet done."""
    if quantity == "loss":
        values = ls.loss
    elif quantity == "metric":
        if ls.metric is None:
            raise GradscopeError(f"landscape {ls.label!r} has no metric")
        values = ls.metric
    else:
        raise GradscopeError(f"quantity must be 'loss' or 'metric', got {quantity!r}")
    return np.where(np.asarray(ls.done, dtype=bool), np.asarray(values, dtype=np.float64), np.nan)


def quantity_label(ls: Landscape, quantity: str) -> str:
    """``loss``, or the metric's name (e.g. ``roc_auc``)."""
    return "loss" if quantity == "loss" else ls.metric_name


def axis_label(ls: Landscape, axis: int) -> str:
    """What coordinate ``axis`` (0: α along d₁, 1: β along d₂) of ``ls`` measures."""
    name = "α" if axis == 0 else "β"
    if ls.direction_kind == "interpolation":
        return f"{name}  (θ_A → θ_B)"
    if ls.direction_kind == "hessian":
        return f"{name}  (Hessian eigenvector {axis + 1}, unit norm)"
    return f"{name}  (direction d{axis + 1}, {ls.direction_normalization}-normalized)"


def _figure(axes: Axes | Sequence[Axes] | None, n: int, width: float, height: float) -> tuple[Figure, list[Axes]]:
    """``n`` side-by-side axes: the given ones (checked), or a new constrained-layout figure."""
    if axes is None:
        fig = Figure(figsize=(width * n, height), layout="constrained")
        FigureCanvasAgg(fig)
        return fig, list(fig.subplots(1, n, squeeze=False)[0])
    axs = [axes] if isinstance(axes, Axes) else list(np.ravel(np.asarray(axes, dtype=object)))
    if len(axs) != n:
        raise GradscopeError(f"this figure draws into {n} axes; {len(axs)} given")
    return axs[0].figure, axs


def _save(fig: Figure, path: str | Path | None, dpi: int) -> None:
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")


# ----------------------------------------------------------------------------- drawing into axes
def draw_curves(ax: Axes, items: Labelled, *, quantity: str = "loss", log: bool = False,
                colors: Sequence[str] | None = None, title: str | None = None) -> None:
    """The 1-D curves of ``items`` in one panel (α = 0 dashed; θ_B dotted for an interpolation)."""
    for k, (label, ls) in enumerate(items):
        if ls.dims != 1:
            raise GradscopeError(f"landscape {label!r} is 2-D; use plot_contour or plot_surface")
        color = None if colors is None else colors[k]
        ax.plot(ls.x, landscape_values(ls, quantity), marker="o", markersize=2.5, linewidth=1.4, label=label,
                color=color)
    first = items[0][1]
    if first.direction_kind == "interpolation":
        ax.axvline(1.0, color="0.6", linestyle=":", linewidth=1)
    ax.axvline(0.0, color="0.6", linestyle="--", linewidth=1)
    ax.set_xlabel(axis_label(first, 0))
    ax.set_ylabel(quantity_label(first, quantity))
    if log:
        ax.set_yscale("log")
    if len(items) > 1 or items[0][0] != "model":
        ax.legend(frameon=False, fontsize="small")
    ax.set_title(title or f"1-D {quantity_label(first, quantity)} landscape")
    ax.grid(alpha=0.3)


def _surface_values(ls: Landscape, quantity: str, log: bool) -> np.ndarray:
    if ls.dims != 2:
        raise GradscopeError(f"landscape {ls.label!r} is 1-D; use plot_1d")
    z = landscape_values(ls, quantity)
    if log:
        if np.nanmin(z) <= 0:
            raise GradscopeError("log scale needs positive values")
        z = np.log10(z)
    return z


def draw_contour(ax: Axes, ls: Landscape, *, label: str | None = None, quantity: str = "loss", levels: int = 30,
                 log: bool = False, title: str | None = None) -> None:
    """Filled contours of a 2-D landscape with a colour bar; the red star is θ₀ (0, 0)."""
    z = np.ma.masked_invalid(_surface_values(ls, quantity, log))
    qlabel = ("log10 " if log else "") + quantity_label(ls, quantity)
    if z.count() < 4:
        ax.text(0.5, 0.5, "too few points computed", transform=ax.transAxes, ha="center", va="center")
    else:
        filled = ax.contourf(ls.x, ls.y, z, levels=levels, cmap="viridis")
        ax.contour(ls.x, ls.y, z, levels=levels, colors="k", linewidths=0.3, alpha=0.5)
        ax.figure.colorbar(filled, ax=ax, label=qlabel)
    ax.plot([0.0], [0.0], marker="*", color="red", markersize=10, linestyle="none")
    ax.set_xlabel(axis_label(ls, 0))
    ax.set_ylabel(axis_label(ls, 1))
    ax.locator_params(nbins=6)
    ax.set_title(title or f"{label or ls.label}: 2-D {qlabel}")


# ----------------------------------------------------------------------------- figures
def plot_1d(landscapes: Many, path: str | Path | None = None, *, quantity: str = "loss", log: bool = False,
            title: str | None = None, dpi: int = 150) -> Figure:
    """One figure with the 1-D curves of one or several landscapes (labels from the landscapes)."""
    fig, (ax,) = _figure(None, 1, 6.0, 4.0)
    draw_curves(ax, labelled_landscapes(landscapes), quantity=quantity, log=log, title=title)
    _save(fig, path, dpi)
    return fig


def plot_contour(landscape: LandscapeLike, path: str | Path | None = None, *, quantity: str = "loss",
                 levels: int = 30, log: bool = False, title: str | None = None, dpi: int = 150) -> Figure:
    """Filled contour map of a 2-D landscape; the star is θ₀ (0, 0)."""
    fig, (ax,) = _figure(None, 1, 5.5, 4.5)
    draw_contour(ax, _load(landscape), quantity=quantity, levels=levels, log=log, title=title)
    _save(fig, path, dpi)
    return fig


def plot_surface(landscape: LandscapeLike, path: str | Path | None = None, *, quantity: str = "loss",
                 log: bool = False, title: str | None = None, dpi: int = 150) -> Figure:
    """3-D surface of a 2-D landscape."""
    ls = _load(landscape)
    z = _surface_values(ls, quantity, log)
    fig = Figure(figsize=(6.0, 5.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(projection="3d")
    xx, yy = np.meshgrid(ls.x, ls.y)
    ax.plot_surface(xx, yy, np.ma.masked_invalid(z), cmap="viridis", linewidth=0, antialiased=True)
    ax.set_xlabel("α")
    ax.set_ylabel("β")
    ax.set_zlabel(("log10 " if log else "") + quantity_label(ls, quantity))
    ax.set_title(title or f"{ls.label}: {quantity_label(ls, quantity)}")
    _save(fig, path, dpi)
    return fig


def split_dims(items: Labelled) -> tuple[list[tuple[int, str, Landscape]], list[tuple[int, str, Landscape]]]:
    """``(index, label, landscape)`` of the 1-D and of the 2-D landscapes, in the given order."""
    one = [(i, label, ls) for i, (label, ls) in enumerate(items) if ls.dims == 1]
    two = [(i, label, ls) for i, (label, ls) in enumerate(items) if ls.dims == 2]
    return one, two


def comparison_panels(items: Labelled) -> int:
    """How many axes :func:`comparison_figure` draws: one for all 1-D curves, one per 2-D landscape."""
    one, two = split_dims(items)
    return (1 if one else 0) + len(two)


def comparison_figure(items: Labelled, *, quantity: str = "loss", colors: Sequence[str] | None = None,
                      axes: Axes | Sequence[Axes] | None = None, levels: int = 20) -> Figure:
    """The GraphSAM paper's Fig. 2: overlaid 1-D curves (first panel) and a contour per 2-D landscape.

    ``colors[i]`` colours the curve of ``items[i]`` (default: matplotlib's cycle).
    """
    if not items:
        raise GradscopeError("no landscapes to plot")
    one, two = split_dims(items)
    fig, axs = _figure(axes, comparison_panels(items), 4.8, 3.8)
    if one:
        draw_curves(axs[0], [(label, ls) for _, label, ls in one], quantity=quantity,
                    colors=None if colors is None else [colors[i] for i, _, _ in one])
    for ax, (_, label, ls) in zip(axs[1 if one else 0:], two):
        draw_contour(ax, ls, label=label, quantity=quantity, levels=levels)
    return fig


def comparison_plotly(items: Labelled, *, quantity: str = "loss", colors: Sequence[str] | None = None) -> Any:
    """Interactive (plotly) :func:`comparison_figure`: curves and contour maps (no WebGL needed)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if not items:
        raise GradscopeError("no landscapes to plot")
    one, two = split_dims(items)
    first = (one or two)[0][2]
    qlabel = quantity_label(first, quantity)
    titles = ([f"1-D {qlabel} landscape"] if one else []) + [f"{label}: 2-D {qlabel}" for _, label, _ in two]
    fig = make_subplots(rows=1, cols=len(titles), subplot_titles=titles)
    for i, label, ls in one:
        line = {} if colors is None else dict(color=colors[i])
        fig.add_trace(go.Scatter(x=ls.x, y=landscape_values(ls, quantity), mode="lines+markers", name=label,
                                 line=line), row=1, col=1)
    if one:
        fig.update_xaxes(title_text=axis_label(one[0][2], 0), row=1, col=1)
        fig.update_yaxes(title_text=qlabel, row=1, col=1)
    for n, (_, label, ls) in enumerate(two):
        col = n + (2 if one else 1)
        fig.add_trace(go.Contour(x=ls.x, y=ls.y, z=landscape_values(ls, quantity), colorscale="Viridis", name=label,
                                 showscale=n == len(two) - 1, showlegend=False), row=1, col=col)
        fig.add_trace(go.Scatter(x=[0.0], y=[0.0], mode="markers", marker=dict(symbol="star", color="red", size=10),
                                 showlegend=False, name="θ₀"), row=1, col=col)
        fig.update_xaxes(title_text="α", row=1, col=col)
        fig.update_yaxes(title_text="β", row=1, col=col)
    return fig


def plot_html(landscapes: Many, path: str | Path, *, quantity: str = "loss", log: bool = False,
              title: str | None = None) -> Path:
    """A self-contained interactive HTML file (plotly.js inlined; works offline).

    2-D landscapes become surfaces (one per landscape, toggled in the legend), 1-D ones curves.
    """
    import plotly.graph_objects as go

    items = labelled_landscapes(landscapes)
    if len({ls.dims for _, ls in items}) != 1:
        raise GradscopeError("cannot mix 1-D and 2-D landscapes in one figure")
    fig = go.Figure()
    first = items[0][1]
    qlabel = ("log10 " if log else "") + quantity_label(first, quantity)
    for i, (label, ls) in enumerate(items):
        if ls.dims == 2:
            fig.add_trace(go.Surface(
                x=ls.x, y=ls.y, z=_surface_values(ls, quantity, log), name=label, showscale=i == 0,
                colorscale="Viridis", visible=True if i == 0 else "legendonly", showlegend=len(items) > 1,
            ))
        else:
            z = landscape_values(ls, quantity)
            fig.add_trace(go.Scatter(x=ls.x, y=np.log10(z) if log else z, mode="lines+markers", name=label))
    if first.dims == 2:
        fig.update_layout(scene={"xaxis_title": "α", "yaxis_title": "β", "zaxis_title": qlabel})
    else:
        fig.update_layout(xaxis_title=axis_label(first, 0), yaxis_title=qlabel)
    fig.update_layout(title=title or f"{qlabel} landscape")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    return path


def plot_density(densities: Mapping[str, SpectralDensity], path: str | Path | None = None, *,
                 dpi: int = 150) -> Figure:
    """The Hessian eigenvalue densities (stochastic Lanczos quadrature) of several parameter sets, log scale."""
    if not densities:
        raise GradscopeError("no spectral density to plot")
    fig, (ax,) = _figure(None, 1, 6.0, 4.0)
    for label, density in densities.items():
        grid = density.grid()
        ax.semilogy(grid, np.maximum(density.density(grid), 1e-8), linewidth=1.2, label=label)  # floor: log scale
    ax.set_xlabel("eigenvalue λ")
    ax.set_ylabel("density")
    ax.set_title("Hessian eigenvalue density (SLQ)")
    ax.legend(frameon=False, fontsize="small")
    ax.grid(alpha=0.3)
    _save(fig, path, dpi)
    return fig


def save_plots(landscapes: Many, out_dir: str | Path, *, prefix: str = "landscape", quantity: str = "loss",
               log: bool = False) -> list[Path]:
    """Every figure for the given landscapes; returns the written paths.

    1-D: ``<prefix>_1d.png`` (all curves in one figure) and ``<prefix>_1d.html``.
    2-D: per landscape ``<prefix>_<label>_contour.png``, ``_surface.png`` and ``.html``.
    """
    items = labelled_landscapes(landscapes)
    out = Path(out_dir)
    written: list[Path] = []
    one_d = [(lab, ls) for lab, ls in items if ls.dims == 1]
    if one_d:
        p = out / f"{prefix}_1d.png"
        plot_1d(dict(one_d), p, quantity=quantity, log=log)
        written += [p, plot_html(dict(one_d), out / f"{prefix}_1d.html", quantity=quantity, log=log)]
    for label, ls in ((lab, ls) for lab, ls in items if ls.dims == 2):
        stem = f"{prefix}_{file_label(label)}"
        for kind, fn in (("contour", plot_contour), ("surface", plot_surface)):
            p = out / f"{stem}_{kind}.png"
            fn(ls, p, quantity=quantity, log=log)
            written.append(p)
        written.append(plot_html(ls, out / f"{stem}.html", quantity=quantity, log=log))
    return written

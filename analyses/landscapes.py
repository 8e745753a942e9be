"""Loss landscapes of several minima side by side (GraphSAM paper, Wang et al., ICLR 2024, Fig. 2).

The paper compares 1-D filter-normalized landscapes (Li et al. 2018) around the minima found by
Adam, SAM and GraphSAM: flatter curves for the sharpness-aware optimizers. This module finds the
landscape files of runs and labels them; the figures are drawn by the library's one plotting
module (:func:`gradscope.landscape.plot.comparison_figure` and ``comparison_plotly``), in the
report's colours. :func:`sharpness_table` gives the sharpness numbers that
``gradscope landscape --hessian`` wrote beside the files (``sharpness.json``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from analyses import plotting
from analyses.runs import MissingDataError, Run
from gradscope.errors import GradscopeError
from gradscope.landscape import Landscape, open_landscape
from gradscope.landscape.plot import comparison_figure, comparison_panels, comparison_plotly, landscape_values
from gradscope.landscape.summary import read_sharpness

LandscapeItem = Union[Run, Landscape, str, Path]


def _load(item: Landscape | str | Path) -> Landscape:
    return item if isinstance(item, Landscape) else open_landscape(item, with_directions=False)


def _run_landscapes(run: Run, base: str) -> list[tuple[str, Landscape]]:
    """A run's landscape files: one is labelled with the run's label; several with the run's label
    and what tells them apart, their directions and dimension (``SAM: eps-omega 1-D``), and the
    file name where that is not enough."""
    found = [_load(path) for path in run.landscapes]
    if len(found) == 1:
        return [(base, found[0])]
    kinds = [f"{ls.direction_kind} {ls.dims}-D" for ls in found]
    return [(f"{base}: {kind}" if kinds.count(kind) == 1 else f"{base}: {kind} ({path.stem})", ls)
            for kind, path, ls in zip(kinds, run.landscapes, found)]


def _by_run(items: Sequence[LandscapeItem], labels: Sequence[str] | None) -> list[tuple[str, str, Landscape]]:
    """``(run label, landscape label, Landscape)`` for every landscape of ``items`` (see :func:`landscapes_of`)."""
    if labels is not None and len(labels) != len(items):
        raise GradscopeError(f"{len(labels)} labels given for {len(items)} runs")
    out: list[tuple[str, str, Landscape]] = []
    for k, item in enumerate(items):
        if isinstance(item, Run):
            base = labels[k] if labels is not None else item.label
            out += [(base, name, ls) for name, ls in _run_landscapes(item, base)]
        else:
            ls = _load(item)
            name = labels[k] if labels is not None else str(ls.label)
            out.append((name, name, ls))
    if not out:
        raise MissingDataError("no landscape file given (run directories need landscape/*.h5)")
    return out


def landscapes_of(items: Sequence[LandscapeItem], labels: Sequence[str] | None = None) -> list[tuple[str, Landscape]]:
    """``(label, Landscape)`` pairs from landscapes, files, or :class:`~analyses.runs.Run` objects.

    A run contributes each of its ``landscape/*.h5`` files (see :func:`_run_landscapes`). Other
    items keep their own ``label`` unless ``labels`` (one per item) are given.
    """
    return [(name, ls) for _, name, ls in _by_run(items, labels)]


def _checked(items: Sequence[LandscapeItem], labels: Sequence[str] | None, quantity: str,
             colors: Mapping[str, str] | None) -> tuple[list[tuple[str, Landscape]], list[str]]:
    """The ``(label, Landscape)`` pairs and their colours: the colour of the run each belongs to."""
    found = _by_run(items, labels)
    for _, label, ls in found:
        if quantity == "metric" and ls.metric is None:
            raise MissingDataError(f"landscape {label!r} has no metric")
        landscape_values(ls, quantity)  # checks the quantity's name
    pal = plotting.palette([run for run, _, _ in found], colors)
    return [(name, ls) for _, name, ls in found], [pal[run] for run, _, _ in found]


def landscape_panels(items: Sequence[LandscapeItem], labels: Sequence[str] | None = None) -> int:
    """How many axes :func:`landscape_figure` draws for these landscapes."""
    return comparison_panels(landscapes_of(items, labels))


def landscape_figure(items: Sequence[LandscapeItem], labels: Sequence[str] | None = None, quantity: str = "loss",
                     axes: Axes | Sequence[Axes] | None = None, levels: int = 20,
                     colors: Mapping[str, str] | None = None) -> Figure:
    """Fig. 2: overlaid 1-D curves (first panel) and a contour map per 2-D landscape; the legend
    of the curves below the panels."""
    pairs, line_colors = _checked(items, labels, quantity, colors)
    fig = comparison_figure(pairs, quantity=quantity, colors=line_colors, axes=axes, levels=levels)
    plotting.legend_below(fig, [ax for ax in fig.axes if ax.get_legend() is not None], ncols=min(len(pairs), 3))
    return fig


def landscape_plotly(items: Sequence[LandscapeItem], labels: Sequence[str] | None = None, quantity: str = "loss",
                     colors: Mapping[str, str] | None = None) -> Any:
    """Interactive (plotly) :func:`landscape_figure`."""
    pairs, line_colors = _checked(items, labels, quantity, colors)
    return plotting.plotly_layout(comparison_plotly(pairs, quantity=quantity, colors=line_colors))


#: Columns of :func:`sharpness_table` and their headers.
SHARPNESS_HEADERS: dict[str, str] = {
    "loss": "loss at θ", "mean_increase": "mean Δloss (random, r)", "max_increase": "max Δloss (random, r)",
    "rho_sharpness": "ρ-sharpness", "lambda_max": "λ_max", "lambda_min": "λ_min", "trace": "tr(H)",
}


def _sharpness_rows(run: Run) -> list[dict[str, Any]]:
    rows = []
    folders = sorted({path.parent for path in run.landscapes})
    entries = [(label, entry) for folder in folders for label, entry in read_sharpness(folder).items()]
    for label, entry in entries:
        name = run.label if len(entries) == 1 else f"{run.label}: {label}"
        rows.append({"run": name, "radius": entry.get("radius"), "rho": entry.get("rho"),
                     **{key: entry.get(key) for key in SHARPNESS_HEADERS}})
    return rows


def sharpness_table(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One row per measured parameter set of ``runs`` (``sharpness.json`` beside their landscapes):
    ``run``, ``radius``, ``rho`` and the numbers of :data:`SHARPNESS_HEADERS` (``None`` = not measured)."""
    return [row for run in runs if isinstance(run, Run) for row in _sharpness_rows(run)]

"""Loss landscapes of several minima side by side (GraphSAM paper, Wang et al., ICLR 2024, Fig. 2).

The paper compares 1-D filter-normalized landscapes (Li et al. 2018) around the minima found by
Adam, SAM and GraphSAM: flatter curves for the sharpness-aware optimizers. This module finds the
landscape files of runs and labels them; the figures are drawn by the library's one plotting
module (:func:`gradscope.landscape.plot.comparison_figure` and ``comparison_plotly``), in the
report's colours. :func:`sharpness_table` gives the sharpness numbers that
``gradscope landscape --hessian`` wrote beside the files (``sharpness.json``).
"""
from __future__ import annotations

from collections.abc import Sequence
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
    """A run's landscape files: one is labelled with the run's label; several with the label
    stored in each file, else the run's label and the file name."""
    out = []
    for path in run.landscapes:
        ls = _load(path)
        if len(run.landscapes) == 1:
            name = base
        elif str(ls.label) not in ("", "model"):
            name = str(ls.label)
        else:
            name = f"{base}: {path.stem}"
        out.append((name, ls))
    return out


def landscapes_of(items: Sequence[LandscapeItem], labels: Sequence[str] | None = None) -> list[tuple[str, Landscape]]:
    """``(label, Landscape)`` pairs from landscapes, files, or :class:`~analyses.runs.Run` objects.

    A run contributes each of its ``landscape/*.h5`` files (see :func:`_run_landscapes`). Other
    items keep their own ``label`` unless ``labels`` (one per item) are given.
    """
    if labels is not None and len(labels) != len(items):
        raise GradscopeError(f"{len(labels)} labels given for {len(items)} runs")
    out: list[tuple[str, Landscape]] = []
    for k, item in enumerate(items):
        if isinstance(item, Run):
            out += _run_landscapes(item, labels[k] if labels is not None else item.label)
        else:
            ls = _load(item)
            out.append((labels[k] if labels is not None else str(ls.label), ls))
    if not out:
        raise MissingDataError("no landscape file given (run directories need landscape/*.h5)")
    return out


def _checked(items: Sequence[LandscapeItem], labels: Sequence[str] | None, quantity: str) -> list[tuple[str, Landscape]]:
    pairs = landscapes_of(items, labels)
    for label, ls in pairs:
        if quantity == "metric" and ls.metric is None:
            raise MissingDataError(f"landscape {label!r} has no metric")
        landscape_values(ls, quantity)  # checks the quantity's name
    return pairs


def _colors(pairs: Sequence[tuple[str, Landscape]]) -> list[str]:
    return [plotting.color(i) for i in range(len(pairs))]


def landscape_panels(items: Sequence[LandscapeItem], labels: Sequence[str] | None = None) -> int:
    """How many axes :func:`landscape_figure` draws for these landscapes."""
    return comparison_panels(landscapes_of(items, labels))


def landscape_figure(items: Sequence[LandscapeItem], labels: Sequence[str] | None = None, quantity: str = "loss",
                     axes: Axes | Sequence[Axes] | None = None, levels: int = 20) -> Figure:
    """Fig. 2: overlaid 1-D curves (first panel) and a contour map per 2-D landscape."""
    pairs = _checked(items, labels, quantity)
    return comparison_figure(pairs, quantity=quantity, colors=_colors(pairs), axes=axes, levels=levels)


def landscape_plotly(items: Sequence[LandscapeItem], labels: Sequence[str] | None = None, quantity: str = "loss") -> Any:
    """Interactive (plotly) :func:`landscape_figure`."""
    pairs = _checked(items, labels, quantity)
    return plotting.plotly_layout(comparison_plotly(pairs, quantity=quantity, colors=_colors(pairs)))


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

"""One call from (model, evaluation set, settings) to a landscape file: what ``gradscope landscape`` runs.

:func:`compute_landscape` picks or loads directions, lays out the grid, evaluates pending points
in batched chunks (sharded over ranks when a process group is up), writes the HDF5 file as it
goes and returns the :class:`~gradscope.landscape.io.Landscape`. :func:`compare_landscapes` does
the same for several parameter sets with shared direction settings (one seed; each set's own
filter normalization), for the comparative 1-D figure of the GraphSAM paper's Fig. 2.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gradscope.errors import GradscopeError
from gradscope.landscape import distributed as dist_util
from gradscope.landscape.directions import Directions, random_directions
from gradscope.landscape.evaluate import LandscapeEvaluator
from gradscope.landscape.functional import Batch, ForwardFn, LossFn, MetricFn
from gradscope.landscape.grid import shard
from gradscope.landscape.io import Landscape, LandscapeWriter, file_label, load_directions, open_landscape
from gradscope.optim.flat import FlatLayout
from gradscope.landscape.settings import LandscapeSettings

_GRID_FIELDS = ("dims", "points_x", "range_x", "points_y", "range_y")


def _resolve_directions(
    model: nn.Module, settings: LandscapeSettings, directions: Directions | str | Path | None
) -> Directions:
    if directions is None:
        d = random_directions(
            model, settings.dims, seed=settings.seed, normalization=settings.normalization,
            include_1d=settings.include_1d,
        )
    elif isinstance(directions, (str, Path)):
        d = load_directions(directions)
    elif isinstance(directions, Directions):
        d = directions
    else:
        raise GradscopeError(f"directions must be Directions, a landscape file or None; got {type(directions).__name__}")
    d = d.select(settings.dims)
    params = d.layout.parameters(model)  # raises if the model does not match
    return d.to(params[0].device)


def _same_grid(a: LandscapeSettings, b: LandscapeSettings) -> bool:
    return all(getattr(a, f) == getattr(b, f) for f in _GRID_FIELDS)


def resume_mismatch(previous: Landscape, settings: LandscapeSettings, directions: Directions | None = None,
                    with_metric: bool | None = None) -> str | None:
    """Why ``previous`` (a landscape file) cannot be continued with these settings, directions and
    metric — ``"on another grid"``, ``"along other directions"``, ``"with a metric"`` or
    ``"without a metric"`` — or ``None`` when it can (``None`` arguments are not compared)."""
    if not _same_grid(previous.settings, settings):
        return "on another grid"
    if directions is not None:
        old = previous.directions
        same = (old is not None and old.vectors.shape == directions.vectors.shape
                and torch.equal(old.vectors.to(directions.vectors.device), directions.vectors))
        if not same:
            return "along other directions"
    if with_metric is not None and (previous.metric is not None) != with_metric:
        return "with a metric" if previous.metric is not None else "without a metric"
    return None


def _previous(out: Path | None, settings: LandscapeSettings, resume: bool, overwrite: bool) -> Landscape | None:
    """The landscape in ``out`` to continue (``resume``), or None to write afresh; an existing file
    without ``resume`` or ``overwrite`` is an error."""
    if out is None or not out.exists():
        return None
    if resume:
        previous = open_landscape(out)
        _check_resumable(out, previous, settings)
        return previous
    if not overwrite:
        raise GradscopeError(f"{out} exists: pass resume=True to continue it or overwrite=True to replace it")
    return None


def _check_resumable(out: Path, previous: Landscape, settings: LandscapeSettings,
                     directions: Directions | None = None, with_metric: bool | None = None) -> None:
    why = resume_mismatch(previous, settings, directions, with_metric)
    if why is not None:
        raise GradscopeError(f"{out} was computed {why}; resume needs the same settings")


def compute_landscape(
    model: nn.Module,
    batches: Sequence[Batch],
    loss_fn: LossFn,
    settings: LandscapeSettings | None = None,
    *,
    directions: Directions | str | Path | None = None,
    metric_fn: MetricFn | None = None,
    metric_name: str = "metric",
    forward: ForwardFn | None = None,
    batch_weights: Sequence[float] | None = None,
    out_path: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    label: str = "model",
    checkpoint: str | None = None,
    distributed: bool | None = None,
) -> Landscape:
    """The 1-D or 2-D loss landscape of ``model`` around its current parameters θ₀.

    Args:
        model: the parameter set (only read; restored bit for bit — it is never written).
        batches: the fixed evaluation set.
        loss_fn: ``loss_fn(outputs, batch) -> 0-d tensor``.
        settings: grid, normalization, seed and evaluation settings.
        directions: ``None`` (seeded random directions per ``settings``), a :class:`Directions`
            (random, from vectors, interpolation or Hessian), or a landscape file whose directions
            are reused exactly.
        metric_fn: ``metric_fn(outputs_list, batches) -> float``, evaluated at every point too.
        metric_name: how the metric is labelled in the file and plots (e.g. ``"roc_auc"``).
        forward: ``forward(model, batch) -> outputs``.
        batch_weights: per-batch loss weights (default: batch sizes).
        out_path: the HDF5 file to write (after every chunk).
        resume: continue an interrupted ``out_path``: only points not ``done`` are evaluated (the
            file's directions are used when ``directions`` is None).
        overwrite: replace an existing ``out_path``.
        progress: show a progress bar (rank 0 only).
        label, checkpoint: names stored with the result (e.g. ``"sam"``, the checkpoint path).
        distributed: shard the points over the ranks of the default process group (default:
            whenever one with more than one rank is initialized).
    """
    settings = settings or LandscapeSettings()
    grid = settings.grid()
    shape = grid.shape
    out = Path(out_path) if out_path is not None else None
    rank, size = dist_util.world()
    if distributed is False:
        rank, size = 0, 1
    previous = _previous(out, settings, resume, overwrite)
    if previous is not None and directions is None:
        directions = previous.directions
    d = _resolve_directions(model, settings, directions)
    if previous is not None:
        assert out is not None
        _check_resumable(out, previous, settings, d, metric_fn is not None)
    ls = Landscape(
        x=grid.x, y=grid.y,
        loss=previous.loss.copy() if previous is not None else np.full(shape, np.nan),
        metric=(previous.metric.copy() if previous is not None and previous.metric is not None
                else np.full(shape, np.nan) if metric_fn is not None else None),
        done=previous.done.copy() if previous is not None else np.zeros(shape, dtype=bool),
        directions=d, settings=settings, label=label, checkpoint=checkpoint, metric_name=metric_name, path=out,
    )
    evaluator = LandscapeEvaluator(
        model, batches, loss_fn, metric_fn=metric_fn, forward=forward, layout=d.layout,
        batch_weights=batch_weights, chunk_size=settings.chunk_size, max_chunk_size=settings.max_chunk_size,
        memory_budget_mb=settings.memory_budget_mb, mode=settings.mode,
    )
    dist_util.barrier()  # every rank has read the old file before rank 0 rewrites it
    writer = LandscapeWriter(out, ls, fresh=previous is None) if out is not None and rank == 0 else None
    try:
        _evaluate_pending(ls, evaluator, grid.coefficients(), (rank, size), writer, progress=progress)
    finally:
        if writer is not None:
            writer.close()
    dist_util.barrier()
    return ls


def _evaluate_pending(ls: Landscape, evaluator: LandscapeEvaluator, coeffs: np.ndarray, ranks: tuple[int, int],
                      writer: LandscapeWriter | None, *, progress: bool) -> None:
    """Evaluate the grid points not yet ``done`` — on one process, or sharded over ``ranks``
    (rank, world size) and gathered — and hand them to ``writer`` (rank 0) or into ``ls``."""
    rank, size = ranks
    pending = np.flatnonzero(~ls.done.reshape(-1))
    keep = writer.update if writer is not None else _in_memory(ls)
    desc = f"landscape {ls.label}"
    if size == 1:
        evaluator.evaluate(ls.directions.vectors, coeffs[pending], indices=pending, progress=progress, desc=desc,
                           on_chunk=keep)
        return
    mine = shard(pending, rank, size)
    res = evaluator.evaluate(ls.directions.vectors, coeffs[mine], indices=mine, progress=progress and rank == 0,
                             desc=desc)
    keep(*dist_util.gather_points(mine, res.loss, res.metric))


def _in_memory(ls: Landscape):  # type: ignore[no-untyped-def]
    def update(indices: np.ndarray, loss: np.ndarray, metric: np.ndarray | None) -> None:
        ls.loss.reshape(-1)[indices] = loss
        if ls.metric is not None and metric is not None:
            ls.metric.reshape(-1)[indices] = metric
        ls.done.reshape(-1)[indices] = True

    return update


def compare_landscapes(
    models: Mapping[str, nn.Module],
    batches: Sequence[Batch],
    loss_fn: LossFn,
    settings: LandscapeSettings | None = None,
    *,
    metric_fn: MetricFn | None = None,
    metric_name: str = "metric",
    forward: ForwardFn | None = None,
    batch_weights: Sequence[float] | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    checkpoints: Mapping[str, str] | None = None,
) -> dict[str, Landscape]:
    """Landscapes of several parameter sets (e.g. Adam, SAM and GraphSAM minima) with shared settings.

    Every set gets the same seeded random draw, normalized to its own parameters (filter-wise by
    default), so the curves are comparable as in Li et al. 2018 and the GraphSAM paper's Fig. 2.
    With ``out_dir``, each is written to ``out_dir/<label>.h5``.
    """
    if not models:
        raise GradscopeError("no parameter sets to compare")
    settings = settings or LandscapeSettings()
    layouts = {label: FlatLayout.from_module(m) for label, m in models.items()}
    first = next(iter(layouts.values()))
    for label, lay in layouts.items():
        if lay.names != first.names or lay.shapes != first.shapes:
            raise GradscopeError(f"parameter set {label!r} has another architecture than the first")
    out: dict[str, Landscape] = {}
    for label, model in models.items():
        path = Path(out_dir) / f"{file_label(label)}.h5" if out_dir is not None else None
        out[label] = compute_landscape(
            model, batches, loss_fn, settings, metric_fn=metric_fn, metric_name=metric_name, forward=forward,
            batch_weights=batch_weights, out_path=path, resume=resume, overwrite=overwrite, progress=progress,
            label=label, checkpoint=(checkpoints or {}).get(label),
        )
    return out

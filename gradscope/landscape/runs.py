"""Landscapes and sharpness of recorded runs: what ``gradscope landscape RUN...`` computes.

A run is a directory written by ``gradscope record`` (its best or last checkpoint) or a
checkpoint file; the model, the dataset and the exact split are rebuilt from the checkpoint alone
(:func:`gradscope.train.build.load_run`). For several runs the direction settings are shared
(one seed, each filter-normalized to its own weights), which makes the curves comparable (the
GraphSAM paper's Fig. 2).

Where things go: each run's landscape, figures and sharpness files into its own
``RUN/landscape/`` folder, or all of them into one ``out`` folder when one is given. A landscape
file is named by :func:`~gradscope.landscape.io.landscape_file_name` (label, directions and
dimension), so 1-D and 2-D landscapes do not collide. A file that exists already is continued when
it was computed with the same grid, directions and metric (a finished one is then only re-plotted),
so the same command can be run again; otherwise it is an error unless ``overwrite``.

Everything that can fail on the user's input — unreadable checkpoints, mixed architectures, a
run without ε/ω snapshots for ``eps-omega`` directions, an existing file with other settings — is
checked by :func:`prepare_runs` before anything is written.

The evaluation set is the run's ``split``, or a seeded uniform random sample of ``samples`` of its
molecules (:func:`sample_indices`; the first rows of a file are often not representative), packed
by size and weighted by label counts so that the loss is the mean over present labels exactly as
training's evaluation computes it.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gradscope.errors import ConfigError, GradscopeError
from gradscope.landscape.compute import compute_landscape, resume_mismatch
from gradscope.landscape.directions import (Directions, directions_from_vectors, interpolation_direction,
                                            random_directions)
from gradscope.landscape.functional import MetricFn
from gradscope.landscape.hessian import hessian_directions
from gradscope.landscape.io import Landscape, landscape_file_name, open_landscape
from gradscope.landscape.plot import save_plots
from gradscope.landscape.settings import LandscapeSettings, SharpnessSettings
from gradscope.landscape.sharpness import Sharpness, measure_sharpness
from gradscope.landscape.summary import write_sharpness
from gradscope.runlock import run_lock

#: Directions ``gradscope landscape --directions`` offers.
DIRECTIONS = ("random", "eps-omega", "hessian", "interpolate")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class RunLandscapeSettings:
    """What is computed for each run.

    Attributes:
        landscape: grid, normalization, seed and evaluation settings.
        directions: ``random`` (filter-normalized, seeded), ``eps-omega`` (the trace's ε/ω
            snapshot at ``step``, by default the last), ``hessian`` (top eigenvectors) or
            ``interpolate`` (the line from the first run's weights to the second's; 1-D only).
        split: the evaluation split; samples: a seeded random sample of that many molecules.
        step: the trace step of the ε/ω snapshot (``eps-omega`` only).
        sharpness: also measure sharpness (:func:`measure_sharpness`), or ``None``.
        checkpoint: ``best`` or ``last`` checkpoint of a run directory.
        data_path: the dataset file, when it moved since training.
    """

    landscape: LandscapeSettings = field(default_factory=LandscapeSettings)
    directions: str = "random"
    split: str = "train"
    samples: int | None = None
    step: int | None = None
    sharpness: SharpnessSettings | None = None
    checkpoint: str = "best"
    data_path: str | None = None

    def __post_init__(self) -> None:
        if self.directions not in DIRECTIONS:
            raise ConfigError(f"unknown directions {self.directions!r}; choose from {', '.join(DIRECTIONS)}")
        if self.split not in SPLITS:
            raise ConfigError(f"unknown split {self.split!r}; choose from {', '.join(SPLITS)}")
        if self.samples is not None and (isinstance(self.samples, bool) or self.samples < 1):
            raise ConfigError(f"samples must be a positive number of molecules, got {self.samples}")
        if self.step is not None and self.directions != "eps-omega":
            raise ConfigError("a snapshot step applies to eps-omega directions only")
        if self.directions == "interpolate" and self.landscape.dims != 1:
            raise ConfigError("interpolate directions give a 1-D line; use 1 dimension")
        if self.checkpoint not in ("best", "last"):
            raise ConfigError(f"checkpoint must be 'best' or 'last', got {self.checkpoint!r}")


def sample_indices(indices: np.ndarray, samples: int | None, seed: int) -> np.ndarray:
    """``samples`` of ``indices`` drawn uniformly at random without replacement (seeded), in their
    stored order; all of them when ``samples`` is ``None`` or not smaller."""
    indices = np.asarray(indices)
    if samples is None or samples >= indices.shape[0]:
        return indices
    pick = np.random.default_rng(seed).choice(indices.shape[0], size=samples, replace=False)
    return indices[np.sort(pick)]


def run_directory(checkpoint: Path) -> Path:
    """The run directory of a checkpoint (``RUN/checkpoints/best.pt`` → ``RUN``), else its folder."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


@dataclass
class PreparedRun:
    """One run, ready to compute: model and evaluation set, directions, where its file goes."""

    label: str
    run: Any  # gradscope.train.build.LoadedRun
    batches: list
    weights: list[float]
    directions: Directions
    path: Path
    resume: bool


@dataclass
class RunLandscape:
    """The result for one run: its landscape and (when asked) its sharpness."""

    label: str
    checkpoint: Path
    landscape: Landscape
    sharpness: Sharpness | None = None

    @property
    def out_dir(self) -> Path:
        assert self.landscape.path is not None
        return self.landscape.path.parent

    def record(self) -> dict[str, Any]:
        """Where the numbers came from, paths relative to the output folder (it can be moved)."""
        assert self.landscape.path is not None
        return {"run": os.path.relpath(run_directory(self.checkpoint), self.out_dir),
                "checkpoint": os.path.relpath(self.checkpoint, self.out_dir),
                "landscapes": [self.landscape.path.name]}


def _labels(runs: Sequence[Any]) -> list[str]:
    """Optimizer names; where they repeat, with the run directory's name."""
    names = [r.config.optimizer for r in runs]
    if len(set(names)) == len(names):
        return names
    return [f"{r.config.optimizer}:{run_directory(r.path).name}" for r in runs]


def _load(paths: Sequence[str | os.PathLike[str]], s: RunLandscapeSettings) -> list[Any]:
    from gradscope.train.build import load_run

    if not paths:
        raise GradscopeError("no run given")
    if s.directions == "interpolate" and len(paths) != 2:
        raise GradscopeError("interpolate directions need exactly two checkpoints (from, to)")
    loaded: dict = {}  # runs of one dataset share it: loaded (and its warnings shown) once
    runs = [load_run(p, which=s.checkpoint, data_path=s.data_path, loaded=loaded) for p in paths]
    for r in runs[1:]:
        if r.model_config != runs[0].model_config:
            raise GradscopeError(f"{r.path} is a checkpoint of another model than {runs[0].path} "
                                 "(different model config); landscapes can only be compared on one architecture")
    return runs


def _evaluation_set(run: Any, s: RunLandscapeSettings) -> tuple[list, list[float]]:
    """The split (or its seeded sample) as size-packed batches, weighted by their label counts."""
    idx = sample_indices(run.data.split[s.split], s.samples, s.landscape.seed)
    batches = run.data.dataset.size_batches(idx, standardizer=run.data.standardizer)
    return batches, [float(b.y_mask.sum()) for b in batches]


def _eps_omega(run: Any, s: RunLandscapeSettings) -> Directions:
    from gradscope.trace import open_trace

    trace_path = run_directory(run.path) / "trace.h5"
    if not trace_path.is_file():
        raise GradscopeError(f"eps-omega directions need the run's trace.h5 beside {run.path.parent}")
    vectors = open_trace(trace_path).vectors
    if vectors is None or len(vectors) == 0:
        raise GradscopeError(f"{trace_path} holds no ε/ω snapshots; record with --save-vectors-every K")
    row = len(vectors) - 1 if s.step is None else int(abs(vectors.step - s.step).argmin())
    eps, omega = vectors.eps(row), vectors.omega(row)
    if not np.isfinite(eps).all():
        raise GradscopeError(f"the snapshot at step {int(vectors.step[row])} has no ε (an Adam run?); "
                             "use --directions random")
    ls = s.landscape
    return directions_from_vectors(run.model, [eps, omega][:ls.dims], normalization=ls.normalization,
                                   include_1d=ls.include_1d)


def _directions(run: Any, runs: Sequence[Any], batches: list, weights: list[float],
                s: RunLandscapeSettings) -> Directions:
    ls = s.landscape
    if s.directions == "eps-omega":
        return _eps_omega(run, s)
    if s.directions == "hessian":
        return hessian_directions(run.model, batches, _loss_fn(run), k=ls.dims, seed=ls.seed, batch_weights=weights)
    if s.directions == "interpolate":
        return interpolation_direction(runs[0].model, runs[1].model)
    return random_directions(run.model, ls.dims, seed=ls.seed, normalization=ls.normalization,
                             include_1d=ls.include_1d)


def _loss_fn(run: Any) -> Any:
    from gradscope.train.objective import loss_fn_for

    return loss_fn_for(run.data.task)


def metric_fn_for(run: Any) -> MetricFn:
    """The run's task metric over one grid point's outputs, as training's evaluation scores it
    (:func:`gradscope.train.evaluate.score`: original scale for regression)."""
    from gradscope.train.evaluate import score
    from gradscope.train.objective import predictions

    task, metric, standardizer = run.data.task, run.data.metric, run.data.standardizer

    def fn(outputs: list, batches: list) -> float:
        pred = torch.cat([predictions(o, task) for o in outputs]).detach().cpu().numpy()
        y = torch.cat([b.y for b in batches]).cpu().numpy()
        mask = torch.cat([b.y_mask for b in batches]).cpu().numpy()
        return score(pred, y, mask, task=task, metric=metric, standardizer=standardizer)

    return fn


def _check_existing(p: PreparedRun, s: RunLandscapeSettings, overwrite: bool) -> bool:
    """Whether ``p.path`` is continued (True) or written afresh (False); an error when it exists
    with another grid, other directions or no metric and ``overwrite`` is not given."""
    if overwrite or not p.path.exists():
        return False
    try:
        previous = open_landscape(p.path)
    except GradscopeError as exc:
        raise GradscopeError(f"{exc}; replace it with --overwrite") from None
    why = resume_mismatch(previous, s.landscape, p.directions, with_metric=True)
    if why is not None:
        raise GradscopeError(f"{p.path} was computed {why}; replace it with --overwrite or write elsewhere (--out)")
    return True


def prepare_runs(paths: Sequence[str | os.PathLike[str]], settings: RunLandscapeSettings, *,
                 out: str | os.PathLike[str] | None = None, overwrite: bool = False) -> list[PreparedRun]:
    """Load every run and check everything (see module docstring); writes nothing.

    One :class:`PreparedRun` per run; with ``interpolate`` directions one for the line from the
    first run to the second (labelled ``"a→b"``, written beside the first run).
    """
    runs = _load(paths, settings)
    labels = _labels(runs)
    targets = list(zip(labels, runs))
    if settings.directions == "interpolate":
        targets = [(f"{labels[0]}→{labels[1]}", runs[0])]
    prepared = []
    for label, run in targets:
        batches, weights = _evaluation_set(run, settings)
        folder = Path(out) if out is not None else run_directory(run.path) / "landscape"
        path = folder / landscape_file_name(label, settings.directions, settings.landscape.dims)
        directions = _directions(run, runs, batches, weights, settings)
        p = PreparedRun(label, run, batches, weights, directions, path, resume=False)
        p.resume = _check_existing(p, settings, overwrite)
        prepared.append(p)
    return prepared


def compute_prepared(p: PreparedRun, settings: RunLandscapeSettings, *, progress: bool = True) -> RunLandscape:
    """The landscape (continued or afresh) and, when asked, the sharpness of one prepared run."""
    loss_fn = _loss_fn(p.run)
    ls = compute_landscape(
        p.run.model, p.batches, loss_fn, settings.landscape, directions=p.directions, metric_fn=metric_fn_for(p.run),
        metric_name=p.run.data.metric, batch_weights=p.weights, out_path=p.path, resume=p.resume,
        overwrite=not p.resume, progress=progress, label=p.label, checkpoint=str(p.run.path))
    sharp = None
    if settings.sharpness is not None:
        sharp = measure_sharpness(p.run.model, p.batches, loss_fn, settings.sharpness, batch_weights=p.weights,
                                  progress=progress)
    return RunLandscape(p.label, p.run.path, ls, sharp)


@contextmanager
def writers_lock(prepared: Sequence[PreparedRun], *, out: str | os.PathLike[str] | None = None,
                 enabled: bool = True) -> Iterator[None]:
    """Hold the write lock (:func:`gradscope.runlock.run_lock`) of every folder the runs write into:
    ``out`` when given, else each run's directory (so a landscape and a `gradscope record` of the same
    run exclude each other). A second writer is refused before anything is written."""
    if not enabled:
        yield
        return
    folders = [Path(out)] if out is not None else [run_directory(p.run.path) for p in prepared]
    with ExitStack() as stack:
        for folder in dict.fromkeys(folders):  # each once, in order
            stack.enter_context(run_lock(folder, "gradscope landscape"))
        yield


def compute_runs(paths: Sequence[str | os.PathLike[str]], settings: RunLandscapeSettings, *,
                 out: str | os.PathLike[str] | None = None, overwrite: bool = False,
                 progress: bool = True) -> list[RunLandscape]:
    """:func:`prepare_runs`, then every landscape (and sharpness); files are written as they go."""
    prepared = prepare_runs(paths, settings, out=out, overwrite=overwrite)
    with writers_lock(prepared, out=out):
        return [compute_prepared(p, settings, progress=progress) for p in prepared]


def write_outputs(results: Sequence[RunLandscape], settings: RunLandscapeSettings) -> list[Path]:
    """Per output folder: the figures (:func:`save_plots`), and the sharpness files
    (:func:`~gradscope.landscape.summary.write_sharpness`) with each run's origin; the written paths."""
    from gradscope.landscape.plot import plot_density

    written: list[Path] = []
    folders: dict[Path, list[RunLandscape]] = {}
    for r in results:
        folders.setdefault(r.out_dir, []).append(r)
    for folder, group in folders.items():
        written += save_plots({r.label: r.landscape for r in group}, folder, prefix=f"landscape_{settings.directions}")
        measured = {r.label: r.sharpness for r in group if r.sharpness is not None}
        if measured:
            written += write_sharpness(folder, measured, {r.label: r.record() for r in group})
            densities = {label: s.density for label, s in measured.items() if s.density is not None}
            if densities:
                plot_density(densities, folder / "sharpness_density.png")
                written.append(folder / "sharpness_density.png")
    return written

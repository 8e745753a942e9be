"""The landscape file (HDF5, ``format="gradscope.landscape"``, version 1) and its reader.

Layout (documented for outside tools in docs/landscape.md)::

    /                     attrs: format, version, label, checkpoint, settings (JSON), dims,
                                 metric_name, has_metric, created, gradscope_version, torch_version
    /coords/x             [nx] float64 coordinates along d₁ (0 is exactly one of them)
    /coords/y             [ny] float64 along d₂ (2-D only)
    /loss                 [nx] or [ny, nx] float64, NaN where not evaluated yet
    /metric               same shape, NaN where not evaluated or without a metric
    /done                 same shape, uint8: 1 where loss (and metric) are final
    /directions/vectors   [k, P] the directions as applied
    /directions/raw       [k, P] before normalization (optional)
                          attrs: kind, normalization, include_1d, seed (-1: none),
                                 layout (JSON: names, shapes, dtypes), eigenvalues (optional)

Values are written after every evaluated chunk and the file is flushed, values before the
``done`` mask, so a killed run leaves a readable file whose ``done`` points are final; running
again with ``resume=True`` evaluates only the others.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from gradscope._version import __version__
from gradscope.errors import GradscopeError
from gradscope.landscape.directions import Directions
from gradscope.landscape.grid import Grid
from gradscope.optim.flat import FlatLayout
from gradscope.landscape.settings import LandscapeSettings

FORMAT = "gradscope.landscape"
VERSION = 1


@dataclass
class Landscape:
    """A computed (or partly computed) landscape.

    Attributes:
        x, y: coordinates (``y`` is ``None`` for 1-D).
        loss: ``[nx]`` or ``[ny, nx]`` (rows = y), NaN where not done.
        metric: same shape, or ``None`` without a metric.
        done: boolean mask of final points.
        directions: the directions (``None`` if not loaded).
        settings: the settings it was computed with.
        label: which parameter set (e.g. ``"sam"``); checkpoint: where it came from.
        metric_name: the name of the metric.
        path: the file it lives in, if any.
        direction_kind, direction_normalization: of the directions (known without loading them).
    """

    x: np.ndarray
    y: np.ndarray | None
    loss: np.ndarray
    metric: np.ndarray | None
    done: np.ndarray
    directions: Directions | None
    settings: LandscapeSettings
    label: str = "model"
    checkpoint: str | None = None
    metric_name: str = "metric"
    path: Path | None = None
    direction_kind: str = "random"
    direction_normalization: str = "filter"

    def __post_init__(self) -> None:
        if self.directions is not None:
            self.direction_kind = self.directions.kind
            self.direction_normalization = self.directions.normalization

    @property
    def dims(self) -> int:
        return 1 if self.y is None else 2

    @property
    def grid(self) -> Grid:
        return Grid(self.x, self.y)

    @property
    def complete(self) -> bool:
        return bool(self.done.all())

    @property
    def centre_loss(self) -> float:
        """L(θ₀), the value at coordinates (0, 0)."""
        return float(self.loss.reshape(-1)[self.grid.centre_index])


def file_label(label: str) -> str:
    """``label`` as a file-name part: runs of characters other than ASCII letters, digits, ``-``,
    ``_`` and ``.`` become one ``_`` (``"adam→sam"`` → ``"adam_sam"``). The one sanitising rule of
    landscape outputs (data files, figures)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("._")
    if not safe:
        raise GradscopeError(f"label {label!r} gives no usable file name")
    return safe


def landscape_file_name(label: str, directions: str, dims: int) -> str:
    """The file of one landscape: ``<label>_<directions>_<dims>d.h5`` (e.g. ``sam_random_1d.h5``),
    so that 1-D and 2-D landscapes, and landscapes along other directions, never share a file."""
    return f"{file_label(label)}_{file_label(directions)}_{int(dims)}d.h5"


def _directions_to_group(group: h5py.Group, d: Directions) -> None:
    group.create_dataset("vectors", data=d.vectors.detach().cpu().numpy())
    if d.raw is not None:
        group.create_dataset("raw", data=d.raw.detach().cpu().numpy())
    group.attrs["kind"] = d.kind
    group.attrs["normalization"] = d.normalization
    group.attrs["include_1d"] = int(d.include_1d)
    group.attrs["seed"] = -1 if d.seed is None else int(d.seed)
    group.attrs["layout"] = json.dumps(d.layout.to_dict())
    if d.eigenvalues is not None:
        group.attrs["eigenvalues"] = np.asarray(d.eigenvalues, dtype=np.float64)


def _directions_from_group(group: h5py.Group) -> Directions:
    seed = int(group.attrs["seed"])
    eig = group.attrs.get("eigenvalues")
    return Directions(
        vectors=torch.from_numpy(group["vectors"][()]),
        layout=FlatLayout.from_dict(json.loads(group.attrs["layout"])),
        kind=str(group.attrs["kind"]),
        normalization=str(group.attrs["normalization"]),
        include_1d=bool(group.attrs["include_1d"]),
        seed=None if seed < 0 else seed,
        raw=torch.from_numpy(group["raw"][()]) if "raw" in group else None,
        eigenvalues=None if eig is None else tuple(float(v) for v in np.atleast_1d(eig)),
    )


def _check_format(f: h5py.File, path: Path) -> None:
    if f.attrs.get("format") != FORMAT:
        raise GradscopeError(f"{path} is not a gradscope landscape file")
    version = int(f.attrs.get("version", -1))
    if version != VERSION:
        raise GradscopeError(f"{path} has landscape format version {version}; this gradscope reads {VERSION}")


def open_landscape(path: str | Path, *, with_directions: bool = True) -> Landscape:
    """Read a landscape file (also one still being written or left by an interrupted run)."""
    path = Path(path)
    if not path.is_file():
        raise GradscopeError(f"no landscape file at {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise GradscopeError(f"cannot open {path} as HDF5: {exc}") from None
    with f:
        _check_format(f, path)
        has_metric = bool(f.attrs.get("has_metric", 0))
        checkpoint = str(f.attrs.get("checkpoint", ""))
        return Landscape(
            x=f["coords/x"][()],
            y=f["coords/y"][()] if "coords/y" in f else None,
            loss=f["loss"][()],
            metric=f["metric"][()] if has_metric else None,
            done=f["done"][()].astype(bool),
            directions=_directions_from_group(f["directions"]) if with_directions else None,
            settings=LandscapeSettings.from_json(str(f.attrs["settings"])),
            label=str(f.attrs.get("label", "model")),
            checkpoint=checkpoint or None,
            metric_name=str(f.attrs.get("metric_name", "metric")),
            path=path,
            direction_kind=str(f["directions"].attrs["kind"]),
            direction_normalization=str(f["directions"].attrs["normalization"]),
        )


def load_directions(path: str | Path, *, renormalize_to: nn.Module | None = None) -> Directions:
    """The directions saved in a landscape file, to reuse them on another parameter set.

    Without ``renormalize_to`` the vectors are returned exactly as applied before (same absolute
    displacement). With a model, the saved raw draws are normalized again to that model's
    parameters (Li et al. 2018's way to compare minima: one draw, each minimum's own scale).
    """
    path = Path(path)
    if not path.is_file():
        raise GradscopeError(f"no landscape file at {path}")
    with h5py.File(path, "r") as f:
        _check_format(f, path)
        d = _directions_from_group(f["directions"])
    if renormalize_to is not None:
        d = d.renormalized(renormalize_to)
    return d


class LandscapeWriter:
    """Creates a landscape file and writes values into it as chunks finish.

    Args:
        path: the file; created (replacing what is there) unless ``resume_from`` holds its state.
        landscape: the in-memory landscape whose arrays are updated and written.
        fresh: create the file (``True``) or open an existing one to continue it (``False``).
    """

    def __init__(self, path: str | Path, landscape: Landscape, fresh: bool = True) -> None:
        self.path = Path(path)
        self.ls = landscape
        if fresh:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._create()
        self._file = h5py.File(self.path, "r+")

    def _create(self) -> None:
        ls = self.ls
        if ls.directions is None:
            raise GradscopeError("cannot write a landscape without its directions")
        tmp = self.path.with_name(self.path.name + ".tmp")
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["version"] = VERSION
            f.attrs["label"] = ls.label
            f.attrs["checkpoint"] = ls.checkpoint or ""
            f.attrs["settings"] = ls.settings.to_json()
            f.attrs["dims"] = ls.dims
            f.attrs["metric_name"] = ls.metric_name
            f.attrs["has_metric"] = int(ls.metric is not None)
            f.attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            f.attrs["gradscope_version"] = __version__
            f.attrs["torch_version"] = str(torch.__version__)
            f.create_dataset("coords/x", data=ls.x)
            if ls.y is not None:
                f.create_dataset("coords/y", data=ls.y)
            f.create_dataset("loss", data=ls.loss)
            f.create_dataset("metric", data=ls.metric if ls.metric is not None else np.full_like(ls.loss, np.nan))
            f.create_dataset("done", data=ls.done.astype(np.uint8))
            _directions_to_group(f.create_group("directions"), ls.directions)
        tmp.replace(self.path)  # the file appears complete or not at all

    def update(self, indices: np.ndarray, loss: np.ndarray, metric: np.ndarray | None) -> None:
        """Record values of flat point ``indices`` and write them (values first, then ``done``)."""
        ls = self.ls
        ls.loss.reshape(-1)[indices] = loss
        if ls.metric is not None and metric is not None:
            ls.metric.reshape(-1)[indices] = metric
        ls.done.reshape(-1)[indices] = True
        f = self._file
        f["loss"][...] = ls.loss
        if ls.metric is not None:
            f["metric"][...] = ls.metric
        f.flush()
        f["done"][...] = ls.done.astype(np.uint8)
        f.flush()

    def close(self) -> None:
        if self._file.id.valid:
            self._file.close()

    def __enter__(self) -> LandscapeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

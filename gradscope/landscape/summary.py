"""The sharpness files beside landscapes: ``sharpness.json`` (the numbers) and ``sharpness.h5`` (arrays).

``gradscope landscape --hessian`` measures each parameter set (:func:`measure_sharpness`) and
writes, into the folder of its landscape files:

* ``sharpness.json`` — ``{label: {...}}`` with :meth:`Sharpness.to_dict`'s numbers (loss,
  random-direction increases, λ_max, λ_min, top eigenvalues, trace, ρ-sharpness) plus what the
  caller adds (the run, the checkpoint, the landscape files);
* ``sharpness.h5`` (``format="gradscope.sharpness"``, version 1) — one group per label (its
  :func:`~gradscope.landscape.io.file_label`; attribute ``label``) with the arrays: ``increases``,
  ``top_eigenvalues``, ``rho_values``, ``density/nodes`` and ``density/weights`` (runs × steps,
  stochastic Lanczos quadrature) and ``density/grid``/``density/values`` (the smoothed density).

Both files are updated, not replaced: labels measured before and not measured again are kept.
Each is written complete under a temporary name and then renamed, so a crash leaves the last
complete file.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gradscope.errors import GradscopeError
from gradscope.landscape.io import file_label
from gradscope.landscape.sharpness import Sharpness

SUMMARY_FILE = "sharpness.json"
ARRAYS_FILE = "sharpness.h5"
FORMAT = "gradscope.sharpness"
VERSION = 1


def read_sharpness(folder: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """``{label: numbers}`` of ``folder/sharpness.json`` (empty when there is none)."""
    path = Path(folder) / SUMMARY_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GradscopeError(f"{path} is not a readable sharpness summary ({exc})") from None
    if not isinstance(data, dict):
        raise GradscopeError(f"{path} is not a sharpness summary (expected a JSON object)")
    return data


def _replace(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _write_group(group: h5py.Group, label: str, s: Sharpness) -> None:
    group.attrs["label"] = label
    group.attrs["summary"] = json.dumps(s.to_dict())
    group.create_dataset("increases", data=np.asarray(s.increases, dtype=np.float64))
    if s.top_eigenvalues is not None:
        group.create_dataset("top_eigenvalues", data=np.asarray(s.top_eigenvalues, dtype=np.float64))
    if s.rho_values is not None:
        group.create_dataset("rho_values", data=np.asarray(s.rho_values, dtype=np.float64))
    if s.density is not None:
        grid = s.density.grid()
        group.create_dataset("density/nodes", data=s.density.nodes)
        group.create_dataset("density/weights", data=s.density.weights)
        group.create_dataset("density/grid", data=grid)
        group.create_dataset("density/values", data=s.density.density(grid))


def write_sharpness(folder: str | os.PathLike[str], measured: Mapping[str, Sharpness],
                    extra: Mapping[str, Mapping[str, Any]] | None = None) -> list[Path]:
    """Add (or replace) the ``measured`` labels in ``folder``'s sharpness files; returns both paths.

    ``extra[label]`` is merged into that label's JSON entry (e.g. the run it came from).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries = read_sharpness(folder)
    for label, s in measured.items():
        entries[label] = {**s.to_dict(), **dict((extra or {}).get(label, {}))}
    json_path, h5_path = folder / SUMMARY_FILE, folder / ARRAYS_FILE
    _replace(json_path, lambda p: p.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8"))

    def write_h5(tmp: Path) -> None:
        with h5py.File(tmp, "w") as dst:
            dst.attrs["format"] = FORMAT
            dst.attrs["version"] = VERSION
            if h5_path.is_file():
                with h5py.File(h5_path, "r") as src:
                    for name in src:
                        if name not in {file_label(label) for label in measured}:
                            src.copy(src[name], dst, name=name)
            for label, s in measured.items():
                _write_group(dst.create_group(file_label(label)), label, s)

    _replace(h5_path, write_h5)
    return [json_path, h5_path]

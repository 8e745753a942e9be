"""A tiny writer of synthetic traces and landscape files, written with h5py only.

It spells out the names of DESIGN.md's "Trace file (HDF5, schema version 1)" itself (not via
gradscope.trace) so that the analyses are tested against the documented contract.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

STEP_FLOAT = ("lr", "rho", "loss", "loss_perturbed", "time_s", "eps_norm", "eps_hat_norm", "omega_norm",
              "eps_change", "omega_change", "cos_eps_omega", "cos_eps_prev_omega", "cos_eps_exact", "eps_exact_norm")
STEP_INT = ("step", "epoch", "anchored", "grad_evals", "batch_size")


def write_trace(
    path: Path,
    steps: Mapping[str, Any] | None = None,
    epochs: Mapping[str, Any] | None = None,
    *,
    n_steps: int | None = None,
    optimizer: str = "SAM",
    config: Mapping[str, Any] | None = None,
    omit: tuple[str, ...] = (),
) -> Path:
    """Write a schema-1 trace; unspecified step columns are NaN (floats) or defaults (ints).

    ``steps``/``epochs`` map names to 1-D (or, for epochs, N-D) arrays; ``omit`` drops step
    columns entirely (to test "dataset missing" errors).
    """
    steps = dict(steps or {})
    n = n_steps if n_steps is not None else (len(next(iter(steps.values()))) if steps else 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "gradscope.trace"
        f.attrs["schema_version"] = 1
        f.attrs["config"] = json.dumps(dict(config or {"optimizer": {"name": optimizer}}))
        f.attrs["optimizer"] = optimizer
        f.attrs["gradscope_version"] = "0.1.0"
        f.attrs["torch_version"] = "test"
        f.attrs["device"] = "cpu"
        f.attrs["created"] = "2024-01-01T00:00:00+00:00"
        g = f.create_group("steps")
        defaults = {"step": np.arange(n), "epoch": np.zeros(n), "anchored": np.ones(n), "grad_evals": np.full(n, 2),
                    "batch_size": np.full(n, 32)}
        for name in STEP_INT + STEP_FLOAT:
            if name in omit:
                continue
            if name in steps:
                values = np.asarray(steps[name])
            elif name in defaults:
                values = defaults[name]
            else:
                values = np.full(n, np.nan)
            dtype = np.int64 if name in STEP_INT else np.float32
            g.create_dataset(name, data=np.asarray(values, dtype=dtype), maxshape=(None,))
        e = f.create_group("epochs")
        for name, values in dict(epochs or {}).items():
            arr = np.asarray(values)
            e.create_dataset(name, data=arr.astype(np.int32 if name == "epoch" else np.float64))
    return path


def write_landscape(path: Path, x: np.ndarray, loss: np.ndarray, y: np.ndarray | None = None, label: str = "model",
                    done: np.ndarray | None = None) -> Path:
    """A landscape file in the documented layout (docs/landscape.md), without real directions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = {"dims": 1 if y is None else 2, "points_x": int(len(x)), "range_x": float(np.max(np.abs(x)))}
    if y is not None:
        settings.update(points_y=int(len(y)), range_y=float(np.max(np.abs(y))))
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "gradscope.landscape"
        f.attrs["version"] = 1
        f.attrs["label"] = label
        f.attrs["checkpoint"] = ""
        f.attrs["settings"] = json.dumps(settings)
        f.attrs["dims"] = settings["dims"]
        f.attrs["metric_name"] = "metric"
        f.attrs["has_metric"] = 0
        f.create_dataset("coords/x", data=np.asarray(x, dtype=np.float64))
        if y is not None:
            f.create_dataset("coords/y", data=np.asarray(y, dtype=np.float64))
        f.create_dataset("loss", data=np.asarray(loss, dtype=np.float64))
        f.create_dataset("metric", data=np.full_like(np.asarray(loss, dtype=np.float64), np.nan))
        f.create_dataset("done", data=(np.ones_like(loss) if done is None else done).astype(np.uint8))
        d = f.create_group("directions")
        d.create_dataset("vectors", data=np.zeros((settings["dims"], 3), dtype=np.float32))
        d.attrs["kind"] = "random"
        d.attrs["normalization"] = "filter"
        d.attrs["include_1d"] = 0
        d.attrs["seed"] = 0
        d.attrs["layout"] = json.dumps({"names": ["w"], "shapes": [[3]], "dtypes": ["float32"]})
    return path


def sam_like(n: int = 120, seed: int = 0, optimizer: str = "SAM") -> dict[str, np.ndarray]:
    """Random but reproducible step columns of a sharpness-aware run."""
    rng = np.random.default_rng(seed)
    eps_norm = 0.5 + 0.1 * rng.random(n)
    omega_norm = 5.0 + rng.random(n)
    eps_change = 0.05 * rng.random(n)
    omega_change = 2.0 * rng.random(n)
    eps_change[0] = omega_change[0] = np.nan
    cos_prev = rng.uniform(-1, 1, n)
    cos_prev[0] = np.nan
    return {"eps_norm": eps_norm, "omega_norm": omega_norm, "eps_change": eps_change, "omega_change": omega_change,
            "cos_eps_prev_omega": cos_prev, "epoch": np.arange(n) // 10, "grad_evals": np.full(n, 2)}

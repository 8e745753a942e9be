"""Checkpoints of a recorded run: written atomically, loadable with ``weights_only=True``.

A checkpoint holds everything needed to rebuild exactly what the run saw and to continue it:
the model config and weights, the dataset spec with its split indices (and the regression
standardizer), the optimizer, LR-schedule and ρ-schedule state, the RNG states and the
position in training (:class:`~gradscope.train.state.RunState`). Only tensors and plain Python
containers are stored, so ``torch.load(path, weights_only=True)`` can read it without
unpickling arbitrary code.

:class:`Checkpoint` is the typed form and :meth:`Checkpoint.read` the one reader (the resumed
loop and :func:`gradscope.train.build.load_run` both use it). The file layout is the one
checkpoints have always had (version 1): checkpoints of older gradscope versions load, their
flat configuration keys included (:meth:`gradscope.train.config.RecordConfig.from_dict`).
"""
from __future__ import annotations

import os
import pickle
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gradscope.errors import GradscopeError
from gradscope.train.config import RecordConfig
from gradscope.train.state import RunState

FORMAT = "gradscope.checkpoint"
VERSION = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically (temporary file, fsync, rename).

    A failed write (a full disk, a read-only place) removes the temporary file and raises a
    one-line GradscopeError naming the checkpoint; the previous ``path``, if any, is untouched.
    """
    path = Path(path)
    data = {"format": FORMAT, "version": VERSION, **payload}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            sink = _Sink(fh)
            try:
                torch.save(data, sink)
            except RuntimeError:  # torch's writer hides the OSError of a failed write behind its own error
                if sink.error is None:
                    raise
                raise sink.error from None
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise GradscopeError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


class _Sink:
    """A binary file for ``torch.save`` that remembers the first OSError of a write."""

    def __init__(self, fh: Any) -> None:
        self.fh, self.error = fh, None

    def write(self, data: Any) -> int:
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def flush(self) -> None:
        self.fh.flush()


#: Leftovers of an interrupted :func:`save_checkpoint` (removed by ``--overwrite``).
PARTIAL_GLOB = ".*.pt.tmp*"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a gradscope checkpoint (``weights_only=True``), with one-line errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise GradscopeError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # torch warns about some foreign files before refusing them
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt / foreign files
        raise GradscopeError(f"cannot read checkpoint {path}: {_load_problem(path, exc)}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise GradscopeError(f"{path} is not a gradscope checkpoint")
    if int(data.get("version", 0)) > VERSION:
        raise GradscopeError(
            f"{path} has checkpoint version {data['version']}, newer than this gradscope reads ({VERSION}); upgrade gradscope")
    return data


def _load_problem(path: Path, exc: Exception) -> str:
    """What is wrong with a file ``torch.load(weights_only=True)`` refused, in the user's terms.

    Never suggests ``weights_only=False``: a file that needs it was not written by gradscope (its
    checkpoints hold only tensors and plain containers), and unpickling it could run its code.
    """
    size = path.stat().st_size
    if size == 0:
        return "the file is empty (0 bytes: a copy or a write that did not finish?)"
    with open(path, "rb") as fh:
        head = fh.read(4)
    refused = isinstance(exc, pickle.UnpicklingError)
    if head == b"PK\x03\x04" or head[:1] == b"\x80":  # torch's zip format, or a bare (legacy) pickle
        if refused:
            return ("it holds Python objects that gradscope checkpoints never contain, so it is not a gradscope "
                    "checkpoint (written by another tool?); gradscope does not unpickle it, as that could run code")
        return f"the file is cut short or damaged ({size:,} bytes: a copy or a write that did not finish?)"
    return f"not a PyTorch checkpoint ({size:,} bytes that are neither torch's zip format nor a pickle)"


@dataclass
class Checkpoint:
    """One checkpoint file's content, typed (see the module docstring)."""

    config: RecordConfig
    model_config: dict[str, Any]
    model_state: dict[str, torch.Tensor]
    dataset: dict[str, Any]
    split: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any]
    state: RunState
    rng: dict[str, Any]
    dataset_sha256: str | None = None
    standardizer: dict[str, Any] | None = None
    rho_schedule_state: dict[str, Any] | None = None
    lr_schedule_state: dict[str, Any] | None = None
    scaler_state: dict[str, Any] | None = None  # fp16 runs: the GradScaler's loss scale and growth tracker
    gradscope_version: str = ""
    torch_version: str = ""

    #: Keys every checkpoint written by `gradscope record` has.
    REQUIRED = ("config", "model_config", "model_state", "dataset", "split", "optimizer_state", "epoch", "batch",
                "step", "partial", "best", "rng")

    def to_dict(self) -> dict[str, Any]:
        """The payload of the file (``save_checkpoint`` adds ``format`` and ``version``)."""
        return {
            "config": self.config.to_dict(), "model_config": self.model_config, "model_state": self.model_state,
            "dataset": self.dataset, "dataset_sha256": self.dataset_sha256, "split": self.split,
            "standardizer": self.standardizer, "optimizer_state": self.optimizer_state,
            "rho_schedule_state": self.rho_schedule_state, "lr_schedule_state": self.lr_schedule_state,
            "scaler_state": self.scaler_state, **self.state.to_dict(), "rng": self.rng, "gradscope_version": self.gradscope_version,
            "torch_version": self.torch_version,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | Path = "checkpoint") -> "Checkpoint":
        missing = [key for key in cls.REQUIRED if key not in data]
        if missing:
            raise GradscopeError(f"{source} lacks {missing[0]!r}; was it written by gradscope record?")
        return cls(
            config=RecordConfig.from_dict(data["config"]), model_config=dict(data["model_config"]),
            model_state=data["model_state"], dataset=dict(data["dataset"]), split=dict(data["split"]),
            optimizer_state=data["optimizer_state"], state=RunState.from_dict(data), rng=data["rng"],
            dataset_sha256=data.get("dataset_sha256"), standardizer=data.get("standardizer"),
            rho_schedule_state=data.get("rho_schedule_state"), lr_schedule_state=data.get("lr_schedule_state"),
            scaler_state=data.get("scaler_state"), gradscope_version=str(data.get("gradscope_version", "")), torch_version=str(data.get("torch_version", "")),
        )

    @classmethod
    def read(cls, path: str | Path) -> "Checkpoint":
        """Read and check a checkpoint file: the one reader of checkpoints."""
        return cls.from_dict(load_checkpoint(path), path)

    def save(self, path: str | Path) -> Path:
        return save_checkpoint(path, self.to_dict())

    def split_indices(self) -> dict[str, np.ndarray]:
        """The train/val/test index arrays of the run's split."""
        return {k: v.numpy().astype(np.int64) for k, v in self.split.items()}


def find_checkpoint(path: str | Path, which: str = "best") -> Path:
    """A checkpoint file, or a run directory's ``checkpoints/{which}.pt`` (falling back to last)."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        ckdir = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        for name in (which, "last"):
            candidate = ckdir / f"{name}.pt"
            if candidate.is_file():
                return candidate
        raise GradscopeError(f"no checkpoint in {path} (expected checkpoints/{which}.pt)")
    raise GradscopeError(f"no such run directory or checkpoint: {path}")


# -- RNG state -----------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """Every RNG a training step may draw from, as weights_only-safe values."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])

"""The instrumented training run behind `gradscope record`.

``record(config, out)`` trains and records one run (:mod:`gradscope.train.loop`, the loop is
:class:`~gradscope.train.trainer.Trainer`); ``RecordConfig`` is its configuration;
``load_run(dir)`` rebuilds a run's model and split from a checkpoint; ``Checkpoint.read(path)``
reads a checkpoint. Submodules load on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "record": ("gradscope.train.loop", "record"),
    "RunResult": ("gradscope.train.trainer", "RunResult"),
    "Trainer": ("gradscope.train.trainer", "Trainer"),
    "RecordConfig": ("gradscope.train.config", "RecordConfig"),
    "Checkpoint": ("gradscope.train.checkpoint", "Checkpoint"),
    "RunState": ("gradscope.train.state", "RunState"),
    "load_run": ("gradscope.train.build", "load_run"),
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'gradscope.train' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value

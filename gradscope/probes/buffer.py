"""The recorder's rows between flushes: device-measured columns in one device tensor, host ones in numpy.

Which column goes where is read from the trace schema (:class:`gradscope.trace.schema.Column`
``source``): the ``device`` step columns and the per-tensor ``layers`` columns are cells of one
preallocated float32 device tensor, filled by one ``torch.stack`` per step and copied to the
host once per flush; the ``host`` step columns are numpy arrays. Callers address every cell by
column name; the buffer's column positions are its own business.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import torch

from gradscope.trace import schema

#: Step columns measured on the device, in the order of the device buffer's first columns.
DEVICE_COLUMNS: tuple[str, ...] = tuple(c.name for c in schema.STEPS.where(source="device"))
#: Step columns decided on the host.
HOST_COLUMNS: tuple[schema.Column, ...] = schema.STEPS.where(source="host")
#: Per-tensor columns of the ``layers`` group, measured on the device after the step columns.
LAYER_COLUMNS: tuple[str, ...] = tuple(c.name for c in schema.LAYERS.where(source="device", per="tensor"))


class StepBuffer:
    """``rows`` rows of step (and per-tensor) columns, addressed by name.

    Args:
        rows: capacity (the recorder's ``flush_every``).
        device: where the device columns live.
        tensors: parameter tensors of the per-tensor breakdown (0: none).
    """

    def __init__(self, rows: int, device: torch.device, tensors: int = 0) -> None:
        self.capacity = rows
        self.tensors = tensors
        self._index = {name: i for i, name in enumerate(DEVICE_COLUMNS)}
        width = len(DEVICE_COLUMNS) + len(LAYER_COLUMNS) * tensors
        self._device = torch.full((rows, width), math.nan, device=device)
        self._host_copy = torch.empty((rows, width), pin_memory=device.type == "cuda")
        self._host = {c.name: np.full(rows, c.fill, dtype=c.dtype) for c in HOST_COLUMNS}
        self.count = 0

    def put(
        self,
        measured: Mapping[str, torch.Tensor],
        layers: Mapping[str, Sequence[torch.Tensor]],
        host: Mapping[str, float | int],
    ) -> None:
        """Fill the next row: every device column, every per-tensor column (when kept), every host column."""
        row = self.count
        values = [measured[name] for name in DEVICE_COLUMNS]
        if self.tensors:
            values += [t for name in LAYER_COLUMNS for t in layers[name]]
        torch.stack([v.to(self._device.device, torch.float32) for v in values], out=self._device[row])
        for col in HOST_COLUMNS:
            self._host[col.name][row] = host[col.name]
        self.count += 1

    def cell(self, name: str, row: int = -1) -> torch.Tensor:
        """The device cell of column ``name`` in ``row`` (default: the last filled row), as a view."""
        return self._device[self.count + row if row < 0 else row, self._index[name]]

    def take(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
        """The filled rows as (step columns, per-tensor columns or None), in one device→host copy; empties the buffer."""
        n = self.count
        self._host_copy[:n].copy_(self._device[:n])
        rows = self._host_copy[:n].numpy()
        columns = {name: rows[:, i] for name, i in self._index.items()}
        columns.update({name: values[:n] for name, values in self._host.items()})
        layers = None
        if self.tensors:
            start, t = len(DEVICE_COLUMNS), self.tensors
            layers = {name: rows[:, start + k * t : start + (k + 1) * t] for k, name in enumerate(LAYER_COLUMNS)}
        self.count = 0
        return columns, layers

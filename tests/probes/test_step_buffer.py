"""The recorder's StepBuffer: cells addressed by schema name, one device→host copy per take."""
from __future__ import annotations

import numpy as np
import torch

from gradscope.probes.buffer import DEVICE_COLUMNS, HOST_COLUMNS, LAYER_COLUMNS, StepBuffer
from gradscope.trace import schema


def test_columns_come_from_the_schema_sources() -> None:
    assert DEVICE_COLUMNS == tuple(c.name for c in schema.STEPS.columns if c.source == "device")
    assert {c.name for c in HOST_COLUMNS} == {c.name for c in schema.STEPS.columns if c.source == "host"}
    assert LAYER_COLUMNS == ("eps_norm", "omega_norm")


def _row(k: int, tensors: int):
    """Distinct values for every cell of row k: device column i holds 100k + i, per-tensor ones 1000 + …"""
    measured = {name: torch.tensor(100.0 * k + i) for i, name in enumerate(DEVICE_COLUMNS)}
    layers = {name: [torch.tensor(1000.0 + 10 * j + t + k) for t in range(tensors)] for j, name in enumerate(LAYER_COLUMNS)}
    host = {c.name: k + 1 for c in HOST_COLUMNS}
    return measured, layers, host


def test_put_and_take_round_trip_by_name() -> None:
    buf = StepBuffer(rows=4, device=torch.device("cpu"), tensors=3)
    for k in range(3):
        buf.put(*_row(k, 3))
    buf.cell("loss").fill_(-7.0)  # log_loss: the last row's loss
    columns, layers = buf.take()
    assert buf.count == 0
    for i, name in enumerate(DEVICE_COLUMNS):
        want = [100.0 * k + i for k in range(3)]
        if name == "loss":
            want[-1] = -7.0
        np.testing.assert_array_equal(columns[name], np.float32(want), err_msg=name)
    for c in HOST_COLUMNS:
        np.testing.assert_array_equal(columns[c.name], [1, 2, 3])
        assert columns[c.name].dtype == np.dtype(c.dtype)
    for j, name in enumerate(LAYER_COLUMNS):
        want = [[1000.0 + 10 * j + t + k for t in range(3)] for k in range(3)]
        np.testing.assert_array_equal(layers[name], np.float32(want))


def test_without_breakdown_there_are_no_layer_columns() -> None:
    buf = StepBuffer(rows=2, device=torch.device("cpu"))
    buf.put(*_row(0, 0))
    columns, layers = buf.take()
    assert layers is None and set(columns) == set(schema.STEPS.names)

"""Live views of a recording: the recorder's host-side flush fed to TensorBoard, W&B or any logger.

A :class:`~gradscope.probes.Recorder` keeps every step's measurements in a device buffer and
copies them to the host once per flush (``flush_every`` steps, each logged epoch, and at close),
where they are appended to the trace. A *sink* receives exactly those host arrays, right after
the trace has been written, so a live view costs no extra device synchronisation and shows the
values the trace holds, bit for bit (float32 columns are passed as Python floats). The price is
latency: a view lags the training by up to ``flush_every`` steps.

Sinks attach with :func:`attach_sinks`. Each sink logs every ``every``-th step (by step number)
and skips NaN values, which in a trace mean "not defined at this step" (the ε columns of a plain
optimizer, the exact-ε probe between its steps).

Hook point: the recorder has no listener API of its own, so :func:`attach_sinks` wraps the
recorder's trace writer (``Recorder._writer``, a :class:`~gradscope.trace.writer.TraceWriter`)
in a forwarding proxy. The one line the recorder would need to make this official is, in
``Recorder.flush`` after ``self._writer.append_steps(columns, layers)``::

    for sink in self._sinks: sink.write_steps(columns)

(and the same with ``write_epoch(row)`` after ``append_epoch`` in ``Recorder.log_epoch``).
"""
from __future__ import annotations

import math
import os
from typing import Any, Iterable, Mapping, Protocol, Sequence

import numpy as np

from gradscope.errors import ConfigError, GradscopeError
from gradscope.trace import schema

#: Step columns a sink logs: the trace's float columns except wall-clock times (a sink that
#: wants them can pass ``columns=``), plus ``anchored``. Read from the schema, never listed twice.
SCALAR_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in schema.STEP_COLUMNS
    if (np.dtype(c.dtype).kind == "f" and c.name not in ("time_s", "step_time_s")) or c.name == "anchored"
)

#: Prefix of every tag a sink writes (``gradscope/eps_norm``, ``gradscope/epoch/val_loss``).
PREFIX = "gradscope"


class Sink(Protocol):
    """What :func:`attach_sinks` calls with the host arrays of each flush."""

    def write_steps(self, columns: Mapping[str, np.ndarray]) -> None:
        """Rows just appended to the trace's ``steps`` group (name → 1-D array, ``step`` included).

        The arrays are the recorder's reusable buffers: copy what you keep beyond the call."""

    def write_epoch(self, row: Mapping[str, Any]) -> None:
        """The row just appended to the trace's ``epochs`` group."""

    def close(self) -> None:
        """The recording ended (the trace is closed)."""


class ScalarSink:
    """Base of the scalar sinks: picks the rows and values to log; subclasses write them.

    Args:
        every: log the steps whose number is a multiple of ``every`` (1: every step).
        columns: step columns to log (default :data:`SCALAR_COLUMNS`).
        prefix: tag prefix (``prefix/eps_norm``; epoch values ``prefix/epoch/<name>``).
    """

    def __init__(self, every: int = 1, columns: Sequence[str] | None = None, prefix: str = PREFIX) -> None:
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ConfigError(f"every must be a positive integer, got {every!r}")
        names = tuple(columns) if columns is not None else SCALAR_COLUMNS
        unknown = sorted(set(names) - set(schema.STEP_NAMES))
        if unknown:
            raise ConfigError(f"not step columns of the trace schema: {unknown}")
        self.every = every
        self.columns = names
        self.prefix = prefix

    def tag(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def write_steps(self, columns: Mapping[str, np.ndarray]) -> None:
        steps = np.asarray(columns["step"])
        for row in np.flatnonzero(steps % self.every == 0):
            values = {self.tag(name): float(columns[name][row]) for name in self.columns if name in columns}
            values = {k: v for k, v in values.items() if not math.isnan(v)}
            if values:
                self.log(int(steps[row]), values)

    def write_epoch(self, row: Mapping[str, Any]) -> None:
        values = {}
        for name, value in row.items():
            if name in ("epoch", "step_count") or np.ndim(value) != 0:
                continue
            number = float(value)
            if not math.isnan(number):
                values[self.tag(f"epoch/{name}")] = number
        if values:
            values[self.tag("epoch/epoch")] = float(row["epoch"])
            self.log(int(row.get("step_count", 0)), values)

    def log(self, step: int, values: dict[str, float]) -> None:
        """Write ``values`` (tag → number) at global step ``step``."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class TensorBoardSink(ScalarSink):
    """Scalars into TensorBoard event files (``torch.utils.tensorboard.SummaryWriter``).

    Args:
        log_dir: the event-file folder (``tensorboard --logdir`` it); ignored when ``writer`` is given.
        writer: an existing ``SummaryWriter`` (left open on close; only flushed).
        every, columns, prefix: see :class:`ScalarSink`.
    """

    def __init__(self, log_dir: str | os.PathLike[str] | None = None, *, writer: Any = None, every: int = 1,
                 columns: Sequence[str] | None = None, prefix: str = PREFIX) -> None:
        super().__init__(every, columns, prefix)
        if writer is None:
            if log_dir is None:
                raise ConfigError("TensorBoardSink needs log_dir or writer")
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise GradscopeError("TensorBoard is not installed: pip install 'gradscope[tensorboard]'") from None
            writer = SummaryWriter(log_dir=str(log_dir))
            self._owned = True
        else:
            self._owned = False
        self.writer = writer

    def log(self, step: int, values: dict[str, float]) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, global_step=step)

    def close(self) -> None:
        self.writer.flush()
        if self._owned:
            self.writer.close()


class WandbSink(ScalarSink):
    """Scalars into a Weights & Biases run (``WANDB_MODE=offline`` works without network).

    The values are logged against their own step axis ``<prefix>/step`` (``define_metric``),
    so they never collide with the run's own ``wandb.log`` step counter: a flush arrives
    after later training steps have been logged, and W&B drops rows with a lower step.

    Args:
        run: a ``wandb`` run (default: the active ``wandb.run``).
        every, columns, prefix: see :class:`ScalarSink`.
    """

    def __init__(self, run: Any = None, *, every: int = 1, columns: Sequence[str] | None = None,
                 prefix: str = PREFIX) -> None:
        super().__init__(every, columns, prefix)
        if run is None:
            try:
                import wandb
            except ImportError:
                raise GradscopeError("wandb is not installed: pip install 'gradscope[wandb]'") from None
            run = wandb.run
            if run is None:
                raise GradscopeError("WandbSink needs a W&B run: call wandb.init(...) first or pass run=")
        self.run = run
        self.step_key = self.tag("step")
        run.define_metric(self.step_key)
        run.define_metric(self.tag("*"), step_metric=self.step_key)

    def log(self, step: int, values: dict[str, float]) -> None:
        self.run.log({**values, self.step_key: step})


class LoggerSink(ScalarSink):
    """Scalars into loggers with ``log_metrics(metrics, step)`` (Lightning's loggers, among others)."""

    def __init__(self, loggers: Iterable[Any], *, every: int = 1, columns: Sequence[str] | None = None,
                 prefix: str = PREFIX) -> None:
        super().__init__(every, columns, prefix)
        self.loggers = list(loggers)

    def log(self, step: int, values: dict[str, float]) -> None:
        for logger in self.loggers:
            logger.log_metrics(values, step=step)


def attach_sinks(recorder: Any, sinks: Iterable[Sink]) -> None:
    """Feed ``sinks`` from ``recorder``'s host-side flushes; they are closed with the recorder.

    Example::

        with gradscope.Recorder(opt, "trace.h5") as rec:
            attach_sinks(rec, [TensorBoardSink("tb/")])
            ...  # train; `tensorboard --logdir tb/` shows gradscope/eps_norm, ...
    """
    for sink in sinks:
        recorder.add_sink(sink)
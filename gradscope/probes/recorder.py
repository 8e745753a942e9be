"""Record the gradient dynamics of every optimizer step into a trace, without host syncs.

The :class:`Recorder` observes an optimizer through torch's step hooks. After each step it
measures ε_t and ω_t (notation of Wang et al., 2024) on the device with the pure functions of
:mod:`gradscope.probes.functional` and writes the results into one row of a preallocated
device buffer; values decided on the host (step, epoch, lr, ρ, pass counts, times) go into
host arrays. Every ``flush_every`` steps, at ``log_epoch`` and at close, the buffer comes to
the host in one copy and is appended to the HDF5 trace (:mod:`gradscope.trace`). Nothing in
a step reads a device value back, so recording never stalls a GPU.

Sources of ε_t and ω_t:

* a gradscope optimizer sets ``optimizer.last_step`` (:class:`~gradscope.optim.stepinfo.StepInfo`)
  with flat ε_t, ω_t, ‖ε̂_t‖ and the losses;
* any other ``torch.optim.Optimizer`` (e.g. Adam): ω_t is the gradient in ``p.grad`` when
  the step runs, the ε channels are NaN, and the loss is the first value the step's
  closure returns, or what :meth:`Recorder.log_loss` is given.

Both sources become one :class:`StepInfo` per step, so everything after that is the same code.
Which quantity goes into which trace column is the trace schema's business
(:mod:`gradscope.trace.schema`); the recorder measures a mapping from column name to tensor.

Persistent memory: two flat float32 vectors of the parameters' size (the previous ε and ω,
or, for a plain optimizer, the current and previous ω). A step of the exact-ε probe holds
one more gradient transiently. With ``layers=True``, an optimizer that hands a fresh ε or ω
tensor every step (rather than its own buffers) has the previous one kept a step longer.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
import warnings
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch

from gradscope.errors import GradscopeError
from gradscope.optim.flat import FlatBuffer, FlatLayout
from gradscope.optim.stepinfo import StepInfo
from gradscope.probes import functional as F
from gradscope.probes.buffer import DEVICE_COLUMNS, HOST_COLUMNS, LAYER_COLUMNS, StepBuffer
from gradscope.probes.exact import exact_gradients
from gradscope.probes.settings import RecorderSettings
from gradscope.trace.writer import TraceLayout, TraceWriter, VectorSpec

log = logging.getLogger(__name__)

__all__ = ["DEVICE_COLUMNS", "HOST_COLUMNS", "LAYER_COLUMNS", "Recorder"]


class Recorder:
    """Record an optimizer's steps into a gradscope trace (HDF5); use as a context manager.

    Example::

        opt = gradscope.optim.SAM(model.parameters(), rho=0.05, lr=1e-3)   # or torch.optim.Adam
        with gradscope.Recorder(opt, "trace.h5", config={"lr": 1e-3}) as rec:
            for x, y in loader:
                def closure():
                    loss = F.mse_loss(model(x), y); loss.backward(); return loss
                opt.step(closure)

    Args:
        optimizer: any ``torch.optim.Optimizer``; gradscope optimizers add ε channels.
        path: the trace file to write.
        config: the run configuration, stored as JSON in the trace.
        model: the model, for per-tensor names (``layers=True``) and for restoring its buffers
            after an exact-ε probe pass.
        named_parameters: ``(name, parameter)`` pairs naming the tensors when no model is given.
        overwrite: replace an existing trace (otherwise an existing file is an error).
        resume: append to an existing trace; ``resume_step`` drops stored rows with step ≥ it
            (default: continue after the last stored step).
        **settings: :class:`RecorderSettings` fields (``flush_every``, ``layers``,
            ``probe_exact_every``, ``vectors_every``, ``epoch_metrics``, …).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        path: str | os.PathLike[str],
        config: Mapping[str, Any] | None = None,
        *,
        model: torch.nn.Module | None = None,
        named_parameters: Iterable[tuple[str, torch.Tensor]] | None = None,
        overwrite: bool = False,
        resume: bool = False,
        resume_step: int | None = None,
        **settings: Any,
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise GradscopeError(f"Recorder needs a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self.settings = RecorderSettings(**settings)
        self.optimizer = optimizer
        self._params, self.device = _trainable_parameters(optimizer)
        self._layout = FlatLayout(self._params)
        self.numel = self._layout.numel
        self._buffers = list(model.buffers()) if model is not None else []
        names = _tensor_names(self._params, model, named_parameters) if self.settings.layers else None
        s = self.settings
        vector_spec = VectorSpec(self.numel, s.vectors_dtype, s.vectors_compression) if s.vectors_every else None
        self._writer = TraceWriter(
            path,
            optimizer=type(optimizer).__name__,
            config=config,
            device=_describe(self.device),
            layout=TraceLayout(layer_names=names, vectors=vector_spec, epoch_metrics=s.epoch_metrics),
            overwrite=overwrite,
            resume=resume,
            resume_step=resume_step,
            attributes={"recorder": json.dumps(s.as_dict())},
        )
        self.path = self._writer.path
        #: Index of the next step to record.
        self.step = self._writer.next_step
        self.epoch = 0
        self.batch_size = -1
        self._rows = StepBuffer(s.flush_every, self.device, tensors=len(self._params) if names is not None else 0)
        self._init_measurements()
        self._calls = 0
        self._closure_loss: Any = None
        self._exact: list[torch.Tensor | None] | None = None
        # time_s continues where a resumed trace stopped
        self._t0 = time.perf_counter() - (self._writer.last_step_value("time_s") or 0.0)
        self._t_step = self._t0
        self._vector_bytes = 0
        self._vector_warned = False
        self._sinks: list[Any] = []
        self._estimate_vectors()
        self._handles = [
            optimizer.register_step_pre_hook(self._pre_step),
            optimizer.register_step_post_hook(self._post_step),
        ]
        self._closed = False

    def _init_measurements(self) -> None:
        """State carried from step to step; the persistent vectors come at the first step that needs them."""
        self._nan = torch.full((), math.nan, device=self.device)
        self._nan_layers = [self._nan] * self._rows.tensors
        self._prev_eps: torch.Tensor | None = None
        self._prev_omega: FlatBuffer | None = None
        self._spare: FlatBuffer | None = None  # plain optimizers: the buffer ω_t is gathered into
        self._prev_omega_norm = self._nan
        self._has_prev_eps = self._has_prev_omega = False
        self._reports_steps: bool | None = None  # whether the optimizer sets last_step
        self._order: _Order | None = None  # where the optimizer's flat ε/ω put each parameter

    # ----------------------------------------------------------------- training-loop API
    def begin_epoch(self, epoch: int, batch_size: int | None = None) -> None:
        """Tell the recorder that the following steps belong to ``epoch`` (and their batch size)."""
        self.epoch = int(epoch)
        if batch_size is not None:
            self.set_batch_size(batch_size)

    def set_batch_size(self, batch_size: int) -> None:
        """Batch size recorded for the following steps (until changed)."""
        self.batch_size = int(batch_size)

    def log_loss(self, loss: torch.Tensor | float) -> None:
        """Record ``loss`` as the loss at θ_t of the step just taken (call it after ``optimizer.step()``).

        A tensor stays on the device (no sync). It replaces the loss the step itself reported.
        """
        if self._rows.count == 0:
            raise GradscopeError("log_loss() must follow the optimizer step it belongs to (no unflushed step)")
        cell = self._rows.cell("loss")
        if isinstance(loss, torch.Tensor):
            cell.copy_(loss.detach().reshape(()))
        else:
            cell.fill_(loss)

    def log_epoch(self, **metrics: Any) -> None:
        """Append one row to the trace's ``epochs`` group and flush all steps recorded so far.

        Standard names: ``epoch`` (default: the current epoch), ``train_loss``, ``val_loss``,
        ``graphs_per_s``, ``time_s``, ``attention_entropy``; further names such as
        ``val_auc``, ``test_rmse`` or ``attention_entropy_layer_head`` (an array) are stored
        too (declare them with ``epoch_metrics=`` to see them in a live trace). Values must
        be host numbers or arrays (the training loop reads them at the epoch's end anyway).
        """
        self._check_open()
        self.flush()
        row = {"epoch": self.epoch, **metrics, "step_count": self.step}
        self._writer.append_epoch(row)
        self._writer.flush()
        for sink in self._sinks:
            sink.write_epoch(row)

    def flush(self) -> None:
        """Copy the buffered rows to the host (one copy) and append them to the trace file."""
        self._check_open()
        if self._rows.count == 0:
            return
        columns, layers = self._rows.take()
        self._writer.append_steps(columns, layers)
        self._writer.flush()
        for sink in self._sinks:  # host arrays already: live views cost no device sync
            sink.write_steps(columns)

    def add_sink(self, sink: Any) -> None:
        """Hand every flushed step block and epoch row to ``sink`` too (``write_steps(columns)``,
        ``write_epoch(row)``, ``close()``; e.g. :class:`gradscope.integrations.sinks.TensorBoardSink`).

        Sinks see the host arrays the trace receives, after they are written, so a live view costs
        no extra device sync; they are closed with the recorder."""
        self._check_open()
        self._sinks.append(sink)

    def close(self) -> None:
        """Flush, detach from the optimizer and close the trace (idempotent)."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            for handle in self._handles:
                handle.remove()
            try:
                self._writer.close()
            finally:
                for sink in self._sinks:
                    sink.close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"next step {self.step}"
        return f"Recorder({str(self.path)!r}, {type(self.optimizer).__name__}, {state})"

    # ----------------------------------------------------------------------- step hooks
    def _pre_step(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        if self._rows.count == self._rows.capacity:
            self.flush()
        closure = args[1] if len(args) > 1 else kwargs.get("closure")
        every = self.settings.probe_exact_every
        self._exact = None
        if every is not None and self.step % every == 0:
            self._exact = exact_gradients(closure, self._params, self._buffers)
        self._calls, self._closure_loss = 0, None
        self._t_step = time.perf_counter()
        if closure is None:
            return None
        counted = self._counted(closure)
        if len(args) > 1:
            return (args[0], counted, *args[2:]), kwargs
        return args, {**kwargs, "closure": counted}

    def _counted(self, closure: Callable[[], Any]) -> Callable[[], Any]:
        def counted_closure() -> Any:
            out = closure()
            if self._calls == 0:
                self._closure_loss = out
            self._calls += 1
            return out

        return counted_closure

    def _post_step(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        t_end = time.perf_counter()
        with torch.no_grad():
            info = self._step_info(optimizer)
            measured = self._measure(info)
            layers = self._measure_layers(info) if self._rows.tensors else {}
            if self.settings.vectors_every and self.step % self.settings.vectors_every == 0:
                self._snapshot(info.eps, info.omega)
            self._roll(info.eps, info.omega)
        host = {
            "step": self.step,
            "epoch": self.epoch,
            "lr": _host_float(optimizer.param_groups[0].get("lr", math.nan)),
            "rho": info.rho,
            "anchored": int(info.anchored),
            "grad_evals": info.grad_evals,
            "probe_evals": 0 if self._exact is None else 1,
            "skipped": int(info.skipped),
            "batch_size": self.batch_size,
            "time_s": t_end - self._t0,
            "step_time_s": t_end - self._t_step,
        }
        self._rows.put(measured, layers, host)
        self._exact = None
        self._closure_loss = None
        self.step += 1

    # -------------------------------------------------------------------- measurements
    def _step_info(self, optimizer: torch.optim.Optimizer) -> StepInfo:
        """What the step used: the optimizer's own StepInfo, or one made from ``p.grad`` for a plain optimizer."""
        info = getattr(optimizer, "last_step", None)
        reports = isinstance(info, StepInfo)
        if self._reports_steps is None:
            self._reports_steps = reports
        elif reports != self._reports_steps:
            raise GradscopeError("the optimizer set last_step on some steps only; cannot record a mix of step kinds")
        if reports:
            if info.omega.shape[0] != self.numel:
                raise GradscopeError(
                    f"last_step.omega has {info.omega.shape[0]} elements but the optimizer's parameters {self.numel}"
                )
            return info
        if self._spare is None:
            self._spare = self._layout.buffer()
        F.gather_(self._spare.views, [p.grad for p in self._params])
        return StepInfo(
            omega=self._spare.data,
            eps=None,
            eps_hat_norm=None,
            loss=self._closure_loss_tensor(),
            loss_perturbed=self._nan,
            anchored=False,
            grad_evals=self._calls if self._calls else 1,
            rho=math.nan,
            params=self._params,
        )

    def _closure_loss_tensor(self) -> torch.Tensor:
        """The first value the step's closure returned, as a 0-d device tensor (NaN if none)."""
        loss = self._closure_loss
        if isinstance(loss, torch.Tensor):
            return loss.detach().reshape(())
        if isinstance(loss, (int, float)):  # a closure that returns a Python number
            return torch.full((), float(loss), device=self.device)
        return self._nan

    def _measure(self, info: StepInfo) -> dict[str, torch.Tensor]:
        """Every device step column of the schema for this step, by name (NaN where undefined)."""
        nan = self._nan
        eps, omega = info.eps, info.omega
        if self._prev_omega is None:
            self._prev_omega = self._layout.buffer()
        if eps is not None and self._prev_eps is None:
            self._prev_eps = torch.zeros(self.numel, device=self.device)
        prev_omega = self._prev_omega.data
        m = dict.fromkeys(DEVICE_COLUMNS, nan)
        m["loss"] = _scalar(info.loss, nan)
        m["loss_perturbed"] = _scalar(info.loss_perturbed, nan)
        m["eps_hat_norm"] = _scalar(info.eps_hat_norm, nan)
        if eps is not None:
            m["eps_norm"], m["omega_norm"] = F.norms([eps, omega])
            m["cos_eps_omega"] = F.cosine(eps, omega, m["eps_norm"], m["omega_norm"])
            if self._has_prev_omega:  # before ω_{t-1}'s buffer is overwritten by the change below
                m["cos_eps_prev_omega"] = F.cosine(eps, prev_omega, m["eps_norm"], self._prev_omega_norm)
            if self._has_prev_eps:
                m["eps_change"] = F.change_(self._prev_eps, eps)
        else:
            m["omega_norm"] = F.norm(omega)
        if self._has_prev_omega:
            m["omega_change"] = F.change_(prev_omega, omega)
        if self._exact is not None:
            exact = self._flat_exact(info.params)
            if info.grad_scale is not None:  # fp16: the probe's pass backpropagated the scaled loss
                exact = exact / info.grad_scale
            m["eps_exact_norm"] = F.norm(exact)
            if eps is not None:
                m["cos_eps_exact"] = F.cosine(eps, exact, m["eps_norm"], m["eps_exact_norm"])
        self._prev_omega_norm = m["omega_norm"]
        return m

    def _measure_layers(self, info: StepInfo) -> dict[str, list[torch.Tensor]]:
        """The per-tensor columns of the ``layers`` group, by name, in the recorder's parameter order."""
        order = self._order_of(info.params)
        eps = F.norms(order.views("eps", info.eps)) if info.eps is not None else self._nan_layers
        measured = {"eps_norm": eps, "omega_norm": F.norms(order.views("omega", info.omega))}
        return {name: measured[name] for name in LAYER_COLUMNS}

    def _order_of(self, params: list[torch.Tensor]) -> "_Order":
        """The layout of the optimizer's flat vectors relative to the recorder's parameters (computed once)."""
        if self._order is None or self._order.source is not params:
            self._order = _Order(params, self._params)
        return self._order

    def _roll(self, eps: torch.Tensor | None, omega: torch.Tensor) -> None:
        """Make this step's ε and ω the previous ones (a swap for plain optimizers, else a copy)."""
        assert self._prev_omega is not None
        if self._spare is not None and omega is self._spare.data:
            self._spare, self._prev_omega = self._prev_omega, self._spare
        else:
            self._prev_omega.data.copy_(omega)
        self._has_prev_omega = True
        if self._prev_eps is not None:
            if eps is not None:
                self._prev_eps.copy_(eps)
            self._has_prev_eps = eps is not None

    def _flat_exact(self, order: list[torch.Tensor]) -> torch.Tensor:
        assert self._exact is not None
        by_param = {id(p): g for p, g in zip(self._params, self._exact)}
        pieces = [by_param[id(p)] for p in order]
        return torch.cat(
            [
                torch.zeros(p.numel(), device=self.device) if g is None else g.reshape(-1).float()
                for p, g in zip(order, pieces)
            ]
        )

    # ------------------------------------------------------------------ vector snapshots
    def _snapshot(self, eps: torch.Tensor | None, omega: torch.Tensor) -> None:
        """Store full ε_t and ω_t (one device→host copy each: snapshot steps are the one exception)."""
        dtype = getattr(torch, self.settings.vectors_dtype)
        host = [None if v is None else torch.empty(self.numel, dtype=dtype).copy_(v) for v in (eps, omega)]
        self._writer.append_vectors(self.step, *(None if h is None else h.numpy() for h in host))
        self._vector_bytes += 2 * self.numel * host[1].element_size()  # type: ignore[union-attr]
        limit = self.settings.vectors_limit_bytes
        if self.settings.expected_steps is None and self._vector_bytes > limit and not self._vector_warned:
            self._vector_warned = True
            warnings.warn(
                f"vector snapshots passed {_mib(limit)} (uncompressed) in {self.path}; "
                "raise vectors_every or use vectors_dtype='float16'",
                stacklevel=2,
            )

    def _estimate_vectors(self) -> None:
        s = self.settings
        if not s.vectors_every:
            return
        per = 2 * self.numel * np.dtype(s.vectors_dtype).itemsize
        if s.expected_steps is None:
            log.info("vector snapshots: %s each (uncompressed), every %d steps", _mib(per), s.vectors_every)
            return
        total = math.ceil(s.expected_steps / s.vectors_every) * per
        message = (
            f"vector snapshots will take about {_mib(total)} uncompressed "
            f"({math.ceil(s.expected_steps / s.vectors_every)} × {_mib(per)}) in {self.path}"
        )
        log.info(message)
        if total > s.vectors_limit_bytes:
            warnings.warn(message + f", more than the limit of {_mib(s.vectors_limit_bytes)}", stacklevel=3)

    def _check_open(self) -> None:
        if self._closed:
            raise GradscopeError(f"the recorder of {self.path} is closed")


# ----------------------------------------------------------------------------- helpers
def _trainable_parameters(optimizer: torch.optim.Optimizer) -> tuple[list[torch.Tensor], torch.device]:
    """The trainable parameters in param-group order (the flat order of gradscope optimizers) and
    their one device; one-line errors when there are none or they are on several devices."""
    params = _unique(p for g in optimizer.param_groups for p in g["params"] if p.requires_grad)
    if not params:
        raise GradscopeError("the optimizer has no trainable parameters to record")
    devices = {p.device for p in params}
    if len(devices) > 1:
        raise GradscopeError(f"parameters on several devices ({sorted(map(str, devices))}) are not supported")
    return params, devices.pop()


def _unique(params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    seen: set[int] = set()
    out = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def _tensor_names(
    params: list[torch.Tensor],
    model: torch.nn.Module | None,
    named_parameters: Iterable[tuple[str, torch.Tensor]] | None,
) -> tuple[str, ...]:
    pairs = list(named_parameters) if named_parameters is not None else list(model.named_parameters()) if model else []
    by_id = {id(p): name for name, p in pairs}
    return tuple(by_id.get(id(p), f"param{i}") for i, p in enumerate(params))


class _Order:
    """Where an optimizer's flat vectors keep each of the recorder's parameters, computed once.

    Gradscope optimizers flatten their parameters in param-group order, as the recorder does;
    otherwise the pieces are reordered. Per-parameter views of a flat vector are made when the
    optimizer hands a vector it did not hand in the previous step, and reused while it hands
    the same buffers again: an optimizer's buffers live as long as it does, and GraphSAM
    alternates two ε buffers, so each channel (ε, ω) keeps the views of its :data:`RECENT`
    latest vectors.
    """

    #: Vectors per channel whose views are kept: this step's and the previous step's.
    RECENT = 2

    def __init__(self, source: list[torch.Tensor], target: list[torch.Tensor]) -> None:
        self.source = source
        self.sizes = [p.numel() for p in source]
        same = len(source) == len(target) and all(a is b for a, b in zip(source, target))
        position = {id(p): i for i, p in enumerate(source)}
        self.pick = None if same else [position[id(p)] for p in target]
        self._recent: dict[str, list[tuple[torch.Tensor, list[torch.Tensor]]]] = {}

    def views(self, channel: str, flat: torch.Tensor) -> list[torch.Tensor]:
        """Flat views of each parameter's piece of ``flat``, in the recorder's parameter order."""
        recent = self._recent.setdefault(channel, [])
        for tensor, views in recent:
            if tensor is flat:
                return views
        pieces = F.split_flat(flat, self.sizes)
        views = pieces if self.pick is None else [pieces[i] for i in self.pick]
        recent.insert(0, (flat, views))
        del recent[self.RECENT :]
        return views


def _scalar(value: torch.Tensor | None, nan: torch.Tensor) -> torch.Tensor:
    return nan if value is None else value.detach().reshape(())


def _host_float(value: Any) -> float:
    """A host number from an lr or similar; a tensor off the CPU gives NaN rather than a sync."""
    if isinstance(value, torch.Tensor):
        return float(value.detach().numpy()) if value.device.type == "cpu" else math.nan
    return float(value)


def _describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"

"""PyTorch Lightning: record any LightningModule's training into a gradscope trace.

Three lines::

    from gradscope.integrations.lightning import GradscopeCallback
    trainer = L.Trainer(max_epochs=10, callbacks=[GradscopeCallback("trace.h5")])
    trainer.fit(model)       # configure_optimizers returns gradscope.optim.GraphSAM(...) or any optimizer

:class:`GradscopeCallback` attaches a :class:`~gradscope.Recorder` to the trainer's optimizer
(rank 0 only), anchors and steps ρ at epoch boundaries as ``gradscope record`` does
(:class:`~gradscope.integrations.epochs.EpochHooks`), logs one row per epoch (ρ, lr, the
module's ``train_loss``/``val_loss`` and chosen metrics) and feeds the recorded scalars to the
trainer's loggers from the recorder's host-side flush (:mod:`gradscope.integrations.sinks`):
no extra device synchronisation, at the price of a lag of up to ``flush_every`` steps.

A sharpness-aware optimizer works with Lightning's automatic optimization as it is: Lightning
hands ``optimizer.step`` a closure (training_step + backward), which the method calls as often
as it needs. :class:`~gradscope.integrations.lightning_closure.SharpnessAwareMixin` is the
manual-optimization variant (one training_step per optimizer step, the loss at θ_t logged).

Refused, because they would silently break the measurement:

* ``accumulate_grad_batches > 1`` with a sharpness-aware optimizer: Lightning accumulates the
  gradients of several batches behind the optimizer, which zeroes them before every pass;
* ``precision="16-mixed"``: the GradScaler path steps without a closure and with scaled
  gradients (``bf16-mixed`` and ``32-true`` work).
"""
from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import lightning.pytorch as pl
import torch

from gradscope._version import __version__
from gradscope.errors import GradscopeError
from gradscope.integrations.epochs import PAPER_RHO_SCHEDULE, EpochHooks
from gradscope.integrations.lightning_closure import SharpnessAwareMixin
from gradscope.integrations.sinks import LoggerSink, Sink, attach_sinks
from gradscope.optim import SharpnessAware, StepRhoConfig
from gradscope.probes import Recorder, RecorderSettings

__all__ = ["GradscopeCallback", "SharpnessAwareMixin", "check_trainer"]

#: Epoch datasets the callback always writes besides the standard ``train_loss``/``val_loss``.
EPOCH_EXTRAS = ("rho", "lr", "steps", "grad_evals")
#: Trace quantities the callback does not measure, with the reason stored in the trace.
NOT_RECORDED = {"attention_entropy": "not measured: the Lightning callback has no attention capture"}
#: Lightning precisions the callback refuses, with the reason.
REFUSED_PRECISIONS = {
    "16-mixed": "precision='16-mixed' (fp16 with a GradScaler) is not supported by gradscope yet: the scaler "
                "steps without a closure and with scaled gradients; use precision='bf16-mixed' or '32-true'",
}


def check_trainer(trainer: pl.Trainer, optimizer: torch.optim.Optimizer) -> None:
    """Raise :class:`GradscopeError` for a set-up that would silently break the measurement."""
    precision = str(trainer.precision)
    if precision in REFUSED_PRECISIONS or getattr(trainer.precision_plugin, "scaler", None) is not None:
        raise GradscopeError(REFUSED_PRECISIONS.get(precision, REFUSED_PRECISIONS["16-mixed"]))
    if trainer.accumulate_grad_batches > 1 and isinstance(optimizer, SharpnessAware):
        raise GradscopeError(
            f"accumulate_grad_batches={trainer.accumulate_grad_batches} with {type(optimizer).__name__}: Lightning would "
            "sum gradients of several batches behind the optimizer, which zeroes them before every pass; "
            "use a larger batch_size instead")


class GradscopeCallback(pl.Callback):
    """Record the training of a LightningModule into a gradscope trace (schema of docs/trace-format.md).

    Args:
        path: the trace file (``.h5``); its folder is created.
        layers: also record per-tensor ‖ε‖, ‖ω‖ (group ``layers``).
        probe_exact_every: every M steps an extra forward-backward pass gives the exact
            ∇L_B(θ_t) for ``cos_eps_exact`` (not under DDP: it would desynchronise the ranks).
        log_every_n_steps: log every n-th step's scalars to the trainer's loggers (None: the
            trainer's own ``log_every_n_steps``; 0: not at all).
        flush_every: steps between device→host copies (the trace's and the loggers' latency).
        anchor_every: GraphSAM-K's K: anchor every K epochs (the methods that anchor per epoch:
            GraphSAM, SAM-One per epoch; the paper's SAM-One anchors once, at the first step).
        method: the optimizer's registry name where its class is shared (``"sam-one-epoch"`` for a
            ``SAMOne`` re-anchored every epoch; default: the class's first method, ``"sam-one"``).
        rho_schedule: the ρ schedule stepped at every epoch end (default: the paper's γ = 0.5,
            λ = 1, as ``gradscope record``); None keeps ρ constant.
        epoch_metrics: names of the trainer's ``callback_metrics`` to store per epoch besides
            ``train_loss`` and ``val_loss`` (``"/"`` becomes ``"_"`` in the trace).
        sinks: further live views (e.g. :class:`~gradscope.integrations.sinks.TensorBoardSink`).
        config: your run configuration, stored in the trace beside the callback's own.
        not_recorded: trace columns that stay empty, each with the reason, stored as
            ``config["not_recorded"]``; their all-NaN epoch datasets are dropped at the end, so
            no column holds NaN silently (default: attention entropy, not measured here).
        overwrite: replace an existing trace.
        **settings: further :class:`~gradscope.probes.RecorderSettings` (``vectors_every``, ...).
    """

    def __init__(self, path: str | os.PathLike[str], *, layers: bool = False, probe_exact_every: int | None = None,
                 log_every_n_steps: int | None = None, flush_every: int = RecorderSettings.flush_every,
                 anchor_every: int = 1, method: str | None = None, rho_schedule: StepRhoConfig | None = PAPER_RHO_SCHEDULE, epoch_metrics: Sequence[str] = (),
                 sinks: Sequence[Sink] = (), config: Mapping[str, Any] | None = None,
                 not_recorded: Mapping[str, str] = NOT_RECORDED, overwrite: bool = False, **settings: Any) -> None:
        self.path = Path(path)
        self.settings = dict(settings, layers=layers, probe_exact_every=probe_exact_every, flush_every=flush_every)
        self.log_every_n_steps = log_every_n_steps
        self.anchor_every = anchor_every
        self.method = method
        self.rho_schedule = rho_schedule
        self.epoch_metrics = {_trace_name(m): m for m in epoch_metrics}
        self.sinks = list(sinks)
        self.config = dict(config or {})
        self.not_recorded = dict(not_recorded)
        self.overwrite = overwrite
        self.recorder: Recorder | None = None
        self.hooks: EpochHooks | None = None
        self._restored: dict[str, Any] | None = None
        self._epoch: dict[str, Any] = {}

    # ------------------------------------------------------------------------- set-up
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if len(trainer.optimizers) != 1:
            raise GradscopeError(f"GradscopeCallback records one optimizer; the module configured {len(trainer.optimizers)}")
        optimizer = trainer.optimizers[0]
        check_trainer(trainer, optimizer)
        if trainer.world_size > 1 and self.settings["probe_exact_every"]:
            raise GradscopeError("probe_exact_every is not supported with several processes (it would desynchronise ranks)")
        self.hooks = EpochHooks(optimizer, method=self.method, anchor_every=self.anchor_every,
                                rho_schedule=self.rho_schedule)
        if self._restored is not None:
            self.hooks.load_state_dict(self._restored)
        expected_steps = _expected_steps(trainer)  # on every rank: it may load the data (collectives)
        if not trainer.is_global_zero:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.recorder = Recorder(
            optimizer, self.path, config=self._run_config(trainer, optimizer), model=pl_module,
            overwrite=self.overwrite, expected_steps=expected_steps,
            epoch_metrics=(*EPOCH_EXTRAS, *self.epoch_metrics), **self.settings)
        sinks = list(self.sinks)
        every = trainer.log_every_n_steps if self.log_every_n_steps is None else self.log_every_n_steps
        if every and trainer.loggers:
            sinks.append(LoggerSink(trainer.loggers, every=every))
        if sinks:
            attach_sinks(self.recorder, sinks)

    def _run_config(self, trainer: pl.Trainer, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        assert self.hooks is not None
        schedule = self.hooks.rho_schedule
        return {
            **self.config,
            "integration": "lightning",
            "lightning_version": pl.__version__,
            "gradscope_version": __version__,
            "optimizer": self.hooks.name or type(optimizer).__name__,
            "rho": self.hooks.rho,
            "anchor_every": self.anchor_every,
            "rho_schedule": schedule.config.__dict__ if schedule is not None else None,
            "precision": str(trainer.precision),
            "max_epochs": trainer.max_epochs,
            "world_size": trainer.world_size,
            "not_recorded": self.not_recorded,
        }

    # ------------------------------------------------------------------------- epochs
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert self.hooks is not None
        epoch = trainer.current_epoch
        self.hooks.start(epoch)
        self._epoch = {"rho": self.hooks.rho, "t0": time.perf_counter(), "seen": 0, "grad_evals": 0}
        if self.recorder is not None:
            self.recorder.begin_epoch(epoch)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        size = _batch_size(pl_module, batch)
        size = size * trainer.world_size if size > 0 else -1  # the global batch, as gradscope record stores
        self._epoch["seen"] += max(size, 0)
        if self.recorder is not None:
            self.recorder.set_batch_size(size)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        info = getattr(trainer.optimizers[0], "last_step", None)
        self._epoch["grad_evals"] += info.grad_evals if info is not None else 1

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert self.hooks is not None
        if self.recorder is not None:
            self.recorder.log_epoch(**self._epoch_row(trainer))
        self.hooks.end()

    def _epoch_row(self, trainer: pl.Trainer) -> dict[str, Any]:
        """The epoch's trace row: host values only (Lightning has synced its metrics by now)."""
        elapsed = time.perf_counter() - self._epoch["t0"]
        metrics = trainer.callback_metrics
        row: dict[str, Any] = {
            "rho": self._epoch["rho"],
            "lr": float(trainer.optimizers[0].param_groups[0]["lr"]),
            "steps": self.recorder.step if self.recorder is not None else -1,
            "grad_evals": self._epoch["grad_evals"],
            "time_s": elapsed,
            "graphs_per_s": self._epoch["seen"] / elapsed if elapsed > 0 and self._epoch["seen"] else float("nan"),
        }
        for name, keys in (("train_loss", ("train_loss_epoch", "train_loss")), ("val_loss", ("val_loss",))):
            value = next((metrics[k] for k in keys if k in metrics), None)
            if value is not None:
                row[name] = _host(value)
        for name, key in self.epoch_metrics.items():
            if key in metrics:
                row[name] = _host(metrics[key])
        return row

    # ------------------------------------------------------------------------- end
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._close()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._close()

    def _close(self) -> None:
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.close()
            _drop_empty_epoch_columns(recorder.path, self.not_recorded)

    def state_dict(self) -> dict[str, Any]:
        return self.hooks.state_dict() if self.hooks is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = dict(state_dict)


def _drop_empty_epoch_columns(path: Path, names: Mapping[str, str]) -> None:
    """Remove the epoch datasets in ``names`` that hold only NaN (the reason stays in the config)."""
    import h5py
    import numpy as np

    with h5py.File(path, "r+") as f:
        epochs = f.get("epochs")
        for name in names:
            if epochs is not None and name in epochs and np.isnan(epochs[name][()]).all():
                del epochs[name]


def _trace_name(key: str) -> str:
    return key.replace("/", "_")


def _host(value: Any) -> float:
    return float(value.detach().cpu()) if isinstance(value, torch.Tensor) else float(value)


def _batch_size(pl_module: pl.LightningModule, batch: Any) -> int:
    """The module's ``sharpness_aware_batch_size(batch)`` when it gives one, else Lightning's guess
    (the first tensor's first dimension); -1 when neither knows."""
    from lightning.pytorch.utilities.data import extract_batch_size

    own = getattr(pl_module, "sharpness_aware_batch_size", None)
    size = own(batch) if own is not None else None
    if size is not None:
        return int(size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "ambiguous collection": the guess is all we can do
            return int(extract_batch_size(batch))
    except Exception:  # noqa: BLE001 - an unusual batch type only loses the batch_size column
        return -1


def _expected_steps(trainer: pl.Trainer) -> int | None:
    try:
        steps = int(trainer.estimated_stepping_batches)
    except Exception:  # noqa: BLE001 - an infinite or unsized loader has no estimate
        return None
    return steps if 0 < steps < 2**31 else None

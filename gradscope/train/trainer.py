"""The instrumented training loop behind `gradscope record`, as a small :class:`Trainer`.

A :class:`Trainer` is one run. Constructing it builds the parts from the configuration — device,
torchrun group, data and split, model, the optimizer and its schedules as the method's registry
entry declares them, the :class:`~gradscope.probes.Recorder` — or restores them from the run's
last checkpoint; :meth:`Trainer.run` trains the remaining epochs. Each epoch:

1. the method's epoch-start hook (``Method.start_epoch``: ``anchor()`` every K epochs, once per
   run, or the released GraphSAM's ``epoch_step``) — the loop never names an optimizer;
2. the steps, each a closure (forward + backward under autocast, the loss averaged over ranks)
   handed to ``optimizer.step``; the LR schedule steps after every optimizer step;
3. evaluation of validation (with attention entropy) and test, the ρ schedule's step, the trace's
   epoch row, ``checkpoints/last.pt`` (and ``best.pt`` on a better validation metric).

Reproducibility: the batch order of epoch e is a permutation drawn from a generator seeded with
(seed, e), and checkpoints carry every RNG state and the position inside the epoch
(:class:`~gradscope.train.state.RunState`), so a resumed run continues exactly as the
uninterrupted run would (on CPU). Ctrl-C finishes the current step, flushes the trace and
writes a mid-epoch checkpoint.
"""
from __future__ import annotations

import math
import random
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from gradscope._version import __version__
from gradscope.chem.batch import bucket_order
from gradscope.models.packing import ATOM_INDEX
from gradscope.errors import GradscopeError
from gradscope.models.registry import model_from_config_dict
from gradscope.optim.registry import Method, get_method
from gradscope.probes import Recorder
from gradscope.train import distributed as D
from gradscope.train.build import Data, build_data, build_model_for, build_optimizer, cpu_threads, resolve_device
from gradscope.train.checkpoint import Checkpoint, rng_state, set_rng_state
from gradscope.train.classes import BestRule, announce, best_epoch_rule, check_classes, split_warnings
from gradscope.train.config import RecordConfig, recorder_settings
from gradscope.train.evaluate import Evaluation, evaluate
from gradscope.train.objective import masked_loss
from gradscope.train.progress import EpochProgress, summary_table
from gradscope.train.rundir import check_out_dir, prepare_out_dir, write_json_atomic, write_skipped
from gradscope.train.schedules import build_lr_scheduler
from gradscope.train.state import EpochSums, RunState


@dataclass
class RunResult:
    """What a finished (or interrupted) run wrote and achieved."""

    out: Path
    config: RecordConfig
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    interrupted: bool = False
    steps: int = 0
    metric: str = ""
    is_main: bool = True  # False on the other ranks of a torchrun job (they write and print nothing)
    best_by: str = ""  # what chose the best epoch, e.g. "validation roc_auc" (gradscope.train.classes)

    def summary(self) -> str:
        """The table of every finished epoch (best validation epoch marked), for the end of a run."""
        if not self.history:
            return "(no finished epoch)"
        return summary_table(self.history, self.metric, self.best_epoch, best_by=self.best_by or None)

    @property
    def trace_path(self) -> Path:
        return self.out / "trace.h5"


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The training-set order of ``epoch``: a permutation fixed by (seed, epoch)."""
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(n, generator=gen)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


class StopFlag:
    """First Ctrl-C asks the loop to stop after the current step; a second one aborts."""

    def __init__(self) -> None:
        self.requested = False

    @contextmanager
    def installed(self) -> Iterator["StopFlag"]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):  # noqa: ANN001
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            print("\ngradscope: stopping after this step (Ctrl-C again to abort) ...", file=sys.stderr)

        signal.signal(signal.SIGINT, handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


class Trainer:
    """One recorded training run (see the module docstring).

    Args are those of :func:`gradscope.train.loop.record`. With ``resume`` the run continues from
    ``out/checkpoints/last.pt`` with its stored configuration (``config.epochs`` may extend it).
    """

    def __init__(self, config: RecordConfig, out: str | Path, *, resume: bool = False, overwrite: bool = False,
                 quiet: bool = False, progress: bool | None = None, log: Callable[[str], None] | None = None,
                 stop_when: Callable[[int], bool] | None = None) -> None:
        self.out = Path(out)
        self.quiet, self.stop_when = quiet, stop_when
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self._bars = (not quiet) and (sys.stderr.isatty() if progress is None else progress)
        # loading data shows progress as bars on a terminal and as log lines elsewhere (gradscope.progress)
        self._data_progress = (not quiet) and progress is not False
        check_out_dir(self.out, resume=resume, overwrite=overwrite)
        ckpt = Checkpoint.read(self.out / "checkpoints" / "last.pt") if resume else None
        if ckpt is not None:
            config = ckpt.config.replace(epochs=max(config.epochs, ckpt.config.epochs))
        self.config = config
        self.method: Method = get_method(config.optimizer)
        self.device = self._start_device()
        try:
            self._build(ckpt, overwrite=overwrite)
            self.state = RunState()
            if ckpt is not None:
                self._restore(ckpt)
            self.recorder = self._open_recorder(resume=resume, overwrite=overwrite)
        except BaseException:
            D.shutdown(self.dist)
            raise
        self._stop = StopFlag()
        self._vote = D.StopVote(self.dist)
        self.interrupted = False

    # -- construction ---------------------------------------------------------------------------
    def _start_device(self) -> torch.device:
        """The device, the CPU thread count and the torchrun group."""
        config = self.config
        device = resolve_device(config.device)
        threads = cpu_threads(config, device)
        if threads is not None:
            torch.set_num_threads(threads)
        self.dist = D.init_distributed(device.type)
        if self.dist.enabled and device.type == "cuda":
            device = torch.device("cuda", self.dist.local_rank)
        if self.dist.enabled and config.probe_exact_every:
            D.shutdown(self.dist)
            raise GradscopeError("--probe-exact-every is not supported under torchrun (it would desynchronise ranks)")
        return device

    def _build(self, ckpt: Checkpoint | None, *, overwrite: bool) -> None:
        """Data, model, optimizer and schedules, in the order that fixes the RNG draws of a fresh run."""
        config, dist = self.config, self.dist
        _seed_everything(config.seed)
        self.data: Data = build_data(config, progress=self._data_progress and dist.is_main,
                                     split=ckpt.split_indices() if ckpt else None)
        self.best_rule = self._classes()
        if dist.is_main and ckpt is None:
            prepare_out_dir(self.out, overwrite=overwrite)
            listed = write_skipped(self.out, self.data.dataset.skipped)
            if listed is not None:
                self._say(f"the {len(self.data.dataset.skipped)} skipped rows (row, SMILES, reason) are in {listed}")
        D.barrier(dist)
        self._say(self.data.dataset.summary())
        # a resumed run rebuilds the model its checkpoint describes (model names may have changed meaning)
        model = model_from_config_dict(ckpt.model_config) if ckpt else build_model_for(config, self.data.dataset)
        self.model = model.to(self.device)
        if getattr(getattr(model, "config", None), "pack_atoms", False):  # the real atoms' positions, collated on the host
            self.data.dataset.batch_fields = (*self.data.dataset.batch_fields, ATOM_INDEX)
        self.steps_per_epoch = self._steps_per_epoch()
        self.optimizer, self.rho_schedule = build_optimizer(config, self.model, self.steps_per_epoch)
        self.lr_schedule = build_lr_scheduler(self.optimizer, config.lr_schedule,
                                              warmup_steps=int(config.warmup_epochs * self.steps_per_epoch))
        self.train_model: torch.nn.Module = self.model
        if dist.enabled:
            self.train_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision)
        # fp16: loss scaling; every pass is unscaled inside the optimizer's step (gradscope.optim.amp)
        self.scaler = torch.amp.GradScaler(self.device.type) if config.precision == "fp16" else None

    def _classes(self) -> BestRule:
        """Refuse a classification task with one class in the whole dataset, announce one with one
        class in the val/test split, and say what picks the best epoch (gradscope.train.classes)."""
        data = self.data
        labels, names = data.dataset.labels, data.dataset.target_names
        if data.task == "classification":
            check_classes(labels, names, data.dataset.name)
            if self.dist.is_main:
                announce(split_warnings(labels, data.split, names, data.metric))
        return best_epoch_rule(labels, data.split, data.task, data.metric)

    def _steps_per_epoch(self) -> int:
        config, dist = self.config, self.dist
        n_train = len(self.data.split["train"])
        steps = math.ceil(n_train / config.batch_size)
        if dist.enabled and n_train - (steps - 1) * config.batch_size < dist.world_size:
            # the epoch's short last batch would leave a rank without molecules: drop it
            steps -= 1
            self._say(f"torchrun: the last batch of each epoch ({n_train % config.batch_size} molecules) is smaller "
                      f"than the {dist.world_size} ranks and is skipped")
        if steps == 0:
            raise GradscopeError(f"the training split ({n_train} molecules) is too small for {dist.world_size} ranks")
        return steps

    def _restore(self, ckpt: Checkpoint) -> None:
        """Continue from a checkpoint: weights, optimizer and schedules, position, RNG states."""
        self.model.load_state_dict(ckpt.model_state)
        self.optimizer.load_state_dict(ckpt.optimizer_state)
        if self.rho_schedule is not None and ckpt.rho_schedule_state is not None:
            self.rho_schedule.load_state_dict(ckpt.rho_schedule_state)
        if self.lr_schedule is not None and ckpt.lr_schedule_state is not None:
            self.lr_schedule.load_state_dict(ckpt.lr_schedule_state)
        if self.scaler is not None and ckpt.scaler_state:
            self.scaler.load_state_dict(ckpt.scaler_state)
        self.state = ckpt.state
        set_rng_state(ckpt.rng)
        if self.state.epoch >= self.config.epochs:
            self._say(f"{self.out} already finished its {self.config.epochs} epochs; pass --epochs N "
                      f"(> {self.config.epochs}) to extend it")

    def _open_recorder(self, *, resume: bool, overwrite: bool) -> Recorder | None:
        """config.json and the trace's Recorder (rank 0 only)."""
        if not self.dist.is_main:
            return None
        config = self.config
        write_json_atomic(self.out / "config.json", config.to_json() + "\n")
        recorder = Recorder(
            self.optimizer, self.out / "trace.h5", config=config.to_dict(), model=self.model,
            overwrite=overwrite and not resume, resume=resume, resume_step=self.state.step if resume else None,
            expected_steps=self.steps_per_epoch * config.epochs, epoch_metrics=self._epoch_metrics(),
            **recorder_settings(config),
        )
        if config.tensorboard:  # a live view fed by the recorder's host-side flushes (no device sync)
            from gradscope.integrations.sinks import TensorBoardSink

            recorder.add_sink(TensorBoardSink(config.tensorboard))
        return recorder

    def _epoch_metrics(self) -> dict[str, tuple[int, ...]]:
        """The epoch datasets created up front (so SWMR readers see them from the start)."""
        m = self.data.metric
        names = ["train_loss", "val_loss", f"val_{m}", "test_loss", f"test_{m}", "graphs_per_s", "time_s",
                 "attention_entropy", "rho", "lr", "grad_evals", "steps"]
        shapes: dict[str, tuple[int, ...]] = {n: () for n in names}
        shapes["attention_entropy_layer_head"] = (self.model.config.n_layers, self.model.config.n_heads)
        return shapes

    # -- training -------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Train the remaining epochs; the trace and the process group are closed however it ends."""
        try:
            with self._stop.installed():
                for epoch in range(self.state.epoch, self.config.epochs):
                    if not self._train_epoch(epoch) or not self._end_epoch(epoch):
                        break
        finally:
            if self.recorder is not None:
                self.recorder.close()
            D.shutdown(self.dist)
        return RunResult(self.out, self.config, self.state.history, self.state.best.epoch, self.interrupted,
                         self.state.step, self.data.metric, self.dist.is_main, self.best_rule.label)

    def _train_epoch(self, epoch: int) -> bool:
        """The steps of ``epoch`` (from the checkpoint's batch on a resume); False when stopped mid-epoch."""
        state, config = self.state, self.config
        first = state.batch if epoch == state.epoch else 0
        if first == 0:
            state.sums = EpochSums()
            self.method.start_epoch(self.optimizer, config.optimizer_settings, epoch)
        if self.recorder is not None:
            self.recorder.begin_epoch(epoch, config.batch_size)
        train_idx = torch.from_numpy(self.data.split["train"])
        order = train_idx[self._epoch_positions(epoch)]
        self.model.train()
        self._bar = EpochProgress(epoch, config.epochs, self.steps_per_epoch, first,
                                  enabled=self._bars and self.dist.is_main)
        # float64 and seeded with the epoch's earlier part, so a resumed epoch sums its losses in
        # exactly the order of an uninterrupted one (bit-equal train_loss)
        loss_sum = torch.tensor(state.sums.loss_sum, dtype=torch.float64, device=self.device)
        t0 = time.perf_counter()
        batch_no = first
        for batch_no in range(first, self.steps_per_epoch):
            idx = order[batch_no * config.batch_size:(batch_no + 1) * config.batch_size]
            loss_sum = loss_sum + self._step(idx).detach().double() * len(idx)
            self._bar.update()
            if self._stop_requested():
                batch_no += 1
                break
        else:
            batch_no = self.steps_per_epoch
        state.sums.loss_sum = float(loss_sum.cpu())  # one sync per epoch: the epoch's training loss
        state.sums.seen += sum(len(order[b * config.batch_size:(b + 1) * config.batch_size])
                               for b in range(first, batch_no))
        state.sums.elapsed += time.perf_counter() - t0
        self._bar.close()
        if batch_no < self.steps_per_epoch:  # stopped: a checkpoint of the middle of the epoch
            state.epoch, state.batch = epoch, batch_no
            self._save("last")
            self.interrupted = True
            return False
        return True

    def _epoch_positions(self, epoch: int) -> torch.Tensor:
        """Positions in the training split in the order of ``epoch`` (consecutive batch_size blocks
        are the steps' batches): the seeded permutation, size-bucketed with ``--bucket-batches``."""
        config, n = self.config, len(self.data.split["train"])
        perm = epoch_order(config.seed, epoch, n)
        if config.bucket_batches is None:
            return perm
        sizes = self.data.dataset.n_atoms[self.data.split["train"]]
        return torch.from_numpy(bucket_order(perm.numpy(), sizes, config.batch_size, config.bucket_batches,
                                             seed=config.seed, epoch=epoch))

    def _step(self, idx: torch.Tensor) -> torch.Tensor:
        """One optimizer step on the molecules ``idx`` (this rank's share); returns its loss."""
        data = self.data
        batch = data.dataset.batch(D.shard(idx, self.dist).numpy(), standardizer=data.standardizer)
        batch = batch.to(self.device, non_blocking=True)
        if self.recorder is not None:
            self.recorder.set_batch_size(len(idx))  # the global batch; the last one may be short
        if self.method.plain:  # a torch optimizer: it calls the closure once and needs zeroed gradients
            self.optimizer.zero_grad(set_to_none=False)
        loss = self._optimizer_step(self._closure(batch))
        if self.lr_schedule is not None:
            self.lr_schedule.step()
        self.state.sums.grad_evals += 1 if self.method.plain else self.optimizer.last_step.grad_evals
        self.state.step += 1
        return loss

    def _optimizer_step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        """``optimizer.step(closure)``; under fp16 the GradScaler's call for the optimizer's kind.

        A sharpness-aware method takes the scaler into its step (each pass unscaled, a step with
        inf/NaN skipped); a torch optimizer follows torch's recipe (backward, ``scaler.step``).
        """
        if self.scaler is None:
            return self.optimizer.step(closure)
        if self.method.plain:  # a step GradScaler skips (inf/NaN) never reaches the optimizer: no trace row
            loss = closure()
            rows = self.recorder.step if self.recorder is not None else None
            self.scaler.step(self.optimizer)
            if self.recorder is not None and self.recorder.step != rows:
                self.recorder.log_loss(loss)
        else:
            loss = self.optimizer.step(closure, scaler=self.scaler)
        self.scaler.update()
        return loss

    def _closure(self, batch: Any) -> Callable[[], torch.Tensor]:
        """Forward + backward on ``batch`` (under autocast for bf16/fp16, the loss scaled for fp16);
        returns the unscaled loss averaged over ranks."""
        autocast, scaler = self.autocast_dtype, self.scaler

        def closure() -> torch.Tensor:
            with torch.autocast(self.device.type, dtype=autocast, enabled=autocast is not None):
                loss = masked_loss(self.train_model(batch), batch, self.data.task)
            (scaler.scale(loss) if scaler is not None else loss).backward()
            return D.mean_across(loss.detach(), self.dist)

        return closure

    def _stop_requested(self) -> bool:
        """Ctrl-C or ``stop_when``; under torchrun every rank stops after the same step (a vote)."""
        if self.stop_when is not None and self.stop_when(self.state.step):
            self._stop.requested = True
        if self.dist.enabled:  # every rank stops after the same step, or collectives would hang
            self._stop.requested = self._vote.any(self._stop.requested)
        return self._stop.requested

    def _end_epoch(self, epoch: int) -> bool:
        """Evaluate, step ρ, write the trace row and checkpoints; False when the run stops here."""
        state, config, metric = self.state, self.config, self.data.metric
        row = self._epoch_row(epoch)
        state.history.append(row)
        improved = state.best.update(epoch, row[self.best_rule.column], self.best_rule.higher_is_better)
        if self.rho_schedule is not None:
            self.rho_schedule.step()
        if self.recorder is not None:
            self.recorder.log_epoch(**{k: v for k, v in row.items() if v is not None})
            self.recorder.flush()
        state.epoch, state.batch = epoch + 1, 0
        self._save("last")
        if improved:
            self._save("best")
        self._say(self._bar.describe(row, metric))
        D.barrier(self.dist)
        if config.early_stopping is not None and state.best.bad_epochs >= config.early_stopping:
            self._say(f"early stopping: no better {self.best_rule.label} for {config.early_stopping} epochs")
            return False
        if self._stop.requested:  # (after the last epoch the run is simply complete)
            self.interrupted = epoch + 1 < config.epochs
            return False
        return True

    def _epoch_row(self, epoch: int) -> dict[str, Any]:
        """Evaluate after an epoch; the row goes to the trace, the checkpoint and the log."""
        data, sums = self.data, self.state.sums
        common = dict(task=data.task, metric=data.metric, device=self.device, standardizer=data.standardizer,
                      autocast_dtype=self.autocast_dtype)
        val: Evaluation = evaluate(self.model, data.eval_batches("val"), entropy=True, **common)
        test: Evaluation = evaluate(self.model, data.eval_batches("test"), **common)
        rho = getattr(self.optimizer, "rho", None)
        if self.rho_schedule is not None:
            rho = self.rho_schedule.get_last_rho()
        return {
            "epoch": epoch,
            "train_loss": sums.loss_sum / max(sums.seen, 1),
            "val_loss": val.loss, f"val_{data.metric}": val.metric,
            "test_loss": test.loss, f"test_{data.metric}": test.metric,
            "graphs_per_s": sums.seen / sums.elapsed if sums.elapsed > 0 else float("nan"),
            "time_s": sums.elapsed,
            "attention_entropy": val.entropy,
            "attention_entropy_layer_head": (val.entropy_layer_head.tolist()
                                             if val.entropy_layer_head is not None else None),
            "rho": float(rho) if rho is not None else float("nan"),
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "steps": self.state.step,
            "grad_evals": sums.grad_evals,
        }

    # -- output ---------------------------------------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        """The run as it stands, as a checkpoint (weights, optimizer, schedules, position, RNG)."""
        data = self.data
        return Checkpoint(
            config=self.config, model_config=self.model.config.to_dict(), model_state=self.model.state_dict(),
            dataset=data.dataset.spec.to_dict(), dataset_sha256=data.dataset.source_sha256,
            split={k: torch.from_numpy(np.asarray(v, dtype=np.int64)) for k, v in data.split.items()},
            standardizer=data.standardizer.to_dict() if data.standardizer is not None else None,
            optimizer_state=self.optimizer.state_dict(),
            rho_schedule_state=self.rho_schedule.state_dict() if self.rho_schedule is not None else None,
            lr_schedule_state=self.lr_schedule.state_dict() if self.lr_schedule is not None else None,
            scaler_state=self.scaler.state_dict() if self.scaler is not None else None,
            state=self.state, rng=rng_state(), gradscope_version=__version__, torch_version=str(torch.__version__),
        )

    def _save(self, name: str) -> None:
        if self.dist.is_main:
            self.checkpoint().save(self.out / "checkpoints" / f"{name}.pt")

    def _say(self, message: str) -> None:
        if self.dist.is_main and not self.quiet:
            self.log(message)

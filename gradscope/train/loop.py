"""The instrumented training loop behind `gradscope record`.

One call of :func:`record` trains the graph transformer with the configured optimizer while a
:class:`~gradscope.probes.Recorder` writes every step's ε/ω measurements to ``trace.h5``; each
epoch adds validation/test metrics, attention entropy and throughput to the trace's ``epochs``
group and writes ``checkpoints/last.pt`` (and ``best.pt`` on a new best validation metric).

Reproducibility: the batch order of epoch e is a permutation drawn from a generator seeded
with (seed, e), and checkpoints carry every RNG state and the position inside the epoch, so a
run resumed with ``--resume`` continues exactly as the uninterrupted run would (on CPU).
Ctrl-C finishes the current step, flushes the trace and writes a mid-epoch checkpoint.
"""
from __future__ import annotations

import math
import random
import shutil
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from gradscope._version import __version__
from gradscope.errors import GradscopeError
from gradscope.probes import Recorder
from gradscope.train import distributed as D
from gradscope.train.build import (Data, anchors_at, build_data, build_model_for, build_optimizer,
                                   cpu_threads, resolve_device, split_from_checkpoint)
from gradscope.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from gradscope.train.config import RecordConfig
from gradscope.train.evaluate import Evaluation, evaluate
from gradscope.train.objective import masked_loss
from gradscope.train.progress import EpochProgress, summary_table
from gradscope.train.schedules import build_lr_scheduler

RUN_FILES = ("config.json", "trace.h5", "checkpoints")


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

    def summary(self) -> str:
        """The table of every finished epoch (best validation epoch marked), for the end of a run."""
        return summary_table(self.history, self.metric, self.best_epoch) if self.history else "(no finished epoch)"

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


class _StopFlag:
    """First Ctrl-C asks the loop to stop after the current step; a second one aborts."""

    def __init__(self) -> None:
        self.requested = False

    @contextmanager
    def installed(self) -> Iterator["_StopFlag"]:
        if not _is_main_thread():
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


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def check_out_dir(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to mix runs: an existing run directory needs ``resume`` or ``overwrite``.

    Only checks (nothing is created or deleted), so that a user error found later, e.g. a bad
    data file, leaves ``out`` as it was.
    """
    if resume and overwrite:
        raise GradscopeError("--resume and --overwrite exclude each other")
    if resume:
        if not (out / "checkpoints" / "last.pt").is_file():
            raise GradscopeError(f"nothing to resume in {out}: no checkpoints/last.pt")
        return
    if out.exists() and not out.is_dir():
        raise GradscopeError(f"--out {out} exists and is not a directory")
    existing = [name for name in RUN_FILES if (out / name).exists()]
    if existing and not overwrite:
        raise GradscopeError(f"{out} already holds a run ({', '.join(existing)}); use --resume to continue it "
                             "or --overwrite to replace it")


def prepare_out_dir(out: Path, *, overwrite: bool) -> None:
    """Create ``out`` for a new run; with ``overwrite`` remove the old run's checkpoints and the
    landscapes drawn around them (``landscape/``, the default of ``gradscope landscape RUN``);
    the trace and config.json are replaced when they are written."""
    ckdir = out / "checkpoints"
    if overwrite and ckdir.is_dir():
        for ck in ckdir.glob("*.pt"):
            ck.unlink()
    if overwrite and (out / "landscape").is_dir():
        shutil.rmtree(out / "landscape")
    out.mkdir(parents=True, exist_ok=True)


def _write_json_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def record(
    config: RecordConfig,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
    stop_when: Callable[[int], bool] | None = None,
) -> RunResult:
    """Train with ``config`` and record its gradient dynamics into ``out`` (see module doc).

    With ``resume=True`` the run in ``out`` continues from ``checkpoints/last.pt`` using its
    stored configuration (``config.epochs`` may extend it). ``progress`` forces the per-epoch
    bars on or off (default: on when stderr is a terminal and not ``quiet``); ``log`` receives
    the log lines (default: stderr). ``stop_when(step)`` is asked after every step with the
    number of steps taken so far; True stops the run as Ctrl-C does (finish the step, flush the
    trace, write a mid-epoch checkpoint): a hook for time budgets and for tests.

    On CPU the run sets torch's intra-op thread count (``config.threads``, see
    :func:`~gradscope.train.build.cpu_threads`) and restores the caller's count when it returns.
    """
    previous_threads = torch.get_num_threads()
    try:
        return _record(config, out, resume=resume, overwrite=overwrite, quiet=quiet, progress=progress, log=log,
                       stop_when=stop_when)
    finally:
        torch.set_num_threads(previous_threads)


def _record(config: RecordConfig, out: str | Path, *, resume: bool, overwrite: bool, quiet: bool,
            progress: bool | None, log: Callable[[str], None] | None,
            stop_when: Callable[[int], bool] | None) -> RunResult:
    out = Path(out)
    log = log or (lambda msg: print(msg, file=sys.stderr))
    show_bars = (not quiet) and (sys.stderr.isatty() if progress is None else progress)
    check_out_dir(out, resume=resume, overwrite=overwrite)
    ckpt: dict[str, Any] | None = None
    if resume:
        ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
        try:
            stored = RecordConfig.from_dict(ckpt["config"])
        except KeyError:
            raise GradscopeError(f"{out / 'checkpoints' / 'last.pt'} lacks its run configuration") from None
        config = stored.replace(epochs=max(config.epochs, stored.epochs))
    device = resolve_device(config.device)
    threads = cpu_threads(config, device)
    if threads is not None:
        torch.set_num_threads(threads)
    info = D.init_distributed(device.type)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    if info.enabled and config.probe_exact_every:
        raise GradscopeError("--probe-exact-every is not supported under torchrun (it would desynchronise ranks)")

    _seed_everything(config.seed)
    data = build_data(config, progress=show_bars and info.is_main,
                      split=split_from_checkpoint(ckpt) if ckpt else None)
    if info.is_main and not resume:
        prepare_out_dir(out, overwrite=overwrite)
    D.barrier(info)
    if info.is_main and not quiet:
        log(data.dataset.summary())
    model = build_model_for(config, data.dataset).to(device)
    n_train = len(data.split["train"])
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    if info.enabled and n_train - (steps_per_epoch - 1) * config.batch_size < info.world_size:
        # the epoch's short last batch would leave a rank without molecules: drop it
        steps_per_epoch -= 1
        if info.is_main and not quiet:
            log(f"torchrun: the last batch of each epoch ({n_train % config.batch_size} molecules) is smaller "
                f"than the {info.world_size} ranks and is skipped")
    if steps_per_epoch == 0:
        raise GradscopeError(f"the training split ({n_train} molecules) is too small for {info.world_size} ranks")
    optimizer, rho_schedule = build_optimizer(config, model, steps_per_epoch)
    lr_schedule = build_lr_scheduler(optimizer, config.lr_schedule,
                                     warmup_steps=int(config.warmup_epochs * steps_per_epoch))
    train_model: torch.nn.Module = model
    if info.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    start_epoch, start_batch, step = 0, 0, 0
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"epoch": None, "value": None, "bad_epochs": 0}
    partial = {"loss_sum": 0.0, "seen": 0, "elapsed": 0.0, "grad_evals": 0}
    if ckpt is not None:
        model.load_state_dict(ckpt["model_state"])
        optimizer.load_state_dict(ckpt["optimizer_state"])
        if rho_schedule is not None and ckpt.get("rho_schedule_state") is not None:
            rho_schedule.load_state_dict(ckpt["rho_schedule_state"])
        if lr_schedule is not None and ckpt.get("lr_schedule_state") is not None:
            lr_schedule.load_state_dict(ckpt["lr_schedule_state"])
        start_epoch, start_batch, step = int(ckpt["epoch"]), int(ckpt["batch"]), int(ckpt["step"])
        history = [dict(h) for h in ckpt.get("history", [])]
        best = dict(ckpt["best"])
        partial = dict(ckpt["partial"])
        set_rng_state(ckpt["rng"])
        if start_epoch >= config.epochs and info.is_main and not quiet:
            log(f"{out} already finished its {config.epochs} epochs; pass --epochs N (> {config.epochs}) to extend it")

    recorder: Recorder | None = None
    if info.is_main:
        _write_json_atomic(out / "config.json", config.to_json() + "\n")
        recorder = Recorder(
            optimizer, out / "trace.h5", config=config.to_dict(), model=model,
            overwrite=overwrite and not resume, resume=resume, resume_step=step if resume else None,
            flush_every=config.flush_every, layers=config.layers, probe_exact_every=config.probe_exact_every,
            vectors_every=config.save_vectors_every, expected_steps=steps_per_epoch * config.epochs,
            epoch_metrics=_epoch_metrics(data, model),
        )
    autocast_dtype = torch.bfloat16 if config.precision == "bf16" else None
    plain = not hasattr(optimizer, "anchor")  # a torch optimizer (Adam): one pass, no closure needed
    train_idx = torch.from_numpy(data.split["train"])
    metric = data.metric
    result = RunResult(out, config, history, best["epoch"], steps=step, is_main=info.is_main)
    stop = _StopFlag()
    vote = D.StopVote(info)

    def checkpoint(epoch: int, batch: int, *, name: str = "last") -> None:
        payload = {
            "config": config.to_dict(),
            "model_config": model.config.to_dict(),
            "model_state": model.state_dict(),
            "dataset": data.dataset.spec.to_dict(),
            "dataset_sha256": data.dataset.source_sha256,
            "split": {k: torch.from_numpy(np.asarray(v, dtype=np.int64)) for k, v in data.split.items()},
            "standardizer": data.standardizer.to_dict() if data.standardizer is not None else None,
            "optimizer_state": optimizer.state_dict(),
            "rho_schedule_state": rho_schedule.state_dict() if rho_schedule is not None else None,
            "lr_schedule_state": lr_schedule.state_dict() if lr_schedule is not None else None,
            "epoch": epoch, "batch": batch, "step": step,
            "partial": dict(partial), "best": dict(best), "history": [dict(h) for h in history],
            "rng": rng_state(), "gradscope_version": __version__, "torch_version": str(torch.__version__),
        }
        save_checkpoint(out / "checkpoints" / f"{name}.pt", payload)

    try:
        with stop.installed():
            for epoch in range(start_epoch, config.epochs):
                first_batch = start_batch if epoch == start_epoch else 0
                if first_batch == 0:
                    partial = {"loss_sum": 0.0, "seen": 0, "elapsed": 0.0, "grad_evals": 0}
                    if config.optimizer == "graphsam-released":
                        optimizer.epoch_step(epoch)
                    elif anchors_at(config, epoch):
                        optimizer.anchor()
                if recorder is not None:
                    recorder.begin_epoch(epoch, config.batch_size)
                order = train_idx[epoch_order(config.seed, epoch, n_train)]
                model.train()
                bar = EpochProgress(epoch, config.epochs, steps_per_epoch, first_batch,
                                    enabled=show_bars and info.is_main)
                # float64 and seeded with the epoch's earlier part, so a resumed epoch sums its
                # losses in exactly the order of an uninterrupted one (bit-equal train_loss)
                loss_sum = torch.tensor(partial["loss_sum"], dtype=torch.float64, device=device)
                t0 = time.perf_counter()
                batch_no = first_batch
                for batch_no in range(first_batch, steps_per_epoch):
                    idx = order[batch_no * config.batch_size:(batch_no + 1) * config.batch_size]
                    batch = data.dataset.batch(D.shard(idx, info).numpy(), standardizer=data.standardizer)
                    batch = batch.to(device, non_blocking=True)
                    if recorder is not None:
                        recorder.set_batch_size(len(idx))  # the global batch; the last one may be short

                    def closure(batch=batch) -> torch.Tensor:
                        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                            loss = masked_loss(train_model(batch), batch, data.task)
                        loss.backward()
                        return D.mean_across(loss.detach(), info)

                    if plain:
                        optimizer.zero_grad(set_to_none=False)
                    loss = optimizer.step(closure)
                    if lr_schedule is not None:
                        lr_schedule.step()
                    loss_sum = loss_sum + loss.detach().double() * len(idx)
                    partial["grad_evals"] += 1 if plain else optimizer.last_step.grad_evals
                    step += 1
                    bar.update()
                    if stop_when is not None and stop_when(step):
                        stop.requested = True
                    if info.enabled:  # every rank stops after the same step, or collectives would hang
                        stop.requested = vote.any(stop.requested)
                    if stop.requested:
                        batch_no += 1
                        break
                else:
                    batch_no = steps_per_epoch
                # one sync per epoch: the epoch's training loss
                partial["loss_sum"] = float(loss_sum.cpu())
                partial["seen"] += int(sum(len(order[b * config.batch_size:(b + 1) * config.batch_size])
                                           for b in range(first_batch, batch_no)))
                partial["elapsed"] += time.perf_counter() - t0
                bar.close()
                if stop.requested and batch_no < steps_per_epoch:
                    if info.is_main:
                        checkpoint(epoch, batch_no)
                    result.interrupted = True
                    break
                row = _end_of_epoch(epoch, model, data, config, device, autocast_dtype, partial, step,
                                    optimizer, rho_schedule)
                history.append(row)
                improved = _update_best(best, row, metric)
                if rho_schedule is not None:
                    rho_schedule.step()
                if recorder is not None:
                    recorder.log_epoch(**_trace_epoch_row(row, metric))
                    recorder.flush()
                if info.is_main:
                    checkpoint(epoch + 1, 0)
                    if improved:
                        checkpoint(epoch + 1, 0, name="best")
                    if not quiet:
                        log(bar.describe(row, metric))
                D.barrier(info)
                if config.early_stopping is not None and best["bad_epochs"] >= config.early_stopping:
                    if not quiet and info.is_main:
                        log(f"early stopping: no better validation {metric} for {config.early_stopping} epochs")
                    break
                if stop.requested:  # (after the last epoch the run is simply complete)
                    result.interrupted = epoch + 1 < config.epochs
                    break
    finally:
        if recorder is not None:
            recorder.close()
        D.shutdown(info)
    result.history, result.best_epoch, result.steps = history, best["epoch"], step
    result.metric = metric
    return result


def _epoch_metrics(data: Data, model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """The epoch datasets created up front (so SWMR readers see them from the start)."""
    m = data.metric
    names = ["train_loss", "val_loss", f"val_{m}", "test_loss", f"test_{m}", "graphs_per_s", "time_s",
             "attention_entropy", "rho", "lr", "grad_evals", "steps"]
    shapes: dict[str, tuple[int, ...]] = {n: () for n in names}
    shapes["attention_entropy_layer_head"] = (model.config.n_layers, model.config.n_heads)
    return shapes


def _end_of_epoch(epoch: int, model, data: Data, config: RecordConfig, device, autocast_dtype,
                  partial: dict[str, Any], step: int, optimizer, rho_schedule) -> dict[str, Any]:
    """Evaluate after an epoch; the row goes to the trace, the checkpoint and the log."""
    common = dict(task=data.task, metric=data.metric, device=device, standardizer=data.standardizer,
                  autocast_dtype=autocast_dtype)
    val: Evaluation = evaluate(model, data.eval_batches("val"), entropy=True, **common)
    test: Evaluation = evaluate(model, data.eval_batches("test"), **common)
    seen, elapsed = partial["seen"], partial["elapsed"]
    rho = getattr(optimizer, "rho", None)
    if rho_schedule is not None:
        rho = rho_schedule.get_last_rho()
    return {
        "epoch": epoch,
        "train_loss": partial["loss_sum"] / max(seen, 1),
        "val_loss": val.loss, f"val_{data.metric}": val.metric,
        "test_loss": test.loss, f"test_{data.metric}": test.metric,
        "graphs_per_s": seen / elapsed if elapsed > 0 else float("nan"),
        "time_s": elapsed,
        "attention_entropy": val.entropy,
        "attention_entropy_layer_head": (val.entropy_layer_head.tolist()
                                         if val.entropy_layer_head is not None else None),
        "rho": float(rho) if rho is not None else float("nan"),
        "lr": float(optimizer.param_groups[0]["lr"]),
        "steps": step,
        "grad_evals": partial["grad_evals"],
    }


def _trace_epoch_row(row: dict[str, Any], metric: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if v is not None}


def _update_best(best: dict[str, Any], row: dict[str, Any], metric: str) -> bool:
    from gradscope.metrics import get_metric

    value = row[f"val_{metric}"]
    higher = get_metric(metric).higher_is_better
    if value != value:  # NaN (e.g. a validation split with one class): never "best", but not "bad"
        return best["epoch"] is None and _set_best(best, row, value)
    old = best["value"]
    if old is None or old != old or (value > old if higher else value < old):
        return _set_best(best, row, value)
    best["bad_epochs"] += 1
    return False


def _set_best(best: dict[str, Any], row: dict[str, Any], value: float) -> bool:
    best.update(epoch=int(row["epoch"]), value=float(value), bad_epochs=0)
    return True

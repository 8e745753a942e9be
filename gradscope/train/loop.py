"""`gradscope record` from Python: :func:`record` trains and records one run.

One call trains the graph transformer with the configured optimizer while a
:class:`~gradscope.probes.Recorder` writes every step's ε/ω measurements to ``trace.h5``; each
epoch adds validation/test metrics, attention entropy and throughput to the trace's ``epochs``
group and writes ``checkpoints/last.pt`` (and ``best.pt`` on a new best validation metric). The
loop itself is :class:`~gradscope.train.trainer.Trainer`.
"""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import torch

from gradscope.runlock import LOCK_NAME, run_lock
from gradscope.train.config import RecordConfig
from gradscope.train.rundir import RUN_FILES, check_out_dir, prepare_out_dir
from gradscope.train.trainer import RunResult, Trainer, epoch_order

__all__ = ["record", "RunResult", "Trainer", "epoch_order", "check_out_dir", "prepare_out_dir", "RUN_FILES"]


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
        with _writer_lock(Path(out)):
            trainer = Trainer(config, out, resume=resume, overwrite=overwrite, quiet=quiet, progress=progress,
                              log=log, stop_when=stop_when)
            return trainer.run()
    finally:
        torch.set_num_threads(previous_threads)


@contextmanager
def _writer_lock(out: Path) -> Iterator[None]:
    """Hold ``out``'s run lock (rank 0 of a torchrun job only: it alone writes the run directory).

    A second writer is refused before anything is written. A directory the lock had to create is
    removed again when the run fails before writing into it, so a user error leaves nothing behind.
    """
    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    created = not out.exists()
    try:
        with run_lock(out, "gradscope record"):
            yield
    except BaseException:
        if created and out.is_dir() and [p.name for p in out.iterdir()] in ([], [LOCK_NAME]):
            shutil.rmtree(out, ignore_errors=True)
        raise

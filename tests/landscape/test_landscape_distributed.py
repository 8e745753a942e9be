"""Grid points sharded over 2 gloo processes give the single-process surface (and file)."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gradscope.landscape import LandscapeEvaluator, LandscapeSettings, compute_landscape, open_landscape
from kit.landscape import accuracy, ce_loss, classification_batches, mlp

SETTINGS = LandscapeSettings(dims=2, points_x=7, points_y=5, chunk_size=4)


def _problem():
    torch.manual_seed(123)  # every rank builds the same θ₀ and data
    return mlp(), classification_batches()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    evaluated: list[int] = []
    original = LandscapeEvaluator.evaluate

    def spy(self, directions, coefficients, **kwargs):  # how many points this rank evaluates
        evaluated.append(len(coefficients))
        return original(self, directions, coefficients, **kwargs)

    LandscapeEvaluator.evaluate = spy  # a fresh process: patching the class is local to this rank
    try:
        model, batches = _problem()
        ls = compute_landscape(model, batches, ce_loss, SETTINGS, metric_fn=accuracy, out_path=out, progress=False)
        np.save(f"{out}.rank{rank}.npy", ls.loss)
        np.save(f"{out}.rank{rank}.count.npy", np.array(evaluated))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_equal_single_process(tmp_path: Path) -> None:
    out = tmp_path / "dist.h5"
    mp.spawn(_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    model, batches = _problem()
    single = compute_landscape(model, batches, ce_loss, SETTINGS, metric_fn=accuracy, progress=False)
    written = open_landscape(out)
    assert written.complete
    np.testing.assert_allclose(written.loss, single.loss, rtol=1e-6)
    np.testing.assert_array_equal(written.metric, single.metric)
    counts = []
    for rank in (0, 1):  # every rank returns the gathered surface
        np.testing.assert_allclose(np.load(f"{out}.rank{rank}.npy"), single.loss, rtol=1e-6)
        counts.append(int(np.load(f"{out}.rank{rank}.count.npy").sum()))
    assert sorted(counts) == [17, 18]  # 35 points split, none evaluated twice

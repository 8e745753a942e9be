"""What recording costs inside Lightning: step time with ``GradscopeCallback`` vs without.

``python -m benchmarks.integrations [--quick] [--rounds N]`` trains, in interleaved rounds, the
same LightningModule with the same optimizer three ways — *bare* (only the epoch-boundary rules,
anchoring and ρ schedule, that the callback also applies), *recorded* (``GradscopeCallback`` with
its defaults) and *recorded + TensorBoard* (a ``TensorBoardSink`` fed from the flush) — and
times every training step from ``on_train_batch_start`` to ``on_train_batch_end`` (the closure
passes, the optimizer step and every hook). Per round and variant it takes the median step time
after the first epoch (warm-up); the reported ratio is the median over rounds of
recorded / bare (with the spread of the rounds), and, less sensitive to other load on a shared
machine, the ratio of the fastest round of each variant. Models: a tiny MLP (8→64→1, batch 32) and gradscope's ``small`` graph
transformer on the built-in demo molecules (batch 32, 2 epochs: one warm-up, one timed). Writes benchmarks/results/integrations.json.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import lightning.pytorch as L
import torch
import torch.nn.functional as F

import gradscope
from benchmarks.common import log, machine_info, write_result
from gradscope.integrations.epochs import EpochHooks
from gradscope.integrations.lightning import GradscopeCallback, SharpnessAwareMixin
from gradscope.integrations.sinks import TensorBoardSink


class StepTimer(L.Callback):
    """Wall time of every training step (batch start → batch end), per epoch."""

    def __init__(self) -> None:
        self.times: list[list[float]] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:  # noqa: ANN001
        self.times.append([])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.times[-1].append(time.perf_counter() - self._t0)


class EpochRulesOnly(L.Callback):
    """The baseline: anchoring and the ρ schedule without any recording."""

    def on_fit_start(self, trainer, pl_module) -> None:  # noqa: ANN001
        self.hooks = EpochHooks(trainer.optimizers[0])

    def on_train_epoch_start(self, trainer, pl_module) -> None:  # noqa: ANN001
        self.hooks.start(trainer.current_epoch)

    def on_train_epoch_end(self, trainer, pl_module) -> None:  # noqa: ANN001
        self.hooks.end()


class Module(SharpnessAwareMixin, L.LightningModule):
    def __init__(self, net: torch.nn.Module, loss: Callable[[torch.nn.Module, Any], torch.Tensor],
                 optimizer: str) -> None:
        super().__init__()
        self.net, self.loss, self.optimizer_name = net, loss, optimizer

    def compute_loss(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.loss(self.net, batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer_name == "adam":
            return torch.optim.Adam(self.parameters(), lr=1e-3)
        return gradscope.optim.make_optimizer(self.optimizer_name, self.parameters(), lr=1e-3)

    def sharpness_aware_batch_size(self, batch: Any) -> int:
        return 32


def tiny_case() -> tuple[Callable[[], torch.nn.Module], Callable, Any]:
    torch.manual_seed(0)
    x = torch.randn(512, 8)
    data = torch.utils.data.TensorDataset(x, x[:, :2].sum(1, keepdim=True))
    loader = torch.utils.data.DataLoader(data, batch_size=32, shuffle=False)

    def net() -> torch.nn.Module:
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))

    return net, lambda model, b: F.mse_loss(model(b[0]), b[1]), loader


def small_case() -> tuple[Callable[[], torch.nn.Module], Callable, Any]:
    from gradscope.train.build import build_data, build_model_for
    from gradscope.train.config import RecordConfig
    from gradscope.train.objective import masked_loss

    config = RecordConfig(model="small")
    data = build_data(config, progress=False)
    batches = list(data.batches("train", 32))
    loader = torch.utils.data.DataLoader(batches, batch_size=None, collate_fn=lambda b: b)

    def net() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_model_for(config, data.dataset)

    return net, lambda model, b: masked_loss(model(b), b, data.task), loader


def fit(case, optimizer: str, variant: str, epochs: int, folder: Path) -> list[float]:
    """Step times (s) after the first epoch of one training run."""
    net, loss, loader = case
    timer = StepTimer()
    callbacks: list[L.Callback] = [timer]
    if variant == "bare":
        callbacks.append(EpochRulesOnly())
    else:
        sinks = [TensorBoardSink(folder / f"tb-{time.monotonic_ns()}")] if variant == "recorded+tensorboard" else []
        callbacks.append(GradscopeCallback(folder / f"{time.monotonic_ns()}.h5", sinks=sinks))
    L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
              enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
              callbacks=callbacks).fit(Module(net(), loss, optimizer), loader)
    return [t for epoch in timer.times[1:] for t in epoch]


VARIANTS = ("bare", "recorded", "recorded+tensorboard")


def measure(name: str, case, optimizer: str, rounds: int, epochs: int, folder: Path) -> dict[str, Any]:
    medians: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for r in range(rounds):
        order = VARIANTS[r % 3:] + VARIANTS[:r % 3]  # rotate which variant goes first
        for variant in order:
            medians[variant].append(statistics.median(fit(case, optimizer, variant, epochs, folder)))
    bare = medians["bare"]
    out = {"model": name, "optimizer": optimizer, "rounds": rounds, "epochs": epochs,
           "median_step_ms": {v: 1e3 * statistics.median(m) for v, m in medians.items()},
           "round_ratios_recorded": [a / b for a, b in zip(medians["recorded"], bare)],
           "ratio_recorded": statistics.median(a / b for a, b in zip(medians["recorded"], bare)),
           "ratio_of_fastest_recorded": min(medians["recorded"]) / min(bare),
           "ratio_recorded_tensorboard": statistics.median(
               a / b for a, b in zip(medians["recorded+tensorboard"], bare))}
    spread = out["round_ratios_recorded"]
    log(f"{name:5s} {optimizer:9s} bare {out['median_step_ms']['bare']:.2f} ms  recorded ×{out['ratio_recorded']:.3f}"
        f" (rounds {min(spread):.2f}-{max(spread):.2f}, fastest ×{out['ratio_of_fastest_recorded']:.3f})  +tensorboard ×{out['ratio_recorded_tensorboard']:.3f}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.integrations", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and epochs")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--only", choices=("tiny", "small"), default=None, help="one model only")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rounds = args.rounds or (3 if args.quick else 7)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.only in (None, "tiny"):
            tiny = tiny_case()
            for optimizer in ("adam", "sam", "graphsam"):
                results.append(measure("tiny", tiny, optimizer, rounds, 2 if args.quick else 4, folder))
        if args.only in (None, "small"):
            small = small_case()
            for optimizer in ("sam", "graphsam"):
                results.append(measure("small", small, optimizer, rounds, 2, folder))
    command = "python -m benchmarks.integrations " + " ".join(argv if argv is not None else sys.argv[1:])
    path = write_result("integrations", {"machine": {**machine_info(), "loadavg": os.getloadavg()},
                                         "results": results, "command": command.strip()})
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

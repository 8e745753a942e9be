"""Tiny seeded Lightning modules and the same training written as a plain gradscope loop (the reference)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

import gradscope
from gradscope.integrations.lightning import SharpnessAwareMixin

L = __import__("lightning.pytorch", fromlist=["Trainer"])

MakeOptimizer = Callable[[list], torch.optim.Optimizer]
#: Columns that must agree between the Lightning recording and the plain loop.
COMPARED = ("epoch", "rho", "loss", "loss_perturbed", "anchored", "grad_evals", "eps_norm", "eps_hat_norm",
            "omega_norm", "eps_change", "omega_change", "cos_eps_omega", "cos_eps_prev_omega", "lr")


def make_net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))


def make_data(n: int = 48, seed: int = 1) -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    return torch.utils.data.TensorDataset(x, x[:, :1] * 2 - x[:, 1:2] + 0.1 * torch.randn(n, 1, generator=g))


def loader(batch_size: int = 16) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(make_data(), batch_size=batch_size, shuffle=False)


def graphsam(params) -> torch.optim.Optimizer:
    return gradscope.optim.GraphSAM(params, rho=0.05, beta=0.9, lr=1e-2)


class AutoModule(L.LightningModule):
    """Lightning's automatic optimization; the optimizer gets Lightning's closure."""

    def __init__(self, make_optimizer: MakeOptimizer = graphsam, seed: int = 0) -> None:
        super().__init__()
        self.net = make_net(seed)
        self.make_optimizer = make_optimizer

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.mse_loss(self.net(x), y)
        self.log("train_loss", loss, on_epoch=True, batch_size=len(x))
        return loss

    def configure_optimizers(self):
        return self.make_optimizer(list(self.parameters()))


class MixinModule(SharpnessAwareMixin, L.LightningModule):
    """The same model through SharpnessAwareMixin (manual optimization)."""

    def __init__(self, make_optimizer: MakeOptimizer = graphsam, seed: int = 0) -> None:
        super().__init__()
        self.net = make_net(seed)
        self.make_optimizer = make_optimizer

    def compute_loss(self, batch, batch_idx):
        x, y = batch
        return F.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        return self.make_optimizer(list(self.parameters()))


def trainer(epochs: int = 2, **kw) -> "L.Trainer":
    options = dict(accelerator="cpu", devices=1, max_epochs=epochs, logger=False, enable_checkpointing=False,
                   enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    options.update(kw)
    return L.Trainer(**options)


def plain_loop(path: Path, make_optimizer: MakeOptimizer = graphsam, epochs: int = 2, bf16: bool = False,
               gamma: float = 0.5, batch_size: int = 16) -> None:
    """The reference: a hand-written loop doing what the paper's Algorithm 1 does per epoch."""
    net = make_net(0)
    opt = make_optimizer(list(net.parameters()))
    sharp = isinstance(opt, gradscope.optim.SharpnessAware)
    rho = gradscope.StepRho(opt, step_size=1, gamma=gamma) if sharp else None
    with gradscope.Recorder(opt, path, model=net) as rec:
        for epoch in range(epochs):
            if sharp:
                opt.anchor()
            rec.begin_epoch(epoch)
            for x, y in loader(batch_size):
                rec.set_batch_size(len(x))

                def closure(x=x, y=y):
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                        loss = F.mse_loss(net(x), y)
                    loss.backward()
                    return loss

                if not sharp:
                    opt.zero_grad()
                opt.step(closure)
            rec.log_epoch()
            if rho is not None:
                rho.step()

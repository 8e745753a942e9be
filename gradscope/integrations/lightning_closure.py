"""The least code for a sharpness-aware step in a LightningModule: write the loss, get the closure.

A SAM-family step needs a closure (forward + backward) that the optimizer may call twice.
:class:`SharpnessAwareMixin` switches the module to manual optimization and builds that closure
around a ``compute_loss(batch, batch_idx)`` you write::

    class Net(SharpnessAwareMixin, L.LightningModule):
        def compute_loss(self, batch, batch_idx):
            x, y = batch
            return F.mse_loss(self.net(x), y)

        def configure_optimizers(self):
            return gradscope.optim.GraphSAM(self.parameters(), rho=0.05, lr=1e-3)

Compared with Lightning's automatic optimization (which also works: Lightning hands the
optimizer a closure), the mixin runs your loss once per forward-backward pass without Lightning's
hooks around it, logs ``train_loss`` at θ_t (not at the perturbed θ_t + ε̂_t of the second
pass) and lets the gradscope optimizer keep its gradient buffers instead of being zeroed to None
before every pass. LR schedulers from ``configure_optimizers`` are stepped as Lightning would
(``interval`` "step" or "epoch", ``frequency``).
"""
from __future__ import annotations

from typing import Any

import torch

from gradscope.optim import SharpnessAware


class SharpnessAwareMixin:
    """Manual optimization with a closure for any optimizer; put it before ``LightningModule``.

    Implement ``compute_loss(batch, batch_idx) -> 0-d tensor``. Override
    ``sharpness_aware_batch_size(batch)`` when Lightning cannot tell a batch's size.
    """

    #: Name under which the loss at θ_t is logged (on step and epoch).
    train_loss_name = "train_loss"

    @property
    def automatic_optimization(self) -> bool:
        return False

    @automatic_optimization.setter
    def automatic_optimization(self, value: bool) -> None:
        if value:
            raise AttributeError("SharpnessAwareMixin uses manual optimization; automatic_optimization stays False")

    def compute_loss(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """The mini-batch loss; called once per forward-backward pass the optimizer asks for."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute_loss(batch, batch_idx)")

    def sharpness_aware_batch_size(self, batch: Any) -> int | None:
        """The batch size for logging (None: let Lightning infer it)."""
        return None

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        optimizer = self.optimizers()  # type: ignore[attr-defined]

        def closure() -> torch.Tensor:
            loss = self.compute_loss(batch, batch_idx)
            self.manual_backward(loss)  # type: ignore[attr-defined]
            return loss

        if not isinstance(optimizer.optimizer, SharpnessAware):  # gradscope optimizers zero before each pass
            optimizer.zero_grad()
        loss = optimizer.step(closure=closure)
        self._step_lr_schedulers("step")
        self.log(self.train_loss_name, loss.detach(), on_step=True, on_epoch=True, prog_bar=True,  # type: ignore[attr-defined]
                 batch_size=self.sharpness_aware_batch_size(batch))
        return loss

    def on_train_epoch_end(self) -> None:
        self._step_lr_schedulers("epoch")
        parent = super()
        if hasattr(parent, "on_train_epoch_end"):
            parent.on_train_epoch_end()  # type: ignore[misc]

    def _step_lr_schedulers(self, interval: str) -> None:
        """Step the schedulers of ``interval`` as Lightning's automatic loop does (every ``frequency``)."""
        trainer = self.trainer  # type: ignore[attr-defined]
        count = trainer.global_step if interval == "step" else trainer.current_epoch + 1
        for config in trainer.lr_scheduler_configs:
            if config.interval != interval or count % config.frequency:
                continue
            if isinstance(config.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                config.scheduler.step(trainer.callback_metrics[config.monitor])
            else:
                config.scheduler.step()

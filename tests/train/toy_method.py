"""A toy optimizer in one file: everything adding a method to gradscope takes.

SAM on every ``period``-th step and a plain step with the gradient in between (like RST with a
fixed schedule). The class follows the ``SharpnessAware`` subclass contract; the declaration
at the end is all the registry, `gradscope record`, the training loop and the analyses need. A
package would make it known with an entry point (docs/optimizers.md); the tests register it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import torch

from gradscope.optim import Method, SharpnessAware
from gradscope.optim.checks import check_positive_int, check_rho
from gradscope.optim.core import Closure, Outcome


@dataclass(frozen=True)
class PeriodicSAMConfig:
    """The toy's hyperparameters: ``rho`` ≥ 0 and ``period`` ≥ 1."""

    rho: float = 0.05
    period: int = field(default=2, metadata={"help": "a SAM step every PERIOD optimizer steps, plain steps between"})

    def __post_init__(self) -> None:
        check_rho(self.rho)
        check_positive_int("period", self.period)


class PeriodicSAM(SharpnessAware):
    """SAM at steps t ≡ 0 (mod period), the plain gradient step otherwise."""

    def __init__(self, params: Iterable[Any], base_optimizer: Any = torch.optim.Adam, rho: float = 0.05,
                 period: int = 2, **base_kwargs: Any) -> None:
        self.config = PeriodicSAMConfig(rho=rho, period=period)
        super().__init__(params, base_optimizer, rho=rho, **base_kwargs)
        self._g = self._layout.buffer()

    def _sharpness_step(self, closure: Closure) -> Outcome:
        loss = self._gradient(closure, into=self._g)
        if self._t % self.config.period == 0:
            return self._sam_update(closure, self._g, loss)
        return self._erm_update(self._g, loss)


METHOD = Method(
    name="toy-periodic-sam", display_name="Periodic SAM (toy)", optimizer=PeriodicSAM, settings=PeriodicSAMConfig,
    rho_schedule=True, summary="a test's toy: SAM every PERIOD steps, plain steps in between",
)

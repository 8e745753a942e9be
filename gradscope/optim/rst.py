"""RST: randomized sharpness-aware training.

Zhao, Zhang & Hu (2022), "Randomized Sharpness-Aware Training for Boosting Computational
Efficiency in Deep Learning" (arXiv 2203.09962), Algorithm 1: at every step a Bernoulli trial
with probability p chooses

    SAM step: ε = g = ∇L_B(θ_t), ε̂ = ρ·g/‖g‖₂, ω = ∇L_B(θ_t + ε̂)   (2 passes)
    ERM step: ω = g                                                 (1 pass)

The coin is drawn on the host from a seeded :class:`random.Random` (no device involvement, its
state is part of ``state_dict``, so a resumed run draws the same coins). Only a constant p is
offered (the paper's scheduled p is not implemented).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Iterable

import torch

from gradscope.optim.checks import check_rho, check_unit_interval
from gradscope.optim.core import Closure, Outcome, SharpnessAware


@dataclass(frozen=True)
class RSTConfig:
    """RST's hyperparameters: ``rho`` ≥ 0, ``p`` in [0, 1] (probability of a SAM step), ``seed``."""

    rho: float = 0.05
    p: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        check_rho(self.rho)
        check_unit_interval("p", self.p)


class RST(SharpnessAware):
    """RST (Zhao et al., 2022): SAM with probability p, else an ERM step.

    ``RST(params, base_optimizer=torch.optim.Adam, rho=0.05, p=0.5, seed=0, **base_kwargs)``
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: str | type[torch.optim.Optimizer] = torch.optim.Adam,
        rho: float = 0.05,
        p: float = 0.5,
        seed: int = 0,
        **base_kwargs: Any,
    ) -> None:
        self.config = RSTConfig(rho=rho, p=p, seed=seed)
        super().__init__(params, base_optimizer, rho=rho, **base_kwargs)
        self._g = self._layout.buffer()
        self._rng = random.Random(seed)

    def _sharpness_step(self, closure: Closure) -> Outcome:
        use_sam = self._rng.random() < self.config.p
        loss = self._gradient(closure, into=self._g)
        if use_sam:
            return self._sam_update(closure, self._g, loss)
        return self._erm_update(self._g, loss)

    def _extra_state(self) -> dict[str, Any]:
        return {**super()._extra_state(), "rng": self._rng.getstate()}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        super()._load_extra_state(extra)
        version, internal, gauss = extra["rng"]
        self._rng.setstate((version, tuple(internal), gauss))


# -- registry declaration (gradscope.optim.registry) -----------------------------------------------
from gradscope.optim.registry import Method, register  # noqa: E402  (the block declares the class above)

register(Method(
    name="rst", display_name="RST", optimizer=RST, settings=RSTConfig, rho_schedule=True,
    summary="RST (Zhao et al. 2022): a SAM step with probability p, else ERM",
    help={
        "p": "p in [0, 1]: probability that a step is a SAM step (2 passes), else ERM (1 pass)",
        "seed": "seed of RST's own coin generator (independent of --seed)",
    },
    flags={"seed": "--rst-seed"},  # --seed is the run's
))

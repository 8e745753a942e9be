"""Plain torch optimizers in the registry: ``adam`` is the base optimizer alone.

With ``--optimizer adam`` the run's base optimizer (Adam, or AdamW / SGD by ``--base-optimizer``;
the table is :data:`gradscope.optim.core.BASE_OPTIMIZERS`) trains the model by itself: one
forward-backward pass per step and no ε, so the trace's ε channels hold NaN and ω_t is the
gradient. Its only hyperparameters are the base optimizer's (learning rate, weight decay), which
are settings of the run.
"""
from __future__ import annotations

from dataclasses import dataclass

from gradscope.optim.registry import Method, register


@dataclass(frozen=True)
class PlainSettings:
    """No hyperparameters beyond the base optimizer's."""


register(Method(
    name="adam", display_name="Adam", settings=PlainSettings,
    summary="the base optimizer alone (Adam; AdamW or SGD with --base-optimizer): 1 pass per step, no ε",
))

"""Sharpness-aware optimizers with one shared two-pass core.

Every optimizer here is a ``torch.optim.Optimizer`` wrapping a base optimizer (Adam by default)
built on the same ``param_groups``; ``step(closure)`` runs the closure as often as the method
needs and sets ``optimizer.last_step`` (:class:`StepInfo`) for the probes. See
docs/optimizers.md for each method's update rule, its cost and its reference.
"""
from __future__ import annotations

from gradscope.optim.accumulate import micro_batch_closure
from gradscope.optim.aesam import AESAM, AESAMConfig
from gradscope.optim.asam import ASAM, ASAMConfig
from gradscope.optim.core import BASE_OPTIMIZERS, SharpnessAware, resolve_base_optimizer
from gradscope.optim.flat import FlatLayout
from gradscope.optim.graphsam import GraphSAM, GraphSAMConfig
from gradscope.optim.looksam import LookSAM, LookSAMConfig
from gradscope.optim.registry import OPTIMIZERS, make_optimizer, optimizer_class
from gradscope.optim.released import GraphSAMReleased, GraphSAMReleasedConfig
from gradscope.optim.rst import RST, RSTConfig
from gradscope.optim.sam import SAM, SAMConfig
from gradscope.optim.sam_k import SAMK, SAMKConfig
from gradscope.optim.sam_one import SAMOne
from gradscope.optim.schedules import StepRho, StepRhoConfig
from gradscope.optim.stepinfo import StepInfo

__all__ = [
    "SharpnessAware",
    "SAM",
    "ASAM",
    "GraphSAM",
    "SAMOne",
    "SAMK",
    "LookSAM",
    "AESAM",
    "RST",
    "GraphSAMReleased",
    "StepRho",
    "StepInfo",
    "FlatLayout",
    "micro_batch_closure",
    "OPTIMIZERS",
    "BASE_OPTIMIZERS",
    "make_optimizer",
    "optimizer_class",
    "resolve_base_optimizer",
    "SAMConfig",
    "ASAMConfig",
    "GraphSAMConfig",
    "SAMKConfig",
    "LookSAMConfig",
    "AESAMConfig",
    "RSTConfig",
    "GraphSAMReleasedConfig",
    "StepRhoConfig",
]

"""Sharpness-aware optimizers with one shared two-pass core, and the registry that names them.

Every optimizer here is a ``torch.optim.Optimizer`` wrapping a base optimizer (Adam by default)
built on the same ``param_groups``; ``step(closure)`` runs the closure as often as the method
needs and sets ``optimizer.last_step`` (:class:`StepInfo`) for the probes. Each method declares
itself once, at the end of its module, in :mod:`gradscope.optim.registry` (name, display name,
settings, epoch hooks); the imports below are the registry's listing order. See
docs/optimizers.md for each method's update rule, its cost and its reference.
"""
from __future__ import annotations

from gradscope.optim.accumulate import micro_batch_closure
from gradscope.optim.core import BASE_OPTIMIZERS, SharpnessAware, resolve_base_optimizer
from gradscope.optim.flat import FlatLayout
from gradscope.optim.registry import (
    ENTRY_POINT_GROUP,
    OPTIMIZERS,
    AnchorPeriod,
    Method,
    RunInfo,
    display_name,
    get_method,
    make_optimizer,
    method_names,
    methods,
    optimizer_class,
    register,
)
from gradscope.optim.schedules import StepRho, StepRhoConfig
from gradscope.optim.stepinfo import StepInfo

# the registry's listing order: the plain baseline, SAM and its variants, then the released code
from gradscope.optim.plain import PlainSettings  # isort: skip
from gradscope.optim.sam import SAM, SAMConfig  # isort: skip
from gradscope.optim.asam import ASAM, ASAMConfig  # isort: skip
from gradscope.optim.graphsam import GraphSAM, GraphSAMConfig, GraphSAMSettings  # isort: skip
from gradscope.optim.sam_one import SAMOne, SAMOneEpochSettings  # isort: skip
from gradscope.optim.sam_k import SAMK, SAMKConfig  # isort: skip
from gradscope.optim.looksam import LookSAM, LookSAMConfig  # isort: skip
from gradscope.optim.aesam import AESAM, AESAMConfig  # isort: skip
from gradscope.optim.rst import RST, RSTConfig  # isort: skip
from gradscope.optim.released import GraphSAMReleased, GraphSAMReleasedConfig  # isort: skip

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
    "ENTRY_POINT_GROUP",
    "Method",
    "RunInfo",
    "AnchorPeriod",
    "register",
    "get_method",
    "methods",
    "method_names",
    "display_name",
    "make_optimizer",
    "optimizer_class",
    "resolve_base_optimizer",
    "PlainSettings",
    "SAMConfig",
    "ASAMConfig",
    "GraphSAMConfig",
    "GraphSAMSettings",
    "SAMOneEpochSettings",
    "SAMKConfig",
    "LookSAMConfig",
    "AESAMConfig",
    "RSTConfig",
    "GraphSAMReleasedConfig",
    "StepRhoConfig",
]

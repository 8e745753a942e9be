"""The resolved configuration of a `gradscope record` run.

One frozen dataclass holds every choice a run makes; it validates itself on construction and is
saved as ``config.json`` beside the trace (and inside each checkpoint), so a run can always be
reproduced or resumed from its own directory.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from gradscope.errors import ConfigError

OPTIMIZERS = (
    "adam", "sam", "asam", "graphsam", "graphsam-released", "sam-one", "sam-k", "looksam", "ae-sam", "rst",
)
BASE_OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "noam")
SPLITS = ("random", "scaffold")
MODELS = ("tiny", "small", "compt")
PRECISIONS = ("fp32", "bf16")
TASKS = ("classification", "regression")

# Which optimizer-specific settings apply to which optimizers. A flag given for an optimizer
# that does not use it is an error (a typo'd experiment should not run silently).
_SAM_FAMILY = tuple(o for o in OPTIMIZERS if o != "adam")
APPLIES_TO: dict[str, tuple[str, ...]] = {
    "rho": _SAM_FAMILY,
    "gamma": _SAM_FAMILY,
    "rho_step": _SAM_FAMILY,
    "beta": ("graphsam", "graphsam-released"),
    "anchor_every": ("graphsam", "sam-one"),  # graphsam-released anchors every epoch, as released
    "k": ("sam-k", "looksam"),
    "probe_exact_every": _SAM_FAMILY,
}
# Their defaults: used when the flag was not given.
OPTIMIZER_DEFAULTS: dict[str, Any] = {
    "rho": 0.05, "gamma": 0.5, "rho_step": 1, "beta": 0.99, "anchor_every": 1, "k": None,
    "probe_exact_every": None,
}
#: Per-optimizer exceptions to OPTIMIZER_DEFAULTS. ASAM's ρ multiplies |θ| (Kwon et al. 2021 use
#: ρ = 0.5 where SAM uses 0.05), the same default as gradscope.optim.ASAM.
PER_OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {"asam": {"rho": 0.5}}


def default_setting(optimizer: str, name: str) -> Any:
    """The default of an optimizer-specific setting for ``optimizer``."""
    return PER_OPTIMIZER_DEFAULTS.get(optimizer, {}).get(name, OPTIMIZER_DEFAULTS[name])


@dataclass(frozen=True)
class RecordConfig:
    """Everything a recorded training run depends on.

    Defaults follow the GraphSAM paper (Wang et al. 2024, §5): ρ=0.05, β=0.99, γ=0.5, λ=1, Adam,
    random 0.8/0.1/0.1 split. With no data given the built-in demo dataset is used.
    """

    # data: --dataset NAME, --data FILE, or both (a named dataset read from a local copy)
    data: str | None = None
    dataset: str | None = None
    smiles_column: str | None = None
    targets: tuple[str, ...] | None = None
    task: str | None = None
    max_atoms: int = 100
    # optimization
    optimizer: str = "graphsam"
    base_optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    warmup_epochs: float = 2.0
    rho: float | None = None  # None: the optimizer's default (0.05; ASAM 0.5)
    beta: float = 0.99
    gamma: float = 0.5
    rho_step: int = 1
    anchor_every: int = 1
    k: int | None = None
    epochs: int = 4
    batch_size: int = 32
    early_stopping: int | None = None
    # model and data handling
    model: str = "small"
    split: str = "random"
    split_sizes: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    threads: int | None = None  # CPU intra-op threads; None: 1 for tiny/small models, else torch's default
    # recording
    layers: bool = False
    probe_exact_every: int | None = None
    save_vectors_every: int | None = None
    flush_every: int = 64
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        def choice(name: str, allowed: tuple[str, ...]) -> None:
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"unknown {name.replace('_', '-')} {value!r}; choose from {', '.join(allowed)}")

        choice("optimizer", OPTIMIZERS)
        if self.rho is None:  # frozen dataclass: fill the optimizer's default once, here
            object.__setattr__(self, "rho", default_setting(self.optimizer, "rho"))
        choice("base_optimizer", BASE_OPTIMIZERS)
        choice("lr_schedule", LR_SCHEDULES)
        choice("split", SPLITS)
        choice("model", MODELS)
        choice("precision", PRECISIONS)
        if self.task is not None:
            choice("task", TASKS)
        if not (self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda")):
            raise ConfigError(f"unknown device {self.device!r}; use auto, cpu, cuda or cuda:N")
        positive = {"lr": self.lr, "epochs": self.epochs, "batch_size": self.batch_size,
                    "rho_step": self.rho_step, "anchor_every": self.anchor_every,
                    "max_atoms": self.max_atoms, "flush_every": self.flush_every}
        for name, value in positive.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {value!r}")
        if self.rho < 0 or not math.isfinite(self.rho):
            raise ConfigError(f"--rho must be >= 0, got {self.rho!r}")
        if not 0.0 <= self.beta < 1.0:
            raise ConfigError(f"--beta must be in [0, 1), got {self.beta!r}")
        if not 0.0 < self.gamma <= 1.0:
            raise ConfigError(f"--gamma must be in (0, 1], got {self.gamma!r}")
        for name in ("k", "probe_exact_every", "save_vectors_every", "early_stopping", "threads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if self.weight_decay < 0:
            raise ConfigError(f"--weight-decay must be >= 0, got {self.weight_decay!r}")
        if len(self.split_sizes) != 3 or abs(sum(self.split_sizes) - 1.0) > 1e-6 or min(self.split_sizes) <= 0:
            raise ConfigError(f"split sizes must be three positive fractions summing to 1, got {self.split_sizes!r}")

    # -- (de)serialization -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("targets", "split_sizes"):
            if out[key] is not None:
                out[key] = list(out[key])
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RecordConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
        data = dict(data)
        for key in ("targets", "split_sizes"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)

    def replace(self, **changes: Any) -> "RecordConfig":
        return dataclasses.replace(self, **changes)


def resolve_optimizer_settings(optimizer: str, given: dict[str, Any]) -> dict[str, Any]:
    """Fill optimizer-specific settings, rejecting those that do not apply to ``optimizer``.

    ``given`` holds only the settings the user set explicitly (``None`` = not given).
    """
    out: dict[str, Any] = {}
    for name, value in given.items():
        if value is None:
            continue
        if optimizer not in APPLIES_TO[name]:
            users = ", ".join(APPLIES_TO[name])
            raise ConfigError(
                f"--{name.replace('_', '-')} does not apply to optimizer {optimizer!r} (it is for: {users})")
        out[name] = value
    for name in OPTIMIZER_DEFAULTS:
        out.setdefault(name, default_setting(optimizer, name))
    return out

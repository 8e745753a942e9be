"""`ModelConfig`: hyper-parameters of gradscope's graph transformer, frozen and self-validating.

This is the config of :class:`~gradscope.models.GraphTransformer` (architecture
``"graph-transformer"``), gradscope's own model — not CoMPT, whose config is
:class:`~gradscope.models.CoMPTConfig`. Presets (``ModelConfig.preset(name, atom_dim=, bond_dim=,
n_tasks=)``):

============  =======  ========  =======  =====  =======  ==============================================
preset        d_model  n_layers  n_heads  d_ff   dropout  use
============  =======  ========  =======  =====  =======  ==============================================
``tiny``      32       2         4        64     0.0      unit tests
``small``     64       3         4        128    0.1      CPU default (the demo trains in seconds/epoch)
``gt-large``  256      4         4        1024   0.1      CoMPT's width and depth (called ``compt`` before
                                                          the faithful CoMPT joined)
============  =======  ========  =======  =====  =======  ==============================================

``to_dict()`` records ``"architecture": "graph-transformer"``; ``from_dict`` accepts dicts with that
entry or without it (checkpoints written before it existed).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar, Mapping

from gradscope.errors import ConfigError

READOUTS = ("mean", "attention")


class StoredConfig:
    """What a model config dataclass shares with every other: ``replace``, and ``to_dict`` /
    ``from_dict`` with the ``"architecture"`` key that tells the configs apart in checkpoints."""

    architecture: ClassVar[str]

    def replace(self, **changes: Any) -> Any:
        return replace(self, **changes)  # type: ignore[type-var]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields plus ``"architecture"`` (safe for ``torch.load(weights_only=True)``)."""
        return {"architecture": self.architecture, **asdict(self)}  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Any:
        """Inverse of :meth:`to_dict`; a dict without ``"architecture"`` is taken as this one's."""
        d = dict(d)
        kind = d.pop("architecture", cls.architecture)
        name = cls.__name__
        if kind != cls.architecture:
            raise ConfigError(f"a {kind!r} model config is not a {name} ({cls.architecture!r})")
        unknown = set(d) - {f.name for f in fields(cls)}  # type: ignore[arg-type]
        if unknown:
            raise ConfigError(f"unknown {name} field(s): {', '.join(sorted(unknown))}")
        return cls(**d)


@dataclass(frozen=True, kw_only=True)
class ModelConfig(StoredConfig):
    """Hyper-parameters of :class:`~gradscope.models.GraphTransformer`.

    Attributes:
        atom_dim, bond_dim: input feature sizes (from the featurizer).
        n_tasks: number of outputs (one logit or value per task).
        d_model: hidden size; must divide by ``n_heads``.
        n_layers, n_heads, d_ff: transformer depth, attention heads, feed-forward width.
        dropout: dropout on attention probabilities, residual branches and the head.
        max_distance: topological distances ≥ this share the last learned distance bias; pairs in
            different fragments get a separate "unreachable" bias.
        d_edge: hidden width of the bond-feature MLP that produces per-head attention biases.
        readout: ``"mean"`` (masked mean over atoms) or ``"attention"`` (learned softmax pooling).
        pack_atoms: run the per-atom layers on real atoms only (:mod:`gradscope.models.packing`;
            same outputs and gradients up to float rounding, less time on padded batches). Off by
            default: see the module docstring of :mod:`gradscope.models.packing`. Configs saved
            without it load with the default.
    """

    atom_dim: int
    bond_dim: int
    n_tasks: int = 1
    d_model: int = 64
    n_layers: int = 3
    n_heads: int = 4
    d_ff: int = 128
    dropout: float = 0.1
    max_distance: int = 20
    d_edge: int = 32
    readout: str = "mean"
    pack_atoms: bool = False

    #: the ``"architecture"`` entry of :meth:`to_dict` (see :mod:`gradscope.models.registry`)
    architecture: ClassVar[str] = "graph-transformer"

    def __post_init__(self) -> None:
        for name in ("atom_dim", "bond_dim", "n_tasks", "d_model", "n_layers", "n_heads", "d_ff", "max_distance", "d_edge"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"ModelConfig.{name} must be a positive integer, got {v!r}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"ModelConfig.d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout!r}")
        object.__setattr__(self, "dropout", float(self.dropout))
        if self.readout not in READOUTS:
            raise ConfigError(f"ModelConfig.readout must be one of {READOUTS}, got {self.readout!r}")
        if not isinstance(self.pack_atoms, bool):
            raise ConfigError(f"ModelConfig.pack_atoms must be True or False, got {self.pack_atoms!r}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @classmethod
    def preset(cls, name: str, *, atom_dim: int, bond_dim: int, n_tasks: int = 1, **overrides: Any) -> "ModelConfig":
        """A named preset (``tiny``, ``small``, ``gt-large``) with the data's sizes and any overrides."""
        try:
            base = PRESETS[name]
        except KeyError:
            hint = RENAMED.get(name, "")
            raise ConfigError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}{hint}") from None
        return cls(atom_dim=atom_dim, bond_dim=bond_dim, n_tasks=n_tasks, **{**base, **overrides})


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(d_model=32, n_layers=2, n_heads=4, d_ff=64, dropout=0.0, d_edge=16, max_distance=10),
    "small": dict(d_model=64, n_layers=3, n_heads=4, d_ff=128, dropout=0.1, d_edge=32, max_distance=20),
    "gt-large": dict(d_model=256, n_layers=4, n_heads=4, d_ff=1024, dropout=0.1, d_edge=64, max_distance=20),
}

#: Former preset names and where they went (appended to the unknown-preset error).
RENAMED: dict[str, str] = {
    "compt": " ('compt' is now the faithful CoMPT, gradscope.models.CoMPTConfig; this model at that size is 'gt-large')",
}

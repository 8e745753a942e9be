"""`CoMPTConfig`: hyper-parameters of the faithful CoMPT, frozen and self-validating.

Field names map onto the keyword arguments of ``make_model`` in the released
``transformer_graph.py`` (jcchan23/CoMPT; identical in the GraphSAM authors' copy, YL-wang/GraphSAM
branch ``graphsam``, ``CoMPT-main/``):

==========================  ==========================  ===========================================
gradscope                   released                    meaning
==========================  ==========================  ===========================================
``d_model``                 ``d_model``                 width of node and edge states
``n_layers``                ``N``                       encoder layers
``n_heads``                 ``h``                       attention heads
``n_dense``                 ``N_dense``                 linear layers of the position-wise feed-forward
``n_generator_layers``      ``n_generator_layers``      layers of the output MLP after the readout
``distance_kernel``         ``distance_matrix_kernel``  ``exp``: exp(−λd); ``softmax``: softmax_j(−λd)
``scale_norm``              ``scale_norm``              ScaleNorm (True) or the released LayerNorm
``dropout``                 ``dropout``                 every dropout of the model
``attenuation``             ``attenuation_lambda``      initial λ of the distance attenuation
``max_atoms``               ``max_length``              size of the atom-position table
``readout``                 ``aggregation_type``        ``gru`` (released) or ``mean``
==========================  ==========================  ===========================================

Three switches are gradscope's, each defaulting to the released behaviour: ``positions`` (the
learned embedding of the atom's index, ``True`` as released), ``readout="mean"`` (an order-free
readout instead of the GRU) and ``update_edges`` (``False`` as released: the released layer computes
updated edge states and then passes the *input* edge states on; ``True`` carries the updated ones
to the next layer, as the paper's text and the authors' later re-implementation describe — every
layer but the last then has an edge projection, the released model has none that matters).
``pack_atoms`` (default ``False``) is a speed switch with no released counterpart: per-atom layers
run on real atoms only (:mod:`gradscope.models.packing`), the same numbers up to float rounding;
configs saved without it load with the default.
Settings the released presets never change are fixed: mish everywhere (``dense_output_nonlinearity``),
Xavier-uniform initialisation of every matrix (``init_type='uniform'``).

``to_dict()`` records ``"architecture": "compt"``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from gradscope.errors import ConfigError
from gradscope.models.config import StoredConfig
from gradscope.models.recipes import DEFAULT_DATASET, recipe

DISTANCE_KERNELS = ("exp", "softmax")
READOUTS = ("gru", "mean")


@dataclass(frozen=True, kw_only=True)
class CoMPTConfig(StoredConfig):
    """Hyper-parameters of :class:`~gradscope.models.CoMPT` (see the module docstring).

    Defaults are the released BBBP model (``get_options('bbbp')`` in the released ``utils.py``).
    """

    atom_dim: int
    bond_dim: int
    n_tasks: int = 1
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    n_dense: int = 1
    n_generator_layers: int = 2
    distance_kernel: str = "exp"
    scale_norm: bool = False
    dropout: float = 0.0
    attenuation: float = 0.1
    max_atoms: int = 128
    positions: bool = True
    readout: str = "gru"
    update_edges: bool = False
    pack_atoms: bool = False

    #: the ``"architecture"`` entry of :meth:`to_dict` (see :mod:`gradscope.models.registry`)
    architecture: ClassVar[str] = "compt"

    def __post_init__(self) -> None:
        for name in ("atom_dim", "bond_dim", "n_tasks", "d_model", "n_layers", "n_heads",
                     "n_generator_layers", "max_atoms"):
            _positive_int(name, getattr(self, name))
        if isinstance(self.n_dense, bool) or not isinstance(self.n_dense, int) or self.n_dense < 0:
            raise ConfigError(f"CoMPTConfig.n_dense must be a non-negative integer, got {self.n_dense!r}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"CoMPTConfig.d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"CoMPTConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if isinstance(self.attenuation, bool) or not isinstance(self.attenuation, (int, float)):
            raise ConfigError(f"CoMPTConfig.attenuation must be a number, got {self.attenuation!r}")
        object.__setattr__(self, "dropout", float(self.dropout))
        object.__setattr__(self, "attenuation", float(self.attenuation))
        if self.distance_kernel not in DISTANCE_KERNELS:
            raise ConfigError(f"CoMPTConfig.distance_kernel must be one of {DISTANCE_KERNELS}, "
                              f"got {self.distance_kernel!r}")
        if self.readout not in READOUTS:
            raise ConfigError(f"CoMPTConfig.readout must be one of {READOUTS}, got {self.readout!r}")
        for name in ("scale_norm", "positions", "update_edges", "pack_atoms"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"CoMPTConfig.{name} must be True or False, got {getattr(self, name)!r}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


def _positive_int(name: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ConfigError(f"CoMPTConfig.{name} must be a positive integer, got {v!r}")


#: Named sizes. ``compt`` is the released BBBP model (``recipe("compt-paper", "bbbp")``; the registry
#: swaps in the released size of any dataset the recipe covers); ``compt-tiny`` is for tests.
PRESETS: dict[str, dict[str, Any]] = {
    "compt": recipe("compt-paper", DEFAULT_DATASET).model_overrides(),
    "compt-tiny": dict(d_model=32, n_layers=2, n_heads=4, n_dense=1, n_generator_layers=2, max_atoms=64),
}

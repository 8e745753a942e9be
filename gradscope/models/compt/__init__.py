"""The faithful CoMPT (Chen et al. 2021) as released: config, layers, communicative attention, readout.

::

    from gradscope.models.compt import CoMPTConfig, build_compt
    model = build_compt(CoMPTConfig(atom_dim=115, bond_dim=13, n_tasks=1))   # the released BBBP model
    logits = model(batch)                                                    # GraphBatch → [B, 1]
"""
from __future__ import annotations

from gradscope.models.compt.communicative import AffineEdges, CommunicativeAttention, attenuation_kernel
from gradscope.models.compt.config import DISTANCE_KERNELS, READOUTS, CoMPTConfig
from gradscope.models.compt.model import CoMPT, EncoderLayer, build_compt

__all__ = [
    "CoMPTConfig",
    "CoMPT",
    "build_compt",
    "CommunicativeAttention",
    "EncoderLayer",
    "AffineEdges",
    "attenuation_kernel",
    "DISTANCE_KERNELS",
    "READOUTS",
]

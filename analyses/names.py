"""Display names of the optimizers, for tables and figure legends.

The names a run is recorded under (``gradscope record --optimizer NAME``) are those of
:data:`gradscope.optim.registry.OPTIMIZERS` plus ``adam`` (a plain torch optimizer). This module
is the one place that turns them into the spelling of the papers; every table and figure of
:mod:`analyses` reads it.
"""
from __future__ import annotations

from gradscope.optim.registry import OPTIMIZERS

#: How each method is spelled in its paper (Wang et al. 2024 for GraphSAM and its ablations).
_DISPLAY: dict[str, str] = {
    "adam": "Adam", "sam": "SAM", "asam": "ASAM", "graphsam": "GraphSAM", "sam-one": "SAM-One",
    "sam-k": "SAM-k", "looksam": "LookSAM", "ae-sam": "AE-SAM", "rst": "RST",
    "graphsam-released": "GraphSAM (released code)",
}

#: Every recordable optimizer name, in display order (Adam first, then the registry's order).
OPTIMIZER_NAMES: tuple[str, ...] = ("adam", *OPTIMIZERS)


def display_name(optimizer_name: str) -> str:
    """``"sam-one"`` → ``"SAM-One"``; a name gradscope does not know is returned unchanged."""
    return _DISPLAY.get(optimizer_name, optimizer_name)

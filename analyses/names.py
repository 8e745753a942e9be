"""Display names of the optimizers, for tables and figure legends.

The names a run is recorded under (``gradscope record --optimizer NAME``) and their display
names (the spelling of the papers) are declared once, in the optimizer registry
(:mod:`gradscope.optim.registry`); this module is the analyses' one door to them.
"""
from __future__ import annotations

from gradscope.optim.registry import display_name, method_names

#: Every recordable optimizer name, in the registry's order (Adam first).
OPTIMIZER_NAMES: tuple[str, ...] = method_names()

__all__ = ["OPTIMIZER_NAMES", "display_name"]

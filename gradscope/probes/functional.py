"""Pure on-device measurements of gradient vectors: norms, cosines, step-to-step changes.

Every function takes and returns tensors and never reads a value back to the host, so a
training step that calls them never waits on the GPU (the idea of PyTorch's sync-free
``clip_grad_norm_``). Results are 0-d float32 tensors on the inputs' device.

Changes are computed directly, ‖a − b‖ = norm(a − b), and not from the identity
‖a − b‖² = ‖a‖² + ‖b‖² − 2a·b: for consecutive perturbation gradients that differ little
(GraphSAM's ε_{t+1} = β·ε_t + (1 − β)·ω_t/‖ω_t‖ with β = 0.99, or an ε reused unchanged
by SAM-One) the identity subtracts nearly equal float32 numbers and returns rounding noise
of order √(float32 eps)·‖a‖ ≈ 3e-4·‖a‖ where the true change is 0, exactly the regime that
Observation 1 of Wang et al. (2024) measures. :func:`change_` subtracts in place in the
buffer that holds the previous vector, which the caller overwrites next anyway, so the
direct way costs no extra memory.
"""
from __future__ import annotations

from typing import Sequence

import torch


def norm(x: torch.Tensor) -> torch.Tensor:
    """‖x‖₂ of a flat vector."""
    return torch.linalg.vector_norm(x)


def norms(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """‖x‖₂ of each tensor in one fused call (``torch._foreach_norm``)."""
    return list(torch._foreach_norm(list(tensors)))


def cosine_from(dot: torch.Tensor, norm_a: torch.Tensor, norm_b: torch.Tensor) -> torch.Tensor:
    """cos(a, b) = a·b / (‖a‖‖b‖), clamped to [−1, 1] against rounding.

    NaN when either vector is zero (0/0): the angle is not defined there.
    """
    return (dot / (norm_a * norm_b)).clamp(-1.0, 1.0)


def cosine(a: torch.Tensor, b: torch.Tensor, norm_a: torch.Tensor | None = None, norm_b: torch.Tensor | None = None) -> torch.Tensor:
    """cos(a, b) of two flat vectors; pass norms already computed to skip recomputing them."""
    return cosine_from(
        torch.dot(a, b),
        norm(a) if norm_a is None else norm_a,
        norm(b) if norm_b is None else norm_b,
    )


def change_(previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """‖current − previous‖₂, computed directly in place: ``previous`` holds previous − current afterwards."""
    return norm(previous.sub_(current))


def split_flat(flat: torch.Tensor, sizes: Sequence[int]) -> list[torch.Tensor]:
    """Views of consecutive pieces of ``flat`` of the given sizes (one per parameter tensor)."""
    return list(torch.split(flat, list(sizes)))


def gather_(flat_views: Sequence[torch.Tensor], tensors: Sequence[torch.Tensor | None]) -> None:
    """Copy each tensor into its view of a flat buffer (``None``: zeros), e.g. the gradients ``p.grad``.

    The views may be flat or shaped like the tensors (as :class:`gradscope.optim.flat.FlatLayout` makes them).
    """
    present = [(v, t.reshape(v.shape)) for v, t in zip(flat_views, tensors) if t is not None]
    missing = [v for v, t in zip(flat_views, tensors) if t is None]
    if present:
        dst, src = zip(*present)
        torch._foreach_copy_(list(dst), list(src))
    if missing:
        torch._foreach_zero_(missing)

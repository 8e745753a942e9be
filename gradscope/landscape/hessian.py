"""Hessian-vector products and gradients of the evaluation-set loss; power iteration on them.

The Hessian H = ∇²L(θ₀) of the evaluation-set loss is never formed: H·v comes from double
backward (Pearlmutter 1994, "Fast exact multiplication by the Hessian"): with g = ∇L(θ) built
with a graph, H·v = ∇(g·v). Power iteration (v ← Hv/‖Hv‖, λ = vᵀHv) converges to the eigenvalue of
largest *magnitude* — λ_max near a minimum, where H is (nearly) positive semi-definite; it is the
sharpness measure of Keskar et al. 2017 and of the SAM literature. Further eigenpairs come from
deflation: the j-th run iterates on H − Σ_{i<j} λ_i u_i u_iᵀ, and v is kept orthogonal to the
u_i found. Iteration stops after ``iters`` steps or when |λ_t − λ_{t−1}| <= tol·|λ_t|. Power
iteration gives the Hessian directions of a landscape (:func:`hessian_directions`); the reported
sharpness numbers — λ_max and λ_min as the largest and smallest *algebraic* eigenvalues, the
trace and the spectral density — come from :mod:`gradscope.landscape.spectrum`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from gradscope.errors import ConfigError
from gradscope.landscape.directions import Directions
from gradscope.landscape.functional import Batch, ForwardFn, FunctionalModel, LossFn, eval_mode
from gradscope.optim.flat import FlatLayout


@dataclass
class EigenResult:
    """Eigenpairs, largest magnitude first.

    Attributes:
        values: ``[k]`` eigenvalues (Rayleigh quotients at the last iterate).
        vectors: ``[k, P]`` unit eigenvectors in the layout's flat order.
        iterations: power iterations spent per eigenpair.
        converged: whether each met the tolerance before ``iters`` ran out.
    """

    values: np.ndarray
    vectors: torch.Tensor
    iterations: list[int]
    converged: list[bool]


def hessian_vector_product(fm: FunctionalModel, theta: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """H(θ)·v for the weighted evaluation-set loss of ``fm`` (double backward, batch by batch)."""
    theta = theta.detach().requires_grad_(True)
    out = torch.zeros_like(theta)
    with torch.enable_grad():
        for w, batch in zip(fm.weights, fm.batches):
            loss, _ = fm.batch_loss(fm.named(theta), batch)
            (g,) = torch.autograd.grad(w * loss, theta, create_graph=True)
            if not g.requires_grad:  # loss linear in θ: no curvature from this batch
                continue
            (hv,) = torch.autograd.grad(g, theta, grad_outputs=v, allow_unused=True)
            if hv is not None:
                out += hv
    return out.detach()


def loss_and_gradient(fm: FunctionalModel, theta: torch.Tensor) -> tuple[float, torch.Tensor]:
    """L(θ) and ∇L(θ) of the weighted evaluation-set loss of ``fm`` (backward batch by batch)."""
    theta = theta.detach().requires_grad_(True)
    grad = torch.zeros_like(theta)
    total = 0.0
    with torch.enable_grad():
        for w, batch in zip(fm.weights, fm.batches):
            loss, _ = fm.batch_loss(fm.named(theta), batch)
            (g,) = torch.autograd.grad(w * loss, theta, allow_unused=True)
            if g is not None:
                grad += g
            total += w * float(loss.detach().double())
    return total, grad.detach()


def _orthogonalize(v: torch.Tensor, basis: list[torch.Tensor]) -> torch.Tensor:
    for u in basis:
        v = v - torch.dot(u, v) * u
    return v


def power_iteration(
    fm: FunctionalModel,
    k: int = 1,
    *,
    iters: int = 100,
    tol: float = 1e-4,
    seed: int = 0,
) -> EigenResult:
    """The ``k`` eigenpairs of largest magnitude of the Hessian of ``fm``'s loss at θ₀ (deflation)."""
    if k < 1:
        raise ConfigError(f"k must be positive, got {k}")
    if iters < 1:
        raise ConfigError(f"iters must be positive, got {iters}")
    theta = fm.origin()
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    values: list[float] = []
    vectors: list[torch.Tensor] = []
    iterations: list[int] = []
    converged: list[bool] = []
    with eval_mode(fm.model):
        for _ in range(k):
            v = torch.randn(theta.numel(), generator=gen, dtype=theta.dtype).to(theta.device)
            v = _orthogonalize(v, vectors)
            v = v / torch.linalg.vector_norm(v)
            lam_prev: float | None = None
            lam = 0.0
            done = False
            it = 0
            for it in range(1, iters + 1):
                w = hessian_vector_product(fm, theta, v)
                for lam_i, u in zip(values, vectors):
                    w = w - lam_i * torch.dot(u, v) * u
                lam = float(torch.dot(v, w))
                w = _orthogonalize(w, vectors)
                w_norm = float(torch.linalg.vector_norm(w))
                if w_norm == 0.0:  # v is in the null space: eigenvalue 0
                    lam, done = 0.0, True
                    break
                v = w / w_norm
                if lam_prev is not None and abs(lam - lam_prev) <= tol * abs(lam):
                    done = True
                    break
                lam_prev = lam
            values.append(lam)
            vectors.append(v)
            iterations.append(it)
            converged.append(done)
    return EigenResult(np.array(values), torch.stack(vectors), iterations, converged)


def top_eigenpairs(
    model: nn.Module,
    batches: Sequence[Batch],
    loss_fn: LossFn,
    k: int = 1,
    *,
    forward: ForwardFn | None = None,
    batch_weights: Sequence[float] | None = None,
    layout: FlatLayout | None = None,
    iters: int = 100,
    tol: float = 1e-4,
    seed: int = 0,
) -> EigenResult:
    """The ``k`` largest-magnitude Hessian eigenpairs of the evaluation-set loss at ``model``'s θ."""
    fm = FunctionalModel(model, batches, loss_fn, forward=forward, layout=layout, batch_weights=batch_weights)
    return power_iteration(fm, k, iters=iters, tol=tol, seed=seed)


def top_eigenvalue(
    model: nn.Module,
    batches: Sequence[Batch],
    loss_fn: LossFn,
    *,
    forward: ForwardFn | None = None,
    batch_weights: Sequence[float] | None = None,
    iters: int = 100,
    tol: float = 1e-4,
    seed: int = 0,
) -> float:
    """λ_max: the Hessian eigenvalue of largest magnitude at ``model``'s θ (power iteration)."""
    res = top_eigenpairs(
        model, batches, loss_fn, 1, forward=forward, batch_weights=batch_weights, iters=iters, tol=tol, seed=seed
    )
    return float(res.values[0])


def hessian_directions(
    model: nn.Module,
    batches: Sequence[Batch],
    loss_fn: LossFn,
    k: int = 2,
    *,
    forward: ForwardFn | None = None,
    batch_weights: Sequence[float] | None = None,
    iters: int = 100,
    tol: float = 1e-4,
    seed: int = 0,
) -> Directions:
    """The top-``k`` Hessian eigenvectors as (unit-norm, un-normalized) landscape directions.

    Coordinates along them are in parameter-space units; the eigenvalues are kept with them.
    """
    res = top_eigenpairs(
        model, batches, loss_fn, k, forward=forward, batch_weights=batch_weights, iters=iters, tol=tol, seed=seed
    )
    layout = FlatLayout.from_module(model)
    return Directions(
        vectors=res.vectors, layout=layout, kind="hessian", normalization="none",
        eigenvalues=tuple(float(x) for x in res.values),
    )

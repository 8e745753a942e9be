"""Sharpness numbers of one parameter set.

The measures researchers compare (PyHessian's set, Yao et al. 2020, and SAM's own):

* **random-direction sharpness** — the loss increase L(θ + r·d) − L(θ) over ``n`` random
  directions d normalized like the landscape's (filter-wise by default, Li et al. 2018), as mean
  and max: the worst case SAM bounds (Foret et al. 2021, eq. 1), sampled at random;
* **ρ-sharpness** — max_{‖δ‖₂ ≤ ρ} L(θ + δ) − L(θ), estimated the way SAM does: one ascent step
  δ = ρ·g/‖g‖ along the normalized gradient g = ∇L(θ) (Foret et al. 2021, eq. 2), optionally
  followed by projected normalized-gradient ascent steps δ ← Π_ρ(δ + ρ·∇L(θ+δ)/‖∇L(θ+δ)‖)
  (Π_ρ: back onto the ball). Every iterate lies in the ball, so each value is a lower bound of
  the maximum; the best one is reported;
* **Hessian spectrum** (:mod:`gradscope.landscape.spectrum`) — λ_max and λ_min, the largest and
  smallest *algebraic* eigenvalues, the top-k eigenvalues, Hutchinson's trace estimate and the
  eigenvalue density by stochastic Lanczos quadrature (Ghorbani et al. 2019).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from gradscope.landscape.directions import random_directions
from gradscope.landscape.evaluate import LandscapeEvaluator
from gradscope.landscape.functional import Batch, ForwardFn, FunctionalModel, LossFn, eval_mode
from gradscope.landscape.hessian import hessian_vector_product, loss_and_gradient
from gradscope.landscape.settings import SharpnessSettings
from gradscope.landscape.spectrum import (
    ExtremeEigenvalues,
    SpectralDensity,
    TraceEstimate,
    extreme_eigenvalues,
    hutchinson_trace,
    spectral_density,
)


@dataclass(frozen=True)
class RhoSharpness:
    """ρ-sharpness by normalized-gradient ascent: ``values[k]`` = L(θ + δ_k) − L(θ) after step k+1."""

    rho: float
    values: np.ndarray

    @property
    def value(self) -> float:
        """The best (largest) increase found: the estimate of max_{‖δ‖ ≤ ρ} L(θ+δ) − L(θ)."""
        return float(np.max(self.values))


def _ascent_direction(grad: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """grad/‖grad‖, or a seeded random unit vector where the gradient vanishes (an exact minimum)."""
    norm = torch.linalg.vector_norm(grad)
    if float(norm) > 0.0:
        return grad / norm
    r = torch.randn(grad.shape, generator=generator, dtype=grad.dtype).to(grad.device)
    return r / torch.linalg.vector_norm(r)


def rho_sharpness(fm: FunctionalModel, rho: float, steps: int = 1, *, seed: int = 0) -> RhoSharpness:
    """max_{‖δ‖ ≤ ρ} L(θ₀ + δ) − L(θ₀) estimated by ``steps`` normalized ascent steps (see module docstring)."""
    generator = torch.Generator().manual_seed(int(seed))
    with eval_mode(fm.model):
        theta = fm.origin()
        base, grad = loss_and_gradient(fm, theta)
        delta = torch.zeros_like(theta)
        values = []
        for _ in range(steps):
            delta = delta + rho * _ascent_direction(grad, generator)
            norm = float(torch.linalg.vector_norm(delta))
            if norm > rho:
                delta = delta * (rho / norm)
            loss, grad = loss_and_gradient(fm, theta + delta)
            values.append(loss - base)
    return RhoSharpness(float(rho), np.asarray(values))


@dataclass(frozen=True)
class Sharpness:
    """Sharpness of one parameter set (``None`` where a measure was not computed).

    Attributes:
        loss: L(θ) over the evaluation set.
        radius: r of the random-direction sharpness.
        increases: ``[n]`` L(θ + r·d_i) − L(θ) per random direction; mean_increase, max_increase.
        lambda_max, lambda_min: the largest and smallest algebraic Hessian eigenvalues.
        top_eigenvalues: the k largest algebraic eigenvalues, λ_max first.
        lambda_iterations: Lanczos steps (Hessian-vector products) spent on them;
        lambda_converged: whether all met the residual tolerance.
        trace, trace_stderr: Hutchinson's estimate of tr(H) and its standard error.
        rho, rho_sharpness: the ball radius ρ and the estimate of max_{‖δ‖≤ρ} L(θ+δ) − L(θ);
        rho_values: the increase after each ascent step.
        density: the stochastic-Lanczos-quadrature nodes and weights.
    """

    loss: float
    radius: float
    increases: np.ndarray
    mean_increase: float
    max_increase: float
    lambda_max: float | None = None
    lambda_iterations: int | None = None
    lambda_converged: bool | None = None
    lambda_min: float | None = None
    top_eigenvalues: tuple[float, ...] | None = None
    trace: float | None = None
    trace_stderr: float | None = None
    rho: float | None = None
    rho_sharpness: float | None = None
    rho_values: np.ndarray | None = None
    density: SpectralDensity | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every number as plain JSON values (arrays as lists); the density is left to HDF5."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "density":
                continue
            if isinstance(value, (np.ndarray, tuple)):
                value = [float(x) for x in value]
            out[f.name] = value
        return out


def _random_part(ev: LandscapeEvaluator, model: nn.Module, s: SharpnessSettings, progress: bool) -> tuple[float, np.ndarray]:
    """L(θ) and the increases along ``s.n_directions`` normalized random directions at radius r."""
    dirs = random_directions(
        model, s.n_directions, seed=s.seed, normalization=s.normalization, include_1d=s.include_1d, layout=ev.layout
    )
    coeffs = np.vstack([np.zeros((1, s.n_directions)), s.radius * np.eye(s.n_directions)])
    res = ev.evaluate(dirs.vectors, coeffs, progress=progress, desc="sharpness")
    return float(res.loss[0]), res.loss[1:] - float(res.loss[0])


def _spectrum_part(fm: FunctionalModel, s: SharpnessSettings) -> tuple[ExtremeEigenvalues, TraceEstimate | None,
                                                                       SpectralDensity | None]:
    """λ_max … λ_k, λ_min, the trace and the density of the Hessian at θ₀ (as ``s`` asks)."""
    with eval_mode(fm.model):
        theta = fm.origin()

        def hvp(v: torch.Tensor) -> torch.Tensor:
            return hessian_vector_product(fm, theta, v)

        eig = extreme_eigenvalues(hvp, theta, s.top_k, steps=s.hessian_iters, tol=s.hessian_tol, seed=s.seed)
        trace = hutchinson_trace(hvp, theta, s.trace_probes, seed=s.seed) if s.trace_probes else None
        density = (spectral_density(hvp, theta, s.density_runs, s.density_steps, seed=s.seed)
                   if s.density_runs else None)
    return eig, trace, density


def measure_sharpness(
    model: nn.Module,
    batches: Sequence[Batch],
    loss_fn: LossFn,
    settings: SharpnessSettings | None = None,
    *,
    forward: ForwardFn | None = None,
    batch_weights: Sequence[float] | None = None,
    progress: bool = False,
) -> Sharpness:
    """Random-direction sharpness, ρ-sharpness and (``settings.hessian``) the Hessian measures."""
    s = settings or SharpnessSettings()
    ev = LandscapeEvaluator(
        model, batches, loss_fn, forward=forward, batch_weights=batch_weights, chunk_size=s.chunk_size,
        max_chunk_size=s.max_chunk_size, memory_budget_mb=s.memory_budget_mb, mode=s.mode,
    )
    base, inc = _random_part(ev, model, s, progress)
    extra: dict[str, Any] = {}
    if s.rho_steps:
        rho = rho_sharpness(ev.fm, s.rho, s.rho_steps, seed=s.seed)
        extra.update(rho=rho.rho, rho_sharpness=rho.value, rho_values=rho.values)
    if s.hessian:
        eig, trace, density = _spectrum_part(ev.fm, s)
        extra.update(lambda_max=eig.maximum, lambda_min=eig.minimum, top_eigenvalues=tuple(float(x) for x in eig.top),
                     lambda_iterations=eig.steps, lambda_converged=eig.converged, density=density)
        if trace is not None:
            extra.update(trace=trace.mean, trace_stderr=trace.stderr)
    return Sharpness(loss=base, radius=s.radius, increases=inc, mean_increase=float(inc.mean()),
                     max_increase=float(inc.max()), **extra)


def compare_sharpness(
    models: Mapping[str, nn.Module],
    batches: Sequence[Batch],
    loss_fn: LossFn,
    settings: SharpnessSettings | None = None,
    *,
    forward: ForwardFn | None = None,
    batch_weights: Sequence[float] | None = None,
    progress: bool = False,
) -> dict[str, Sharpness]:
    """:func:`measure_sharpness` of several parameter sets with the same settings (same seed)."""
    return {
        label: measure_sharpness(
            m, batches, loss_fn, settings, forward=forward, batch_weights=batch_weights, progress=progress
        )
        for label, m in models.items()
    }

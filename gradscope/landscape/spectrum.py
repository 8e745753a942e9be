"""The Hessian's spectrum from Hessian-vector products: Lanczos, extreme eigenvalues, trace, density.

The Hessian H = ∇²L(θ₀) of the evaluation-set loss is never formed; every method here only
calls ``hvp(v) = H·v`` (double backward, :func:`gradscope.landscape.hessian.hessian_vector_product`).
These are the measures of PyHessian (Yao et al. 2020, "PyHessian: Neural Networks Through the
Lens of the Hessian"):

* :func:`lanczos` — m steps of the Lanczos process (Lanczos 1950) with full
  re-orthogonalization: an orthonormal Krylov basis V and the tridiagonal T = VᵀHV whose
  eigenvalues (Ritz values) approximate H's, the extreme ones first (Golub & Van Loan, §10.1).
  When the Krylov space becomes invariant (β ≈ 0) the process restarts from a fresh random
  vector orthogonal to V, so repeated eigenvalues are found too.
* :func:`extreme_eigenvalues` — the k largest *algebraic* eigenvalues (λ_max first) and the
  smallest one λ_min, Lanczos run until the residual bound β_m·|s_{m,i}| of each wanted Ritz pair
  is below ``tol``·max|θ|. Unlike power iteration, which finds the eigenvalue of largest
  magnitude, this reports a negative λ_min as λ_min and never as λ_max.
* :func:`hutchinson_trace` — tr(H) ≈ mean of vᵀHv over Rademacher probes v (Hutchinson 1989),
  an unbiased estimate, with its standard error.
* :func:`spectral_density` — stochastic Lanczos quadrature (Ghorbani, Krishnan & Xiao 2019,
  "An Investigation into Neural Net Optimization via Hessian Eigenvalue Density"; Lin, Saad &
  Yang 2016): per random unit vector v, Lanczos from v gives nodes θ_i (Ritz values) and
  weights τ_i = (first component of T's i-th eigenvector)², a Gauss quadrature of the spectral
  measure of (H, v): Σ τ_i f(θ_i) = vᵀf(H)v exactly for polynomials f of degree < 2m. Averaged
  over v it estimates the eigenvalue density (1/P)Σ δ(λ − λ_j).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from gradscope.errors import ConfigError

Hvp = Callable[[torch.Tensor], torch.Tensor]
"""``hvp(v) -> H·v`` for a flat vector v (the same shape, dtype and device)."""

#: β below this fraction of the largest |α| seen means the Krylov space is invariant.
_BREAKDOWN = 1e-10


@dataclass
class LanczosResult:
    """The tridiagonal T = VᵀHV of m Lanczos steps (``alphas`` [m], ``betas`` [m−1]).

    ``next_beta`` is ‖r_m‖ of the residual after the last step (the coupling to the next
    Lanczos vector), which bounds the Ritz pairs' residuals.
    """

    alphas: np.ndarray
    betas: np.ndarray
    next_beta: float

    @property
    def steps(self) -> int:
        return int(self.alphas.shape[0])

    def tridiagonal(self) -> np.ndarray:
        """T as a dense ``[m, m]`` float64 matrix."""
        return np.diag(self.alphas) + np.diag(self.betas, 1) + np.diag(self.betas, -1)

    def ritz(self) -> tuple[np.ndarray, np.ndarray]:
        """Ritz values (ascending) and T's orthonormal eigenvectors (columns)."""
        return np.linalg.eigh(self.tridiagonal())

    def residuals(self) -> np.ndarray:
        """‖H V s_i − θ_i V s_i‖ = next_beta·|s_{m,i}| per Ritz pair (ascending order)."""
        _, vectors = self.ritz()
        return abs(self.next_beta) * np.abs(vectors[-1, :])


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / torch.linalg.vector_norm(v)


def _orthogonalize(w: torch.Tensor, basis: list[torch.Tensor]) -> torch.Tensor:
    """w minus its components along the (orthonormal) basis, twice ("twice is enough")."""
    if basis:
        v = torch.stack(basis)
        for _ in range(2):
            w = w - v.T @ (v @ w)
    return w


def _random_like(v: torch.Tensor, generator: torch.Generator, rademacher: bool = False) -> torch.Tensor:
    """A seeded random vector like ``v`` (drawn on the CPU, so the same on every device)."""
    if rademacher:
        r = torch.randint(0, 2, v.shape, generator=generator).to(v.dtype) * 2 - 1
    else:
        r = torch.randn(v.shape, generator=generator, dtype=v.dtype)
    return r.to(v.device)


def lanczos(
    hvp: Hvp,
    start: torch.Tensor,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    stop: Callable[[LanczosResult], bool] | None = None,
) -> LanczosResult:
    """``steps`` Lanczos steps on H from ``start`` (normalized), fully re-orthogonalized.

    ``stop(partial_result)`` is asked after every step and ends the process early when true.
    The process also ends when the basis spans the whole space (m = P).
    """
    if steps < 1:
        raise ConfigError(f"Lanczos needs at least one step, got {steps}")
    generator = generator or torch.Generator().manual_seed(0)
    size = start.numel()
    basis = [_unit(start.reshape(-1))]
    alphas: list[float] = []
    betas: list[float] = []
    scale = 0.0
    while True:
        v = basis[-1]
        w = hvp(v).reshape(-1)
        alpha = float(torch.dot(v, w))
        w = _orthogonalize(w, basis)
        beta = float(torch.linalg.vector_norm(w))
        alphas.append(alpha)
        scale = max(scale, abs(alpha), beta)
        result = LanczosResult(np.array(alphas), np.array(betas), beta)
        if len(alphas) >= min(steps, size) or (stop is not None and stop(result)):
            return result
        if beta <= _BREAKDOWN * max(scale, 1e-300):  # invariant subspace: restart orthogonally
            beta = 0.0
            w = _orthogonalize(_random_like(v, generator), basis)
        betas.append(beta)
        basis.append(_unit(w))


@dataclass
class ExtremeEigenvalues:
    """The k largest algebraic eigenvalues (descending: ``top[0]`` = λ_max) and λ_min.

    Attributes:
        top: ``[k]`` Ritz values, largest first.
        minimum: the smallest Ritz value λ_min.
        steps: Lanczos steps spent (Hessian-vector products).
        converged: whether every reported value met the residual tolerance.
        residuals: the residual bounds of ``top`` then of ``minimum``.
    """

    top: np.ndarray
    minimum: float
    steps: int
    converged: bool
    residuals: np.ndarray

    @property
    def maximum(self) -> float:
        return float(self.top[0])


def _wanted(result: LanczosResult, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(top-k values descending, λ_min, their residual bounds) of a Lanczos result."""
    values, _ = result.ritz()
    res = result.residuals()
    top = values[::-1][:k]
    return top, values[0], np.concatenate([res[::-1][:k], res[:1]])


def extreme_eigenvalues(hvp: Hvp, like: torch.Tensor, k: int = 1, *, steps: int = 100, tol: float = 1e-4,
                        seed: int = 0) -> ExtremeEigenvalues:
    """λ_max … λ_k (largest algebraic, descending) and λ_min of H by Lanczos (see module docstring).

    Stops when every wanted Ritz pair's residual bound is ≤ ``tol``·max|θ| (at least k + 1 steps,
    so that λ_min and λ_max come from different Ritz values where the space allows), or after
    ``steps`` steps.
    """
    if k < 1:
        raise ConfigError(f"k must be positive, got {k}")
    generator = torch.Generator().manual_seed(int(seed))

    def converged(result: LanczosResult) -> bool:
        if result.steps < min(k + 1, like.numel()):
            return False
        top, low, res = _wanted(result, k)
        return bool((res <= tol * max(abs(top[0]), abs(low), 1e-30)).all())

    result = lanczos(hvp, _random_like(like, generator), max(steps, k + 1), generator=generator, stop=converged)
    top, low, res = _wanted(result, k)
    if top.shape[0] < k:
        raise ConfigError(f"asked for {k} eigenvalues of a {like.numel()}-parameter Hessian")
    return ExtremeEigenvalues(top=top, minimum=float(low), steps=result.steps, converged=converged(result),
                              residuals=res)


@dataclass
class TraceEstimate:
    """Hutchinson's estimate of tr(H): the mean of vᵀHv over ``samples`` and its standard error."""

    mean: float
    stderr: float
    samples: np.ndarray


def hutchinson_trace(hvp: Hvp, like: torch.Tensor, probes: int = 20, *, seed: int = 0) -> TraceEstimate:
    """tr(H) ≈ (1/n) Σ vᵢᵀHvᵢ over n seeded Rademacher vectors (Hutchinson 1989), unbiased.

    The standard error is the sample standard deviation over √n (NaN for one probe); the
    variance of one probe is 2(‖H‖_F² − Σ H_ii²).
    """
    if probes < 1:
        raise ConfigError(f"probes must be positive, got {probes}")
    generator = torch.Generator().manual_seed(int(seed))
    samples = []
    for _ in range(probes):
        v = _random_like(like.reshape(-1), generator, rademacher=True)
        samples.append(float(torch.dot(v, hvp(v).reshape(-1))))
    values = np.asarray(samples)
    stderr = float(values.std(ddof=1) / np.sqrt(probes)) if probes > 1 else float("nan")
    return TraceEstimate(float(values.mean()), stderr, values)


@dataclass
class SpectralDensity:
    """Stochastic Lanczos quadrature: per run, nodes (Ritz values) and weights (summing to 1).

    Attributes:
        nodes: ``[runs, m]`` Ritz values of each run (m = Lanczos steps).
        weights: ``[runs, m]`` squared first components of T's eigenvectors.
    """

    nodes: np.ndarray
    weights: np.ndarray

    def moment(self, k: int) -> float:
        """The estimate of (1/P) Σ_j λ_j^k = tr(H^k)/P: mean over runs of Σ_i τ_i θ_i^k."""
        return float(np.mean(np.sum(self.weights * self.nodes ** k, axis=1)))

    def default_sigma(self) -> float:
        """1 % of the span of the nodes (1e-3 when they all coincide)."""
        span = float(self.nodes.max() - self.nodes.min())
        return 0.01 * span if span > 0 else 1e-3

    def density(self, grid: np.ndarray, sigma: float | None = None) -> np.ndarray:
        """The density smoothed by a Gaussian of width ``sigma`` on ``grid`` (integrates to ≈ 1)."""
        sigma = self.default_sigma() if sigma is None else float(sigma)
        if not sigma > 0:
            raise ConfigError(f"sigma must be positive, got {sigma}")
        diff = np.asarray(grid, dtype=np.float64)[:, None] - self.nodes.reshape(-1)[None, :]
        kernel = np.exp(-0.5 * (diff / sigma) ** 2) / (sigma * np.sqrt(2.0 * np.pi))
        return kernel @ self.weights.reshape(-1) / self.nodes.shape[0]

    def grid(self, points: int = 400, sigma: float | None = None) -> np.ndarray:
        """Evenly spaced points covering the nodes ± 4σ."""
        sigma = self.default_sigma() if sigma is None else float(sigma)
        return np.linspace(self.nodes.min() - 4 * sigma, self.nodes.max() + 4 * sigma, points)


def quadrature(result: LanczosResult) -> tuple[np.ndarray, np.ndarray]:
    """Gauss quadrature nodes and weights of one Lanczos run (weights sum to 1)."""
    values, vectors = result.ritz()
    return values, vectors[0, :] ** 2


def spectral_density(hvp: Hvp, like: torch.Tensor, runs: int = 1, steps: int = 30, *,
                     seed: int = 0) -> SpectralDensity:
    """SLQ (Ghorbani et al. 2019): ``runs`` Lanczos runs of ``min(steps, P)`` steps, each from a
    seeded Rademacher vector; one row of nodes and weights per run."""
    if runs < 1:
        raise ConfigError(f"runs must be positive, got {runs}")
    generator = torch.Generator().manual_seed(int(seed))
    m = min(steps, like.numel())
    rows = [quadrature(lanczos(hvp, _random_like(like.reshape(-1), generator, rademacher=True), m,
                               generator=generator)) for _ in range(runs)]
    return SpectralDensity(np.stack([n for n, _ in rows]), np.stack([w for _, w in rows]))

"""Lanczos eigenvalues, Hutchinson's trace, SLQ density and ρ-sharpness against explicit Hessians."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gradscope.landscape import (
    FunctionalModel,
    SharpnessSettings,
    extreme_eigenvalues,
    hessian_vector_product,
    hutchinson_trace,
    lanczos,
    measure_sharpness,
    rho_sharpness,
    spectral_density,
    top_eigenvalue,
)
from gradscope.landscape.spectrum import quadrature
from kit.landscape import (Quadratic, ce_loss, explicit_hessian, explicit_loss, flat_params, quadratic_loss,
                            symmetric_with_eigenvalues, tiny_batches, tiny_model)

BATCH = [torch.zeros(1)]  # the quadratic ignores its input


def _hvp(fm: FunctionalModel):
    theta = fm.origin()
    return (lambda v: hessian_vector_product(fm, theta, v)), theta


def _quadratic(values, seed=0, theta0=None, b=None):
    a = symmetric_with_eigenvalues(values, seed)
    theta0 = torch.zeros(len(values), dtype=torch.float64) if theta0 is None else theta0
    return a, FunctionalModel(Quadratic(theta0), BATCH, quadratic_loss(a, b))


def test_lambda_max_is_the_largest_algebraic_eigenvalue() -> None:
    """A saddle whose most negative eigenvalue dominates in magnitude: power iteration reports −5,
    the sharpness measure must report λ_max = 3 and λ_min = −5."""
    values = [-5.0, -0.5, 0.0, 1.0, 2.0, 3.0]
    a, fm = _quadratic(values)
    hvp, theta = _hvp(fm)
    eig = extreme_eigenvalues(hvp, theta, k=3, tol=1e-12)
    np.testing.assert_allclose(eig.top, [3.0, 2.0, 1.0], rtol=1e-10)
    assert eig.maximum == pytest.approx(3.0) and eig.minimum == pytest.approx(-5.0) and eig.converged
    assert top_eigenvalue(Quadratic(theta), BATCH, quadratic_loss(a), iters=200, tol=1e-12) == pytest.approx(-5.0)


def test_tiny_mlp_eigenvalues_match_the_explicit_hessian() -> None:
    model, batches = tiny_model(), tiny_batches()
    exact = torch.linalg.eigvalsh(explicit_hessian(model, batches)).numpy()
    fm = FunctionalModel(model, batches, ce_loss)
    hvp, theta = _hvp(fm)
    eig = extreme_eigenvalues(hvp, theta, k=4, steps=200, tol=1e-10, seed=1)
    np.testing.assert_allclose(eig.top, exact[::-1][:4], rtol=1e-5, atol=1e-10)
    assert eig.minimum == pytest.approx(exact[0], rel=1e-5, abs=1e-10)
    assert eig.converged and eig.steps <= theta.numel()


def test_lanczos_restarts_and_finds_repeated_eigenvalues() -> None:
    values = [2.0, 2.0, 2.0, -1.0, 0.5]  # a start vector's Krylov space misses two of the three 2s
    _, fm = _quadratic(values, seed=3)
    hvp, theta = _hvp(fm)
    result = lanczos(hvp, torch.ones_like(theta), steps=5)
    ritz, _ = result.ritz()
    np.testing.assert_allclose(np.sort(ritz), np.sort(values), atol=1e-10)


def test_hutchinson_is_unbiased_within_its_standard_error() -> None:
    a, fm = _quadratic([-1.0, 0.5, 2.0, 3.0, 6.0, 9.0], seed=8)
    hvp, theta = _hvp(fm)
    probes = 1000
    est = hutchinson_trace(hvp, theta, probes, seed=2)
    var_one = 2.0 * float((a**2).sum() - (torch.diagonal(a) ** 2).sum())  # Var(vᵀAv), Rademacher v
    sigma = math.sqrt(var_one / probes)
    assert abs(est.mean - float(torch.trace(a))) <= 4 * sigma
    assert 0.8 * sigma <= est.stderr <= 1.2 * sigma
    np.testing.assert_allclose(est.samples[:3], [float(v @ a @ v) for v in _rademacher(theta, 2, 3)], rtol=1e-9)


def test_hutchinson_on_the_tiny_mlp() -> None:
    model, batches = tiny_model(), tiny_batches()
    h = explicit_hessian(model, batches)
    hvp, theta = _hvp(FunctionalModel(model, batches, ce_loss))
    est = hutchinson_trace(hvp, theta, 200, seed=3)
    var_one = 2.0 * float((h**2).sum() - (torch.diagonal(h) ** 2).sum())
    assert abs(est.mean - float(torch.trace(h))) <= 4 * math.sqrt(var_one / 200)


def _rademacher(like: torch.Tensor, seed: int, n: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 2, like.shape, generator=g).to(like.dtype) * 2 - 1 for _ in range(n)]


def test_quadrature_is_exact_for_low_degree_moments() -> None:
    """Gauss quadrature from m Lanczos steps integrates λ^k exactly for k < 2m: Σ τθ^k = vᵀH^kv/vᵀv."""
    model, batches = tiny_model(), tiny_batches()
    h = explicit_hessian(model, batches)
    hvp, theta = _hvp(FunctionalModel(model, batches, ce_loss))
    v = torch.randn(theta.shape, generator=torch.Generator().manual_seed(4), dtype=theta.dtype)
    nodes, weights = quadrature(lanczos(hvp, v, steps=4))
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)
    for k in range(8):
        want = float(v @ torch.linalg.matrix_power(h, k) @ v / (v @ v))
        assert float(np.sum(weights * nodes**k)) == pytest.approx(want, rel=1e-7, abs=1e-12)


def test_density_moments_match_the_eigenvalues() -> None:
    values = np.array([-1.0, 0.2, 0.5, 1.5, 3.0, 4.0, 6.0, 7.5])
    a, fm = _quadratic(values, seed=5)
    hvp, theta = _hvp(fm)
    runs = 150
    slq = spectral_density(hvp, theta, runs=runs, steps=len(values), seed=6)
    np.testing.assert_allclose(np.sort(slq.nodes[0]), values, atol=1e-10)  # m = P: every eigenvalue is a node
    for k in (1, 2, 3):
        m = torch.linalg.matrix_power(a, k)
        var_one = 2.0 * float((m**2).sum() - (torch.diagonal(m) ** 2).sum()) / len(values) ** 2
        assert abs(slq.moment(k) - np.mean(values**k)) <= 4 * math.sqrt(var_one / runs)
    grid = slq.grid(2000)
    dens = slq.density(grid)
    assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=1e-3)
    assert slq.moment(0) == pytest.approx(1.0)


def test_rho_sharpness_one_step_matches_an_explicit_ascent() -> None:
    model, batches = tiny_model(), tiny_batches()
    theta = flat_params(model).requires_grad_(True)
    (g,) = torch.autograd.grad(explicit_loss(theta, batches), theta)
    rho = 0.05
    want = float(explicit_loss(theta.detach() + rho * g / g.norm(), batches) - explicit_loss(theta.detach(), batches))
    got = rho_sharpness(FunctionalModel(model, batches, ce_loss), rho)
    assert got.values.shape == (1,) and got.value == pytest.approx(want, rel=1e-10)


def test_rho_sharpness_on_a_quadratic() -> None:
    """One step: ρ‖g‖ + ½ρ² ĝᵀAĝ exactly; at a minimum, projected ascent reaches ½ρ²λ_max(A)."""
    values = [0.3, 1.0, 4.0]
    a = symmetric_with_eigenvalues(values, 7)
    theta0 = torch.tensor([0.2, -0.1, 0.4], dtype=torch.float64)
    fm = FunctionalModel(Quadratic(theta0), BATCH, quadratic_loss(a))
    g = a @ theta0
    rho = 0.1
    one = rho_sharpness(fm, rho).value
    assert one == pytest.approx(rho * float(g.norm()) + 0.5 * rho**2 * float(g @ a @ g / (g @ g)), rel=1e-10)
    at_min = FunctionalModel(Quadratic(torch.zeros(3, dtype=torch.float64)), BATCH, quadratic_loss(a))
    best = 0.5 * rho**2 * max(values)
    many = rho_sharpness(at_min, rho, steps=100, seed=1)
    assert many.value == pytest.approx(best, rel=1e-8)
    assert (many.values <= best * (1 + 1e-12)).all()  # every iterate stays in the ball


def test_measure_sharpness_reports_every_measure() -> None:
    model, batches = tiny_model(), tiny_batches()
    exact = torch.linalg.eigvalsh(explicit_hessian(model, batches)).numpy()
    s = SharpnessSettings(n_directions=3, top_k=2, hessian_iters=200, hessian_tol=1e-10, trace_probes=100,
                          density_runs=2, density_steps=26, rho=0.05, rho_steps=3)
    sharp = measure_sharpness(model, batches, ce_loss, s)
    assert sharp.lambda_max == pytest.approx(exact[-1], rel=1e-5) and sharp.lambda_min == pytest.approx(exact[0], rel=1e-5)
    np.testing.assert_allclose(sharp.top_eigenvalues, exact[::-1][:2], rtol=1e-5)
    assert abs(sharp.trace - exact.sum()) <= 5 * sharp.trace_stderr
    assert sharp.rho == 0.05 and sharp.rho_values.shape == (3,) and sharp.rho_sharpness == sharp.rho_values.max()
    assert sharp.density is not None and sharp.density.nodes.shape == (2, 26)
    summary = json.loads(json.dumps(sharp.to_dict()))
    assert summary["lambda_max"] == sharp.lambda_max and len(summary["top_eigenvalues"]) == 2
    assert "density" not in summary
    plain = measure_sharpness(model, batches, ce_loss, SharpnessSettings(hessian=False, rho_steps=0))
    assert plain.lambda_max is None and plain.trace is None and plain.rho_sharpness is None

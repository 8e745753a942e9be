"""Hessian-vector products, power iteration and sharpness against explicit references."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.autograd.functional import hessian
from torch.func import functional_call

from gradscope.landscape import (
    FunctionalModel,
    SharpnessSettings,
    hessian_directions,
    hessian_vector_product,
    measure_sharpness,
    random_directions,
    top_eigenpairs,
    top_eigenvalue,
)
from kit.landscape import (ce_loss, classification_batches, explicit_hessian, explicit_loss, flat_params,
                            reference_loss, tiny_batches, tiny_model)


def test_explicit_reference_is_the_model() -> None:
    model, batches = tiny_model(), tiny_batches()
    theta = flat_params(model)
    assert float(explicit_loss(theta, batches)) == pytest.approx(reference_loss(model, batches, ce_loss, theta), rel=1e-12)


def test_hvp_equals_explicit_hessian_times_v() -> None:
    model, batches = tiny_model(), tiny_batches()
    fm = FunctionalModel(model, batches, ce_loss)
    h = explicit_hessian(model, batches)
    v = torch.randn(h.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(hessian_vector_product(fm, fm.origin(), v), h @ v, rtol=1e-10, atol=1e-12)


def test_lambda_max_equals_explicit_hessian_eigenvalue() -> None:
    model, batches = tiny_model(), tiny_batches()
    eig = torch.linalg.eigvalsh(explicit_hessian(model, batches))
    top = eig[eig.abs().argmax()].item()
    lam = top_eigenvalue(model, batches, ce_loss, iters=2000, tol=1e-10)
    assert lam == pytest.approx(top, rel=1e-6)


def test_top_k_with_deflation_matches_explicit_spectrum() -> None:
    model, batches = tiny_model(), tiny_batches()
    vals, vecs = torch.linalg.eigh(explicit_hessian(model, batches))
    order = vals.abs().argsort(descending=True)
    res = top_eigenpairs(model, batches, ce_loss, 3, iters=5000, tol=1e-12)
    np.testing.assert_allclose(res.values, vals[order[:3]].numpy(), rtol=1e-5)
    for i in range(3):
        cos = torch.dot(res.vectors[i], vecs[:, order[i]]).abs().item()
        assert cos == pytest.approx(1.0, abs=1e-4)
    assert all(res.converged)
    dirs = hessian_directions(model, batches, ce_loss, 2, iters=5000, tol=1e-12)
    assert dirs.kind == "hessian" and dirs.eigenvalues == pytest.approx(tuple(res.values[:2]))
    torch.testing.assert_close(dirs.vectors.norm(dim=1), torch.ones(2, dtype=torch.float64))


def test_sharpness_matches_reference_loop_and_hessian() -> None:
    model, batches = tiny_model(), tiny_batches()
    s = SharpnessSettings(radius=0.1, n_directions=5, seed=4, hessian_iters=2000, hessian_tol=1e-10)
    sharp = measure_sharpness(model, batches, ce_loss, s)
    theta = flat_params(model)
    base = reference_loss(model, batches, ce_loss, theta)
    dirs = random_directions(model, 5, seed=4)
    ref = np.array([reference_loss(model, batches, ce_loss, theta + 0.1 * d) - base for d in dirs.vectors])
    assert sharp.loss == pytest.approx(base, rel=1e-10)
    np.testing.assert_allclose(sharp.increases, ref, rtol=1e-6, atol=1e-12)
    assert sharp.mean_increase == pytest.approx(ref.mean()) and sharp.max_increase == pytest.approx(ref.max())
    eig = torch.linalg.eigvalsh(explicit_hessian(model, batches))
    assert sharp.lambda_max == pytest.approx(eig.max().item(), rel=1e-6)  # the largest algebraic eigenvalue
    assert sharp.lambda_min == pytest.approx(eig.min().item(), rel=1e-5, abs=1e-8)
    no_h = measure_sharpness(model, batches, ce_loss, SharpnessSettings(hessian=False))
    assert no_h.lambda_max is None


def test_float32_mlp_power_iteration_converges() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    batches = classification_batches()
    res = top_eigenpairs(model, batches, ce_loss, 1, iters=500, tol=1e-5)
    ref_model = copy.deepcopy(model).double()
    names = [n for n, _ in ref_model.named_parameters()]
    shapes = [p.shape for _, p in ref_model.named_parameters()]
    n_total = sum(b[0].shape[0] for b in batches)

    def loss64(theta: torch.Tensor) -> torch.Tensor:
        params, i = {}, 0
        for name, shape in zip(names, shapes):
            params[name] = theta[i : i + shape.numel()].view(shape)
            i += shape.numel()
        return sum(x.shape[0] / n_total * ce_loss(functional_call(ref_model, params, (x.double(),)), (x, y))
                   for x, y in batches)

    eig = torch.linalg.eigvalsh(hessian(loss64, flat_params(ref_model)))
    assert res.values[0] == pytest.approx(eig[eig.abs().argmax()].item(), rel=1e-3)

"""Agreement with the `loss-landscapes` package (import name ``loss_landscapes``) on the same directions.

What is compared, and why this way:

* Its ``random_line`` / ``random_plane`` draw their own *uniform* [0, 1) directions from the global
  RNG, normalize 1-D tensors per element, and then rescale the whole direction to
  ‖θ‖/(distance·steps) — so their grid is not ours and their directions cannot be handed in.
  Instead we give it OUR directions through its interpolation API: ``linear_interpolation`` /
  ``planar_interpolation`` between parameter sets θ − R·d … θ + R·d, and compare where its grid
  points coincide with ours.
* ``linear_interpolation(start, end, steps)`` evaluates at start + (i+1)/steps·(end − start),
  i = 0 … steps−1 (it never evaluates ``start`` itself): our points 1 … n−1.
* ``planar_interpolation`` walks rows in a boustrophedon; as implemented (v3.0.6) its even rows are
  evaluated at columns 1 … steps and its odd rows at columns 0 … steps−1 (the in-place walk is off by
  one step on alternate rows). We compare each row at the coordinates it actually used.
* Its ``filter_normalize_`` equals ours on weight tensors (≥ 2-D). On 1-D tensors the conventions
  differ: it ends up scaling each *element* to |θ_i| (sign kept), we either zero 1-D tensors
  (Li et al. 2018's default) or scale the whole tensor to ‖θ_b‖ (``include_1d``).
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

loss_landscapes = pytest.importorskip("loss_landscapes")
from loss_landscapes.metrics import Loss  # noqa: E402
from loss_landscapes.model_interface.model_parameters import ModelParameters  # noqa: E402

from gradscope.landscape import (  # noqa: E402
    LandscapeSettings,
    FlatLayout,
    compute_landscape,
    normalize_directions,
    random_directions,
)
from kit.landscape import ce_loss, flat_params, mlp  # noqa: E402


def _with_params(model: nn.Module, theta: torch.Tensor) -> nn.Module:
    m = copy.deepcopy(model)
    torch.nn.utils.vector_to_parameters(theta.clone(), m.parameters())
    return m


def _problem():
    torch.manual_seed(7)
    model = mlp(d_in=5, hidden=12, d_out=3)
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(40, 5, generator=g), torch.randint(0, 3, (40,), generator=g)
    return model.eval(), x, y


def test_filter_normalize_agrees_on_weight_tensors_and_differs_on_biases_as_documented() -> None:
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(4 * 3 * 3, 5))
    layout = FlatLayout.from_module(model)
    theta = flat_params(model)
    raw = torch.randn(layout.numel, generator=torch.Generator().manual_seed(2))
    params = list(model.parameters())
    split = lambda v: [v[a:b].view_as(p).clone() for (a, b), p in zip(layout.spans, params)]  # noqa: E731
    theirs = ModelParameters(split(raw))
    theirs.filter_normalize_(ModelParameters([p.detach().clone() for p in params]))
    ours = split(normalize_directions(raw, theta, layout, "filter", include_1d=True))
    for p, t_their, t_our, r in zip(params, theirs.parameters, ours, split(raw)):
        if p.ndim >= 2:
            torch.testing.assert_close(t_our, t_their, rtol=1e-5, atol=1e-7)
        else:  # their per-element convention: d_i → sign(d_i)·|θ_i|
            torch.testing.assert_close(t_their, torch.sign(r) * p.detach().abs(), rtol=1e-5, atol=1e-7)
            torch.testing.assert_close(t_our.norm(), p.detach().norm(), rtol=1e-5, atol=1e-7)


def test_linear_interpolation_agrees_on_our_direction() -> None:
    model, x, y = _problem()
    n, r = 11, 0.8
    ls = compute_landscape(model, [(x, y)], ce_loss, LandscapeSettings(points_x=n, range_x=r, seed=5), progress=False)
    theta, d = flat_params(model), ls.directions.vectors[0]
    start, end = _with_params(model, theta - r * d), _with_params(model, theta + r * d)
    metric = Loss(nn.functional.cross_entropy, x, y)
    theirs = loss_landscapes.linear_interpolation(start, end, metric, steps=n - 1, deepcopy_model=True)
    np.testing.assert_allclose(theirs, ls.loss[1:], rtol=1e-5)


def test_planar_interpolation_agrees_on_our_directions() -> None:
    model, x, y = _problem()
    n, r1, r2 = 7, 1.0, 0.5
    settings = LandscapeSettings(dims=2, points_x=n, range_x=r1, range_y=r2, seed=9)
    dirs = random_directions(model, 2, seed=9)
    ls = compute_landscape(model, [(x, y)], ce_loss, settings, directions=dirs, progress=False)
    theta = flat_params(model)
    d1, d2 = dirs.vectors
    start = theta - r1 * d1 - r2 * d2
    m0 = _with_params(model, start)
    m1 = _with_params(model, start + 2 * r1 * d1)
    m2 = _with_params(model, start + 2 * r2 * d2)
    metric = Loss(nn.functional.cross_entropy, x, y)
    theirs = np.asarray(loss_landscapes.planar_interpolation(m0, m1, m2, metric, steps=n - 1, deepcopy_model=True))
    assert theirs.shape == (n - 1, n - 1)
    for i in range(n - 1):  # their row i: a = x[i]; our arrays are [y, x]
        cols = np.arange(1, n) if i % 2 == 0 else np.arange(0, n - 1)
        np.testing.assert_allclose(theirs[i], ls.loss[cols, i], rtol=1e-5)

"""Directions: filter/layer/model normalization against per-filter loops, zero safety, seeding."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gradscope.errors import ConfigError, GradscopeError
from gradscope.landscape import (
    FlatLayout,
    directions_from_vectors,
    interpolation_direction,
    normalize_directions,
    random_directions,
)
from gradscope.landscape.directions import gaussian_directions
from kit.landscape import flat_params, mlp, reference_filter_normalize, split_like


def conv_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 4 * 4, 7), nn.LayerNorm(7),
        nn.Linear(7, 2),
    )


@pytest.mark.parametrize("include_1d", [False, True])
def test_filter_normalization_matches_per_filter_loop(include_1d: bool) -> None:
    model = conv_net()
    layout = FlatLayout.from_module(model)
    theta = flat_params(model)
    raw = torch.randn(2, layout.numel, generator=torch.Generator().manual_seed(3))
    ours = normalize_directions(raw, theta, layout, "filter", include_1d)
    for k in range(2):
        ref = reference_filter_normalize(split_like(raw[k], model), split_like(theta, model), include_1d)
        torch.testing.assert_close(ours[k], torch.cat([r.reshape(-1) for r in ref]), rtol=1e-6, atol=1e-7)
    # and the defining property: every filter of d has the norm of the same filter of θ
    for d_t, t_t in zip(split_like(ours[0], model), split_like(theta, model)):
        if d_t.ndim >= 2:
            torch.testing.assert_close(d_t.flatten(1).norm(dim=1), t_t.flatten(1).norm(dim=1), rtol=1e-5, atol=1e-7)
        elif not include_1d:
            assert torch.count_nonzero(d_t) == 0


def test_layer_and_model_normalization_match_references() -> None:
    model = mlp()
    layout = FlatLayout.from_module(model)
    theta = flat_params(model)
    raw = torch.randn(layout.numel, generator=torch.Generator().manual_seed(4))
    layer = normalize_directions(raw, theta, layout, "layer", include_1d=True)
    for d_t, t_t, r_t in zip(split_like(layer, model), split_like(theta, model), split_like(raw, model)):
        torch.testing.assert_close(d_t, r_t * (t_t.norm() / r_t.norm()), rtol=1e-6, atol=1e-7)
    whole = normalize_directions(raw, theta, layout, "model", include_1d=False)
    mask = torch.cat([torch.full((p.numel(),), p.ndim >= 2) for p in model.parameters()])
    expected = torch.where(mask, raw, 0.0)
    expected = expected * theta[mask].norm() / expected.norm()
    torch.testing.assert_close(whole, expected, rtol=1e-6, atol=1e-7)
    assert torch.equal(normalize_directions(raw, theta, layout, "none"), raw)


def test_zero_safe_on_fresh_model_with_zero_biases_and_rows() -> None:
    model = mlp()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)  # as a fresh transformer's biases
        model[2].weight[3].zero_()  # a dead unit: zero-norm filter
    layout = FlatLayout.from_module(model)
    theta = flat_params(model)
    raw = torch.randn(2, layout.numel, generator=torch.Generator().manual_seed(5))
    raw[1, :10] = 0.0  # a zero row in the direction itself
    for include_1d in (False, True):
        for norm in ("filter", "layer", "model"):
            out = normalize_directions(raw, theta, layout, norm, include_1d)
            assert torch.isfinite(out).all(), (norm, include_1d)
        out = normalize_directions(raw, theta, layout, "filter", include_1d)
        parts = split_like(out[0], model)
        assert torch.count_nonzero(parts[2][3]) == 0  # zero filter of θ → zero direction
        for bias in parts[1::2]:
            assert torch.count_nonzero(bias) == 0  # zero biases → zero direction
        assert torch.count_nonzero(parts[0]) > 0


def test_random_directions_are_seeded_and_renormalize_per_model() -> None:
    a, b = mlp(), mlp()
    d1 = random_directions(a, 2, seed=11)
    d2 = random_directions(a, 2, seed=11)
    d3 = random_directions(a, 2, seed=12)
    assert torch.equal(d1.vectors, d2.vectors)
    assert not torch.equal(d1.vectors, d3.vectors)
    assert torch.equal(d1.raw, gaussian_directions(d1.layout, 2, 11))
    db = d1.renormalized(b)
    assert torch.equal(db.raw, d1.raw)
    assert torch.equal(db.vectors, random_directions(b, 2, seed=11).vectors)
    w_b = b[0].weight.detach()
    torch.testing.assert_close(db.vectors[0, : w_b.numel()].view_as(w_b).norm(dim=1), w_b.norm(dim=1))


def test_directions_from_vectors_reorders_named_parameters() -> None:
    model = mlp()
    layout = FlatLayout.from_module(model)
    eps = torch.randn(layout.numel, generator=torch.Generator().manual_seed(6))
    # the same vector written in reversed parameter order, as another tool might store it
    pieces = split_like(eps, model)
    names = list(layout.names)[::-1]
    reversed_flat = torch.cat([p.reshape(-1) for p in pieces[::-1]]).numpy()
    d = directions_from_vectors(model, reversed_flat, param_names=names, normalization="none")
    assert d.kind == "vectors" and d.k == 1
    torch.testing.assert_close(d.vectors[0], eps)
    dn = directions_from_vectors(model, [eps, 2 * eps], normalization="filter")
    torch.testing.assert_close(dn.vectors[0], dn.vectors[1])  # filter normalization ignores scale
    with pytest.raises(GradscopeError, match="entries"):
        directions_from_vectors(model, eps[:-1])
    with pytest.raises(GradscopeError, match="not a parameter"):
        directions_from_vectors(model, eps, param_names=["nope"] + names[1:])


def test_interpolation_direction_is_the_difference() -> None:
    a, b = mlp(), mlp()
    d = interpolation_direction(a, b)
    torch.testing.assert_close(d.vectors[0], flat_params(b) - flat_params(a))
    d2 = interpolation_direction(a, b.state_dict())
    assert torch.equal(d.vectors, d2.vectors)
    with pytest.raises(GradscopeError):
        interpolation_direction(a, mlp(hidden=8))


def test_bad_normalization_and_selection_errors() -> None:
    model = mlp()
    layout = FlatLayout.from_module(model)
    theta = flat_params(model)
    with pytest.raises(ConfigError):
        normalize_directions(theta, theta, layout, "unit")
    d = random_directions(model, 1)
    with pytest.raises(ConfigError):
        d.select(2)
    assert np.isfinite(d.vectors.numpy()).all()

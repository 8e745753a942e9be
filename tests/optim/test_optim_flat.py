"""FlatLayout: the one flat-parameter layout (names, flatten/unflatten, per-tensor reductions)."""
from __future__ import annotations

import json

import pytest
import torch
from kit.optim import Branchy, make_model

import gradscope.optim as go
from gradscope.errors import GradscopeError
from gradscope.optim.flat import FlatLayout


def test_from_module_names_and_round_trip():
    model = Branchy()
    model.middle.bias.requires_grad_(False)
    layout = FlatLayout.from_module(model)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert layout.names == tuple(n for n, _ in named)
    assert layout.numel == sum(p.numel() for _, p in named)
    theta = layout.flatten()
    assert torch.equal(theta, torch.cat([p.detach().reshape(-1) for _, p in named]))
    assert torch.equal(layout.flatten(dict(named)), theta)
    back = layout.named(theta)
    for n, p in named:
        assert torch.equal(back[n], p) and back[n].data_ptr() >= theta.data_ptr()  # views, not copies
    assert FlatLayout.from_module(model, trainable_only=False).numel == layout.numel + 7


def test_unflatten_a_stack_of_flat_vectors():
    layout = FlatLayout.from_module(make_model())
    stack = torch.arange(3 * layout.numel, dtype=torch.float32).reshape(3, layout.numel)
    views = layout.unflatten(stack)
    for k, (v, p) in enumerate(zip(views, layout.params)):
        assert v.shape == (3, *p.shape)
        for c in range(3):
            start = layout.offsets[k]
            assert torch.equal(v[c].reshape(-1), stack[c, start:start + p.numel()])


def test_per_tensor_reductions_match_naive_loops():
    layout = FlatLayout.from_module(make_model())
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(layout.numel, generator=gen) for _ in range(2))
    buf = layout.buffer()
    buf.data.copy_(a)
    naive_dots = torch.stack([(x * y).sum() for x, y in zip(layout.views(a), layout.views(b))])
    torch.testing.assert_close(layout.per_tensor_dots(a, b, scratch=torch.empty_like(a)), naive_dots)
    torch.testing.assert_close(layout.per_tensor_norms(buf), torch.stack([x.norm() for x in layout.views(a)]))
    expanded = layout.expand(torch.arange(len(layout.params), dtype=torch.float32))
    assert [int(v.unique()) for v in layout.views(expanded)] == list(range(len(layout.params)))


def test_layout_errors_are_one_line_gradscope_errors():
    layout = FlatLayout(list(make_model().parameters()))
    assert layout.names is None
    with pytest.raises(GradscopeError, match="no parameter names"):
        layout.flatten({"x": torch.zeros(1)})
    with pytest.raises(GradscopeError, match="entries"):
        layout.unflatten(torch.zeros(3))
    with pytest.raises(GradscopeError, match="duplicate"):
        FlatLayout(layout.params[:2], ["a", "a"])
    with pytest.raises(GradscopeError, match="expected 4 tensors"):
        layout.flatten(layout.params[:2])


def test_optimizers_know_names_when_given_named_parameters():
    model = make_model()
    named = go.SAM(model.named_parameters(), lr=0.01)
    assert named.layout.names == tuple(n for n, _ in model.named_parameters())
    assert go.SAM(model.parameters(), lr=0.01).layout.names is None


def test_described_layout_round_trips_and_finds_its_parameters_in_another_model():
    """The landscape stores a layout by names/shapes/dtypes and applies it to models read later."""
    model, other = make_model(), make_model()
    layout = FlatLayout.from_module(model)
    back = FlatLayout.from_dict(json.loads(json.dumps(layout.to_dict())))
    assert back == layout and back.params is None and back.numel == layout.numel
    theta = back.flatten_module(other)
    assert torch.equal(theta, torch.cat([p.detach().reshape(-1) for p in other.parameters()]))
    with pytest.raises(GradscopeError, match="only described"):
        back.flatten()
    with pytest.raises(GradscopeError, match="has no parameter"):
        back.parameters(Branchy())
    with pytest.raises(GradscopeError, match="not a stored parameter layout"):
        FlatLayout.from_dict({"names": ["a"]})


def test_mixed_dtypes_flatten_to_the_common_type_and_named_casts_back():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    model[1].to(torch.float64)
    layout = FlatLayout.from_module(model)
    assert layout.flat_dtype == torch.float64
    theta = layout.flatten()
    assert theta.dtype == torch.float64
    named = layout.named(theta)
    for name, p in model.named_parameters():
        assert named[name].dtype == p.dtype and torch.equal(named[name], p.detach())
    assert layout != FlatLayout.from_module(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1)))

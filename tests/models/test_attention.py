"""Attention capture (changes nothing) and attention entropy against a naive loop."""
from __future__ import annotations

import math

import pytest
import torch

from gradscope.chem import collate
from gradscope.models import attention_entropy, build_model, capture_attention, row_entropy

from .conftest import capture_unchanged, tiny


def naive_entropy(probs, mask):
    """Mean over real query rows of −Σ_j p log p over real keys, per head, with Python loops."""
    b, h, length, _ = probs.shape
    out = []
    for head in range(h):
        total, count = 0.0, 0
        for i in range(b):
            n = int(mask[i].sum())
            for q in range(n):
                total += -sum(float(p) * math.log(float(p)) for p in probs[i, head, q, :n] if p > 0)
                count += 1
        out.append(total / count)
    return torch.tensor(out)


def test_capture_changes_nothing_and_records_every_layer(graphs):
    model = build_model(tiny()).eval()
    batch = collate(graphs, pad_to=40)
    attn = capture_unchanged(model, batch)
    cfg = model.config
    for p in attn:
        assert p.shape == (len(batch), cfg.n_heads, 40, 40) and not p.requires_grad
        torch.testing.assert_close(p.sum(-1)[batch.mask[:, None, :].expand(-1, cfg.n_heads, -1)],
                                   torch.ones(int(batch.mask.sum()) * cfg.n_heads))
        assert p.masked_select(~batch.mask[:, None, None, :].expand_as(p)).abs().max() == 0  # padded keys
    model(batch)
    assert len(attn) == cfg.n_layers  # capture ends with the block


def test_capture_accumulates_per_call(graphs):
    model = build_model(tiny()).eval()
    with capture_attention(model) as attn:
        model(collate(graphs[:3]))
        model(collate(graphs[3:]))
    calls = attn.per_call()
    assert len(calls) == 2 and all(len(c) == model.config.n_layers for c in calls)
    assert calls[1][0].shape[0] == len(graphs) - 3


def test_entropy_matches_naive_loop(graphs):
    model = build_model(tiny()).eval()
    batch = collate(graphs, pad_to=30)
    with capture_attention(model) as attn:
        model(batch)
    per_layer = attention_entropy(attn, attn.mask)
    assert per_layer.shape == (model.config.n_layers, model.config.n_heads)
    for layer, p in enumerate(attn):
        torch.testing.assert_close(per_layer[layer], naive_entropy(p, batch.mask), atol=1e-5, rtol=1e-5)


def test_entropy_of_uniform_and_one_hot_attention():
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    probs = torch.zeros(2, 1, 4, 4)
    probs[0, 0, :, :3] = 1 / 3
    probs[1, 0, :, :2] = 0.5
    rows = row_entropy(probs, mask)
    assert rows[0, 0, :3].tolist() == pytest.approx([math.log(3)] * 3) and rows[0, 0, 3] == 0
    expected = (3 * math.log(3) + 2 * math.log(2)) / 5
    assert attention_entropy(probs, mask).item() == pytest.approx(expected)
    one_hot = torch.zeros(2, 1, 4, 4)
    one_hot[:, :, :, 0] = 1
    assert attention_entropy(one_hot, mask).item() == 0


def test_capture_needs_graph_attention():
    with pytest.raises(TypeError):
        with capture_attention(torch.nn.Linear(2, 2)):
            pass

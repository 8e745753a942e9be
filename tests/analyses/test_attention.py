"""The attention heat map of one molecule: a stand-in model with known maps, and the real model."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from analyses.attention import attention_heatmap, attention_matrix
from gradscope.errors import GradscopeError
from gradscope.models import AttentionCapture


class StandIn(torch.nn.Module):
    """Two 'layers' of fixed attention over a padded batch (molecule 1 has 2 real atoms of 3)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.maps = [torch.softmax(torch.randn(2, 3, 3, 3, generator=g), dim=-1) for _ in range(2)]
        self.mask = torch.tensor([[True, True, True], [True, True, False]])
        self.sink: AttentionCapture | None = None

    def forward(self, batch):
        if self.sink is not None:  # what gradscope's attention layers do: every layer's maps, then the mask
            self.sink.extend(self.maps)
            self.sink.masks.append(self.mask)
        return batch


@contextlib.contextmanager
def stand_in_capture(model):
    model.sink = AttentionCapture()
    try:
        yield model.sink
    finally:
        model.sink = None


def test_matrix_selects_layer_head_and_crops_padding():
    model = StandIn().train()
    got = attention_matrix(model, None, molecule=1, layer=0, head=2, capture=stand_in_capture)
    np.testing.assert_allclose(got, model.maps[0][1, 2, :2, :2].numpy(), rtol=1e-6)
    mean = attention_matrix(model, None, molecule=0, layer=-1, capture=stand_in_capture)
    ref = sum(model.maps[1][0, h].numpy() for h in range(3)) / 3
    np.testing.assert_allclose(mean, ref, rtol=1e-6)
    assert model.training  # mode restored


def test_heatmap_figure():
    model = StandIn()
    fig = attention_heatmap(model, None, molecule=1, layer=1, head=0, atom_labels=["C0", "O1"], capture=stand_in_capture)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), model.maps[1][1, 0, :2, :2].numpy(), rtol=1e-6)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["C0", "O1"]
    assert ax.get_xlabel() == "attended atom" and ax.get_ylabel() == "attending atom"


def test_heatmap_errors():
    model = StandIn()
    for kwargs, match in (({"layer": 5}, "layer 5 out of range"), ({"head": 7}, "head 7 out of range"),
                          ({"molecule": 3}, "molecule 3 out of range"), ({"atom_labels": ["C"]}, "1 atom labels")):
        with pytest.raises(GradscopeError, match=match):
            attention_heatmap(model, None, capture=stand_in_capture, **kwargs)


def test_real_graph_transformer():
    from gradscope.chem import collate, featurize_smiles
    from gradscope.models import ModelConfig, build_model, capture_attention

    graphs, _ = featurize_smiles(["CCO", "c1ccncc1"])
    batch = collate(graphs)
    model = build_model(ModelConfig.preset("tiny", atom_dim=batch.atoms.shape[-1], bond_dim=batch.bonds.shape[-1]))
    got = attention_matrix(model, batch, molecule=0, layer=0, head=1)
    assert got.shape == (3, 3)  # ethanol's heavy atoms, padding cropped
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)  # rows are distributions over real atoms
    with torch.no_grad(), capture_attention(model.eval()) as attn:
        model(batch)
    np.testing.assert_allclose(got, attn[0][0, 1, :3, :3].numpy(), rtol=1e-6)


def test_only_an_attention_capture_is_accepted():
    @contextlib.contextmanager
    def pairs(model):  # a (maps, mask) pair: not the shape gradscope's models produce
        yield (list(model.maps), model.mask)

    @contextlib.contextmanager
    def silent(model):  # a capture no forward call filled
        yield AttentionCapture()

    with pytest.raises(GradscopeError, match="must yield a gradscope.models.AttentionCapture"):
        attention_matrix(StandIn(), None, capture=pairs)
    with pytest.raises(GradscopeError, match="captured no attention"):
        attention_matrix(StandIn(), None, capture=silent)


def test_last_forward_call_is_used():
    model = StandIn()

    def twice(m, batch):
        m(batch)
        m.maps = [p.flip(-1) for p in m.maps]  # the second call sees other maps
        return m(batch)

    got = attention_matrix(model, None, molecule=0, layer=0, head=0, capture=stand_in_capture, forward=twice)
    np.testing.assert_allclose(got, model.maps[0][0, 0].numpy(), rtol=1e-6)

"""The faithful CoMPT: contracts (padding, atom order, vmap, no host syncs, autocast, checkpoints,
attention capture), its readout and norms against references, training."""
from __future__ import annotations

import dataclasses
import io
import json
import math

import numpy as np
import pytest
import torch
from rdkit import Chem
from torch.func import functional_call, vmap

from gradscope.chem import collate
from gradscope.chem.featurizers import COMPT
from gradscope.models import (CoMPT, CoMPTConfig, attention_entropy, build_compt,
                              model_from_config_dict)
from gradscope.models.compt.layers import ScaleNorm, StdLayerNorm
from gradscope.models.compt.readout import GRUReadout, MaskedBiGRU

from .conftest import SMILES, capture_unchanged, overfit_losses
from .test_transformer import _NoHostSync


def compt_tiny(n_tasks: int = 2, **kw) -> CoMPTConfig:
    base = dict(d_model=32, n_layers=2, n_heads=4, n_dense=1, n_generator_layers=2, max_atoms=64)
    return CoMPTConfig(atom_dim=COMPT.atom_dim, bond_dim=COMPT.bond_dim, n_tasks=n_tasks, **{**base, **kw})


VARIANTS = {
    "released": {},
    "softmax-scalenorm": dict(distance_kernel="softmax", scale_norm=True, n_generator_layers=3),
    "update-edges": dict(update_edges=True),
    "order-free": dict(positions=False, readout="mean"),
}


@pytest.fixture(params=list(VARIANTS))
def compt_model(request):
    torch.manual_seed(0)
    return build_compt(compt_tiny(**VARIANTS[request.param])).eval()


def test_output_shape_and_parameters_all_used(compt_model, batch):
    out = compt_model(batch)
    assert out.shape == (len(SMILES), 2) and out.dtype == torch.float32 and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in compt_model.parameters())


def test_padding_never_changes_outputs(compt_model, graphs):
    tight = compt_model(collate(graphs))
    padded = compt_model(collate(graphs, pad_to=50))
    torch.testing.assert_close(padded, tight, atol=1e-5, rtol=1e-5)
    alone = torch.cat([compt_model(collate([g])) for g in graphs])  # batch-mates do not matter either
    torch.testing.assert_close(alone, tight, atol=1e-5, rtol=1e-5)


def _renumbered(smiles: str, seed: int = 0):
    mol = Chem.MolFromSmiles(smiles)
    perm = np.random.default_rng(seed).permutation(mol.GetNumAtoms()).tolist()
    return COMPT.featurize(Chem.Mol(mol)), COMPT.featurize(Chem.RenumberAtoms(mol, perm)), perm


@pytest.mark.parametrize("smiles", ["CC(=O)Nc1ccc(O)cc1", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "[Cl-].C[NH3+]"])
def test_encoder_is_atom_order_equivariant_and_order_free_model_invariant(smiles):
    torch.manual_seed(0)
    model = build_compt(compt_tiny(positions=False, readout="mean")).eval()
    g, shuffled, perm = _renumbered(smiles)
    assert not torch.equal(g.atoms, shuffled.atoms)
    h, h_shuffled = model.encode(collate([g])), model.encode(collate([shuffled]))
    torch.testing.assert_close(h_shuffled[0], h[0, perm], atol=1e-5, rtol=1e-5)  # new atom k is old atom perm[k]
    torch.testing.assert_close(model(collate([shuffled])), model(collate([g])), atol=1e-5, rtol=1e-5)


def test_released_model_depends_on_atom_order():
    """As released, the position table and the GRU readout read atoms in RDKit order."""
    torch.manual_seed(0)
    g, shuffled, _ = _renumbered("CC(=O)Nc1ccc(O)cc1")
    for kw in (dict(), dict(positions=False), dict(readout="mean")):
        model = build_compt(compt_tiny(**kw)).eval()
        assert (model(collate([g])) - model(collate([shuffled]))).abs().max() > 1e-4, kw


def test_vmap_over_three_parameter_sets_equals_loop(compt_model, batch):
    params = {k: v.detach() for k, v in compt_model.named_parameters()}
    gen = torch.Generator().manual_seed(1)
    sets = [{k: v + 0.05 * i * torch.randn(v.shape, generator=gen) for k, v in params.items()} for i in range(3)]
    stacked = {k: torch.stack([s[k] for s in sets]) for k in params}

    def f(p):
        return functional_call(compt_model, p, (batch,))

    looped = torch.stack([f(s) for s in sets])
    torch.testing.assert_close(vmap(f)(stacked), looped, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(f(params), compt_model(batch))
    assert not torch.allclose(looped[0], looped[2])


@pytest.mark.parametrize("readout", ["mean", pytest.param("gru", marks=pytest.mark.slow)])  # the GRU: ~6 s
def test_hessian_vector_product_via_func_equals_double_backward(batch, readout):
    torch.manual_seed(0)
    model = build_compt(compt_tiny(readout=readout)).eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    target = torch.randn(len(batch), 2, generator=torch.Generator().manual_seed(0))

    def loss(p):
        return ((functional_call(model, p, (batch,)) - target) ** 2).mean()

    v = {k: torch.randn_like(t) for k, t in params.items()}
    _, hvp = torch.func.jvp(torch.func.grad(loss), (params,), (v,))
    p2 = {k: t.clone().requires_grad_(True) for k, t in params.items()}
    g = torch.autograd.grad(loss(p2), list(p2.values()), create_graph=True)
    ref = torch.autograd.grad(sum((gi * v[k]).sum() for gi, k in zip(g, p2)), list(p2.values()))
    for k, r in zip(p2, ref):
        torch.testing.assert_close(hvp[k], r, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("pack", [False, True])
@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_forward_and_backward_never_sync_the_host(indexed_batch, dropout, pack):
    # packing on: the batch carries the real atoms' positions, as an accelerator batch must
    torch.manual_seed(0)
    model = build_compt(compt_tiny(dropout=dropout, pack_atoms=pack)).train()
    with _NoHostSync():
        loss = model(indexed_batch).square().mean()
        loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_bf16_autocast(compt_model, batch):
    ref = compt_model(batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = compt_model(batch)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), ref, atol=0.15, rtol=0.1)


def test_state_dict_and_config_round_trip_through_weights_only_load(compt_model, batch):
    buf = io.BytesIO()
    torch.save({"model_config": compt_model.config.to_dict(), "model_state": compt_model.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    assert json.loads(json.dumps(ckpt["model_config"])) == ckpt["model_config"]
    again = model_from_config_dict(ckpt["model_config"])
    assert isinstance(again, CoMPT) and again.config == compt_model.config
    again.load_state_dict(ckpt["model_state"])
    torch.testing.assert_close(again.eval()(batch), compt_model(batch), atol=0, rtol=0)


def test_capture_records_outgoing_attention_and_changes_nothing(batch):
    torch.manual_seed(0)
    model = build_compt(compt_tiny()).eval()
    attn = capture_unchanged(model, batch)
    cfg = model.config
    rows = batch.mask[:, None, :].expand(-1, cfg.n_heads, -1)
    for p in attn:
        assert p.shape == (len(batch), cfg.n_heads, batch.max_atoms, batch.max_atoms) and not p.requires_grad
        torch.testing.assert_close(p.sum(-1)[rows], torch.ones(int(rows.sum())))
        assert p.masked_select(~batch.mask[:, None, None, :].expand_as(p)).abs().max() == 0
    # layer 0's outgoing attention recomputed from its inputs: softmax_j(q_i·k_ij/√d_k) over real atoms
    layer = model.layers[0]
    h = layer.norm(model.embed_nodes(batch.atoms, batch.mask))
    q = layer.attention._heads(layer.attention.query(h))
    out_scores, _, _ = layer.attention.scores(q, model.embed_edges(batch.bonds))
    expected = torch.softmax(out_scores.masked_fill(~batch.mask[:, None, None, :], -math.inf), -1)
    torch.testing.assert_close(attn[0], expected)
    assert attention_entropy(attn, attn.mask).shape == (cfg.n_layers, cfg.n_heads)


def test_masked_bigru_equals_torch_gru_on_each_molecule():
    torch.manual_seed(0)
    d, lengths = 6, [5, 3, 1]
    gru = MaskedBiGRU(d)
    ref = torch.nn.GRU(d, d, batch_first=True, bidirectional=True)
    ref.load_state_dict(gru.state_dict())
    x = torch.randn(len(lengths), max(lengths), d)
    mask = torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]
    h0 = torch.randn(len(lengths), d)
    out = gru(x, mask, h0)
    for b, n in enumerate(lengths):
        expected, _ = ref(x[b:b + 1, :n], h0[b:b + 1].expand(2, 1, d).contiguous())
        torch.testing.assert_close(out[b, :n], expected[0], atol=1e-6, rtol=1e-5)


def test_gru_readout_equals_released_formula_on_an_unpadded_molecule():
    torch.manual_seed(0)
    d, n = 8, 6
    readout = GRUReadout(d)
    gru = torch.nn.GRU(d, d, batch_first=True, bidirectional=True)
    gru.load_state_dict(readout.gru.state_dict())
    h = torch.randn(1, n, d)
    mish = torch.nn.functional.mish
    h0 = mish(h + readout.bias).max(dim=1).values.unsqueeze(0).repeat(2, 1, 1)
    seq, _ = gru(h, h0)
    expected = mish(readout.linear(seq)).sum(1) / n
    torch.testing.assert_close(readout(h, torch.ones(1, n, dtype=torch.bool)), expected, atol=1e-6, rtol=1e-5)


def test_norms_follow_the_released_formulas():
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    ln = StdLayerNorm(5)
    mean, std = x.mean(-1, keepdim=True), x.std(-1, keepdim=True, unbiased=True)
    torch.testing.assert_close(ln(x), (x - mean) / (std + 1e-6))
    sn = ScaleNorm(5)
    assert sn.scale.item() == pytest.approx(math.sqrt(5))
    torch.testing.assert_close(sn(x), math.sqrt(5) * x / x.norm(dim=-1, keepdim=True))


def test_initialisation_as_released():
    torch.manual_seed(0)
    model = build_compt(compt_tiny())
    for name, p in model.named_parameters():
        if p.dim() > 1:
            bound = math.sqrt(6.0 / (p.shape[0] + p.shape[1]))  # Xavier-uniform
            assert p.abs().max() <= bound and p.abs().max() > 0.8 * bound, name
    assert all(layer.attention.attenuation.item() == pytest.approx(0.1) for layer in model.layers)
    assert model.position_table.shape == (65, 32)  # max_atoms + 1 rows, row 0 for padding


def test_positions_beyond_the_table_share_its_last_row():
    torch.manual_seed(0)
    g = COMPT("CCCCCCCCCC")
    small = build_compt(compt_tiny(max_atoms=4)).eval()
    assert torch.isfinite(small(collate([g]))).all()
    x = small.embed_nodes(collate([g]).atoms, collate([g]).mask)
    torch.testing.assert_close(x[0, 4] - x[0, 5], torch.zeros(32))  # atoms 5..10 all use row 4


def test_update_edges_changes_what_later_layers_see(batch):
    torch.manual_seed(0)
    carried = build_compt(compt_tiny(update_edges=True)).eval()
    released = build_compt(compt_tiny()).eval()
    released.load_state_dict({k: v for k, v in carried.state_dict().items() if "edge_out" not in k})
    assert (carried(batch) - released(batch)).abs().max() > 1e-4
    one_layer = dict(n_layers=1)
    torch.manual_seed(0)
    a = build_compt(compt_tiny(update_edges=True, **one_layer)).eval()
    b = build_compt(compt_tiny(**one_layer)).eval()
    b.load_state_dict({k: v for k, v in a.state_dict().items() if "edge_out" not in k})
    torch.testing.assert_close(a(batch), b(batch))  # with one layer the carried edges are never read


def test_bonds_and_distances_reach_the_output(batch):
    torch.manual_seed(0)
    model = build_compt(compt_tiny()).eval()
    ref = model(batch)
    no_bonds = dataclasses.replace(batch, bonds=torch.zeros_like(batch.bonds))
    far = dataclasses.replace(batch, distances=batch.distances * 3)
    for changed in (no_bonds, far):
        assert (model(changed) - ref).abs().max() > 1e-5
    ref.sum().backward()
    assert model.layers[0].attention.attenuation.grad.abs() > 0 and model.bond_embed.weight.grad.abs().sum() > 0


def test_tiny_compt_overfits_sixteen_molecules():
    torch.manual_seed(0)
    losses = overfit_losses(build_compt(compt_tiny(n_tasks=1)), steps=50)
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])


def test_config_validation_and_round_trip():
    c = compt_tiny(distance_kernel="softmax", update_edges=True)
    assert CoMPTConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert c.to_dict()["architecture"] == "compt" and c.replace(n_tasks=3).n_tasks == 3
    from gradscope.errors import ConfigError

    base = dict(atom_dim=10, bond_dim=4)
    for bad in (dict(d_model=30, n_heads=4), dict(n_layers=0), dict(dropout=1.0), dict(readout="sum"),
                dict(distance_kernel="gauss"), dict(scale_norm=1), dict(n_dense=-1), dict(max_atoms=0),
                dict(attenuation="0.1")):
        with pytest.raises(ConfigError):
            CoMPTConfig(**base, **bad)
    with pytest.raises(ConfigError, match="unknown CoMPTConfig field"):
        CoMPTConfig.from_dict({**c.to_dict(), "depth": 3})
    with pytest.raises(ConfigError, match="not a CoMPTConfig"):
        CoMPTConfig.from_dict({**c.to_dict(), "architecture": "graph-transformer"})

"""The graph transformer: invariances, functional/vmap use, no host syncs, autocast, training."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from rdkit import Chem
from torch.func import functional_call, vmap
from torch.overrides import TorchFunctionMode

from gradscope.chem import collate
from gradscope.chem.featurizers import COMPT
from gradscope.models import ModelConfig, build_model
from gradscope.models.transformer import PairBias

from .conftest import SMILES, overfit_losses, tiny


def test_output_shape(model, batch):
    out = model(batch)
    assert out.shape == (len(SMILES), 2) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_padding_never_changes_outputs(model, graphs):
    tight = model(collate(graphs))
    padded = model(collate(graphs, pad_to=60))
    torch.testing.assert_close(padded, tight, atol=1e-6, rtol=0)
    alone = torch.cat([model(collate([g])) for g in graphs])  # batch-mates do not matter either
    torch.testing.assert_close(alone, tight, atol=1e-5, rtol=0)


@pytest.mark.parametrize("smiles", ["CC(=O)Nc1ccc(O)cc1", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "[Cl-].C[NH3+]"])
def test_atom_order_invariance(model, smiles):
    mol = Chem.MolFromSmiles(smiles)
    perm = np.random.default_rng(0).permutation(mol.GetNumAtoms()).tolist()
    shuffled = Chem.RenumberAtoms(mol, perm)
    a = model(collate([COMPT.featurize(Chem.Mol(mol))]))
    b = model(collate([COMPT.featurize(shuffled)]))
    assert not torch.equal(COMPT.featurize(Chem.Mol(mol)).atoms, COMPT.featurize(shuffled).atoms)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_vmap_over_three_parameter_sets_equals_loop(batch):
    model = build_model(tiny()).eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    gen = torch.Generator().manual_seed(1)
    sets = [{k: v + 0.05 * i * torch.randn(v.shape, generator=gen) for k, v in params.items()} for i in range(3)]
    stacked = {k: torch.stack([s[k] for s in sets]) for k in params}

    def f(p):
        return functional_call(model, p, (batch,))

    looped = torch.stack([f(s) for s in sets])
    torch.testing.assert_close(vmap(f)(stacked), looped, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(f(params), model(batch))
    assert not torch.allclose(looped[0], looped[2])


def test_forward_hessian_vector_product_via_func(batch):
    model = build_model(tiny()).eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    target = torch.randn(len(batch), 2, generator=torch.Generator().manual_seed(0))

    def loss(p):
        return ((functional_call(model, p, (batch,)) - target) ** 2).mean()

    v = {k: torch.randn_like(t) for k, t in params.items()}
    _, hvp = torch.func.jvp(torch.func.grad(loss), (params,), (v,))
    # reference: double backward through torch.autograd
    p2 = {k: t.clone().requires_grad_(True) for k, t in params.items()}
    g = torch.autograd.grad(loss(p2), list(p2.values()), create_graph=True)
    dot = sum((gi * v[k]).sum() for gi, k in zip(g, p2))
    ref = torch.autograd.grad(dot, list(p2.values()))
    for k, r in zip(p2, ref):
        torch.testing.assert_close(hvp[k], r, atol=1e-5, rtol=1e-4)


class _NoHostSync(TorchFunctionMode):
    FORBIDDEN = {"item", "tolist", "__bool__", "__float__", "__int__", "__index__", "cpu", "numpy", "nonzero"}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in self.FORBIDDEN:
            raise AssertionError(f"host sync in forward/backward: {name}")
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("pack", [False, True])
def test_forward_and_backward_never_sync_the_host(indexed_batch, pack):
    # packing on: the batch carries the real atoms' positions, as an accelerator batch must
    model = build_model(tiny(dropout=0.1, pack_atoms=pack)).train()
    with _NoHostSync():
        loss = model(indexed_batch).square().mean()
        loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_bf16_autocast(batch):
    model = build_model(tiny()).eval()
    ref = model(batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), ref, atol=0.1, rtol=0.05)


def test_distance_bias_starts_as_exponential_decay():
    cfg = tiny()
    table = PairBias(cfg).distance_table.detach()
    assert table.shape == (cfg.max_distance + 2, cfg.n_layers * cfg.n_heads)
    gammas = -table[1, : cfg.n_heads]
    assert (gammas > 0).all() and (gammas[:-1] > gammas[1:]).all()  # steep to gentle heads
    d = torch.arange(cfg.max_distance + 2, dtype=torch.float32)
    torch.testing.assert_close(table[:, 0], -gammas[0] * d)


def test_bonds_and_distances_reach_the_output(batch):
    model = build_model(tiny()).eval()
    ref = model(batch)
    no_bonds = dataclasses.replace(batch, bonds=torch.zeros_like(batch.bonds))
    flat = dataclasses.replace(batch, distances=torch.where(batch.mask[:, :, None] & batch.mask[:, None, :], 1.0, 0.0))
    for changed in (no_bonds, flat):
        assert (model(changed) - ref).abs().max() > 1e-6
    ref.sum().backward()
    pair = model.pair_bias
    assert pair.distance_table.grad.abs().sum() > 0 and pair.bond_mlp[0].weight.grad.abs().sum() > 0


def test_tiny_model_overfits_sixteen_molecules():
    losses = overfit_losses(build_model(tiny(n_tasks=1)), steps=150)
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])


def test_config_attribute_and_repr():
    cfg = ModelConfig.preset("tiny", atom_dim=115, bond_dim=13)
    model = build_model(cfg)
    assert model.config is cfg and "parameters=" in repr(model)

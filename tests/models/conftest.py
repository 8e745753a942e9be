"""Small featurized molecules for model tests (RDKit is used here, in the tests, not in the models)."""
from __future__ import annotations

import pytest

from gradscope.chem import collate
from gradscope.chem.featurizers import COMPT
from gradscope.models import ModelConfig, build_model
from gradscope.models.packing import ATOM_INDEX

SMILES = [
    "CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "[Cl-].C[NH3+]", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
    "O=C(O)c1ccccc1OC(C)=O", "C1CCCCC1N", "FC(F)(F)c1ccc(cc1)C#N",
]


@pytest.fixture
def graphs():
    return [COMPT(s).with_labels(None, index=i) for i, s in enumerate(SMILES)]


@pytest.fixture
def batch(graphs):
    return collate(graphs, n_tasks=2)


@pytest.fixture
def indexed_batch(graphs):
    """The batch carrying the real atoms' positions (what an accelerator batch needs for packing)."""
    return collate(graphs, n_tasks=2, fields=(ATOM_INDEX,))


def tiny(n_tasks: int = 2, **kw) -> ModelConfig:
    return ModelConfig.preset("tiny", atom_dim=COMPT.atom_dim, bond_dim=COMPT.bond_dim, n_tasks=n_tasks, **kw)


@pytest.fixture(params=["mean", "attention"])
def model(request):
    return build_model(tiny(readout=request.param)).eval()


#: sixteen small molecules whose Crippen logP a tiny model must learn to fit (an overfitting check)
OVERFIT_SMILES = [
    "CCO", "CCCCO", "c1ccccc1", "c1ccccc1O", "CC(=O)O", "CCN(CC)CC", "ClCCl", "c1ccncc1", "CC(C)CC(=O)O",
    "OCC(O)CO", "c1ccc2ccccc2c1", "CC(=O)Nc1ccc(O)cc1", "CCOC(=O)C", "C1CCCCC1", "NC(=O)N", "FC(F)(F)c1ccccc1",
]


def overfit_losses(model, steps: int) -> list[float]:
    """Full-batch Adam (lr 3e-3) on :data:`OVERFIT_SMILES` labelled with standardized Crippen logP:
    the mean squared error after each step."""
    import torch
    from rdkit import Chem
    from rdkit.Chem import Crippen

    y = torch.tensor([[Crippen.MolLogP(Chem.MolFromSmiles(s))] for s in OVERFIT_SMILES])
    y = (y - y.mean()) / y.std()
    batch = collate([COMPT(s).with_labels(t) for s, t in zip(OVERFIT_SMILES, y)])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = (model(batch) - batch.y).square().mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def capture_unchanged(model, batch):
    """The attention ``capture_attention`` records on ``batch``, after checking that capturing leaves
    the output bit for bit as it was and records every layer with the batch's mask."""
    import torch

    from gradscope.models import capture_attention

    ref = model(batch)
    with capture_attention(model) as attn:
        out = model(batch)
    assert torch.equal(out, ref)
    assert len(attn) == model.config.n_layers and torch.equal(attn.mask, batch.mask)
    return attn

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

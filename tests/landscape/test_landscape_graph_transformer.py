"""The landscape layer on gradscope's own molecular graph transformer (``tiny`` preset).

Synthetic padded batches (no RDKit needed): the point is that the model's forward batches under
vmap and agrees with a per-point reference loop, and that a freshly initialised transformer (zero
biases) gives finite landscapes.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

models = pytest.importorskip("gradscope.models")
from gradscope.chem.batch import GraphBatch  # noqa: E402
from gradscope.landscape import LandscapeEvaluator, LandscapeSettings, compute_landscape, random_directions  # noqa: E402
from kit.landscape import flat_params, reference_loss  # noqa: E402

ATOM_DIM, BOND_DIM, TASKS = 10, 4, 2


def graph_batch(b: int, n_atoms: int, seed: int) -> GraphBatch:
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(2, n_atoms + 1, (b,), generator=g)
    mask = torch.arange(n_atoms)[None, :] < sizes[:, None]
    pair = mask[:, :, None] & mask[:, None, :]
    dist = torch.randint(1, 6, (b, n_atoms, n_atoms), generator=g).float()
    dist = torch.where(torch.eye(n_atoms, dtype=torch.bool), 0.0, dist)
    dist[0, 0, 1] = dist[0, 1, 0] = float("inf")  # two fragments in the first molecule
    dist = torch.where(pair, dist, 0.0)
    return GraphBatch(
        atoms=torch.randn(b, n_atoms, ATOM_DIM, generator=g) * mask[..., None],
        bonds=torch.rand(b, n_atoms, n_atoms, BOND_DIM, generator=g) * pair[..., None],
        distances=dist,
        mask=mask,
        y=torch.randint(0, 2, (b, TASKS), generator=g).float(),
        y_mask=torch.rand(b, TASKS, generator=g) > 0.2,
        index=torch.arange(b),
    )


def masked_bce(outputs: torch.Tensor, batch: GraphBatch) -> torch.Tensor:
    per = nn.functional.binary_cross_entropy_with_logits(outputs, batch.y, reduction="none")
    m = batch.y_mask.float()
    return (per * m).sum() / m.sum().clamp_min(1.0)


def tiny_transformer() -> nn.Module:
    torch.manual_seed(0)
    config = models.ModelConfig.preset("tiny", atom_dim=ATOM_DIM, bond_dim=BOND_DIM, n_tasks=TASKS)
    return models.build_model(config)


def test_graph_transformer_vmaps_and_matches_reference_loop() -> None:
    model = tiny_transformer()
    batches = [graph_batch(5, 7, 1), graph_batch(3, 6, 2)]
    dirs = random_directions(model, 2, seed=1)
    settings = LandscapeSettings(dims=2, points_x=3, points_y=3, range_x=0.5, range_y=0.5)
    ev = LandscapeEvaluator(model, batches, masked_bce, chunk_size=9)
    res = ev.evaluate(dirs.vectors, settings.grid().coefficients())
    assert ev.mode == "vmap"
    theta = flat_params(model)
    fwd = lambda m, b: m(b)  # noqa: E731
    ref = [
        reference_loss(model, batches, masked_bce, theta + a * dirs.vectors[0] + b * dirs.vectors[1], forward=fwd,
                       weights=[5, 3])
        for a, b in settings.grid().coefficients()
    ]
    np.testing.assert_allclose(res.loss, ref, rtol=1e-5)


def test_fresh_transformer_with_zero_biases_gives_finite_landscape() -> None:
    model = tiny_transformer()
    zero_biases = [n for n, p in model.named_parameters() if p.ndim == 1 and torch.count_nonzero(p) == 0]
    assert zero_biases  # the premise: a fresh transformer has all-zero bias vectors
    ls = compute_landscape(model, [graph_batch(4, 6, 3)], masked_bce,
                           LandscapeSettings(points_x=5, include_1d=True), progress=False)
    assert np.isfinite(ls.loss).all() and torch.isfinite(ls.directions.vectors).all()

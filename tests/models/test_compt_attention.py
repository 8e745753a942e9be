"""One layer of communicative attention against a per-pair Python loop; the attenuation kernel."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gradscope.models.compt import AffineEdges, CoMPTConfig, CommunicativeAttention, attenuation_kernel


def mish(x):
    return x * torch.tanh(torch.log1p(torch.exp(x)))


def naive_layer(layer, x, edge_of, distances, mask, kernel):
    """Every (molecule, head, i, j) with explicit loops, in float64.

    ``edge_of(b, i, j)`` returns the edge state vector e_ij. Returns the node output ``[B, L, d]``
    (zero rows for padded atoms) and the edge output ``[B, L, L, d]`` (zero for padded pairs).
    """
    names = ("query", "key", "value", "node_out") + (("edge_out",) if layer.edge_out is not None else ())
    w = {name: (getattr(layer, name).weight.detach().double(), getattr(layer, name).bias.detach().double())
         for name in names}
    lam = float(layer.attenuation.detach())
    b_size, length, d = x.shape
    heads, dk = layer.n_heads, layer.head_dim
    nodes = torch.zeros(b_size, length, d, dtype=torch.float64)
    edges = torch.zeros(b_size, length, length, d, dtype=torch.float64)
    for b in range(b_size):
        real = [j for j in range(length) if mask[b, j]]
        key = {(i, j): w["key"][0] @ edge_of(b, i, j) + w["key"][1] for i in real for j in real}
        for i in real:
            q = w["query"][0] @ x[b, i] + w["query"][1]
            reach = [j for j in real if math.isfinite(float(distances[b, i, j]))]
            if kernel == "exp":
                att = {j: (math.exp(-lam * float(distances[b, i, j])) if j in reach else 0.0) for j in real}
            else:
                z = sum(math.exp(-lam * float(distances[b, i, k])) for k in reach)
                att = {j: (math.exp(-lam * float(distances[b, i, j])) / z if j in reach else 0.0) for j in real}
            per_head = []
            for h in range(heads):
                sl = slice(h * dk, (h + 1) * dk)
                s_out = {j: float(q[sl] @ key[i, j][sl]) / math.sqrt(dk) for j in real}
                s_in = {j: float(q[sl] @ key[j, i][sl]) / math.sqrt(dk) for j in real}
                z_out = sum(math.exp(s) for s in s_out.values())
                z_in = sum(math.exp(s) for s in s_in.values())
                acc = torch.zeros(dk, dtype=torch.float64)
                for j in real:
                    m = math.exp(s_out[j]) / z_out + math.exp(s_in[j]) / z_in
                    if j == i:
                        m -= math.exp(s_out[i]) / z_out
                    m *= att[j]
                    v = w["value"][0][sl] @ x[b, j] + w["value"][1][sl]
                    acc += m * v
                    if layer.edge_out is not None:
                        edges[b, i, j, sl] = m * key[i, j][sl]
                per_head.append(acc)
            nodes[b, i] = mish(w["node_out"][0] @ torch.cat(per_head) + w["node_out"][1])
            if layer.edge_out is not None:
                for j in real:
                    edges[b, i, j] = mish(w["edge_out"][0] @ edges[b, i, j] + w["edge_out"][1])
    return nodes, edges


def inputs(seed=0, b=2, length=5, d=8, d_bond=3):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, length, d, generator=gen)
    bonds = torch.randn(b, length, length, d_bond, generator=gen)
    bonds = bonds * (torch.rand(b, length, length, 1, generator=gen) < 0.5)  # sparse, and not symmetric
    mask = torch.tensor([[True] * length, [True, True, True] + [False] * (length - 3)])
    dist = torch.randint(0, 5, (b, length, length), generator=gen).float()
    dist = (dist + dist.transpose(1, 2)) / 2
    dist[:, torch.arange(length), torch.arange(length)] = 0
    dist[0, 0, 4] = dist[0, 4, 0] = math.inf  # another fragment
    dist[1, 3:, :] = 0
    dist[1, :, 3:] = 0  # padding
    return x, bonds, dist, mask


def layer_for(kernel, update_edges, seed=1):
    torch.manual_seed(seed)
    cfg = CoMPTConfig(atom_dim=4, bond_dim=3, d_model=8, n_heads=2, distance_kernel=kernel, update_edges=update_edges,
                      attenuation=0.3)
    return CommunicativeAttention(cfg, update_edges=update_edges).eval()


@pytest.mark.parametrize("kernel", ["exp", "softmax"])
def test_affine_edges_layer_matches_per_pair_loop(kernel):
    layer = layer_for(kernel, update_edges=False)
    x, bonds, dist, mask = inputs()
    gen = torch.Generator().manual_seed(5)
    w_b, c_b = torch.randn(8, 3, generator=gen), torch.randn(8, generator=gen)
    nodes, edges_out = layer(x, AffineEdges(bonds, w_b, c_b), dist, mask)
    assert edges_out is None
    ref, _ = naive_layer(layer, x.double(), lambda b, i, j: w_b.double() @ bonds[b, i, j].double() + c_b.double(),
                         dist, mask, kernel)
    torch.testing.assert_close(nodes[mask].double(), ref[mask], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kernel", ["exp", "softmax"])
@pytest.mark.parametrize("update_edges", [False, True])
def test_dense_edges_layer_matches_per_pair_loop(kernel, update_edges):
    layer = layer_for(kernel, update_edges)
    x, _, dist, mask = inputs()
    e = torch.randn(2, 5, 5, 8, generator=torch.Generator().manual_seed(7))  # asymmetric edge states
    nodes, edges_out = layer(x, e, dist, mask)
    ref_nodes, ref_edges = naive_layer(layer, x.double(), lambda b, i, j: e[b, i, j].double(), dist, mask, kernel)
    torch.testing.assert_close(nodes[mask].double(), ref_nodes[mask], atol=1e-5, rtol=1e-5)
    if update_edges:
        pair = mask[:, :, None] & mask[:, None, :]
        torch.testing.assert_close(edges_out[pair].double(), ref_edges[pair], atol=1e-5, rtol=1e-5)
    else:
        assert edges_out is None


def test_affine_and_dense_edges_give_the_same_layer_output():
    layer = layer_for("exp", update_edges=False)
    x, bonds, dist, mask = inputs(seed=3)
    affine = AffineEdges(bonds, torch.randn(8, 3), torch.randn(8))
    a, _ = layer(x, affine, dist, mask)
    b, _ = layer(x, affine.dense(), dist, mask)
    torch.testing.assert_close(a[mask], b[mask], atol=1e-5, rtol=1e-5)


def test_attenuation_kernel_values_and_finite_gradients():
    dist = torch.tensor([[[0.0, 1.0, math.inf, 0.0], [1.0, 0.0, math.inf, 0.0], [math.inf, math.inf, 0.0, 0.0],
                          [0.0, 0.0, 0.0, 0.0]]])
    mask = torch.tensor([[True, True, True, False]])
    lam = torch.tensor(0.5, requires_grad=True)
    k = attenuation_kernel(dist, mask, lam, "exp")
    expected = torch.tensor([[1, math.exp(-0.5), 0, 0], [math.exp(-0.5), 1, 0, 0], [0, 0, 1, 0]])
    torch.testing.assert_close(k[0, :3], expected)
    soft = attenuation_kernel(dist, mask, lam, "softmax")
    torch.testing.assert_close(soft[0, 0], torch.cat([F.softmax(torch.tensor([0.0, -0.5]), 0), torch.zeros(2)]))
    (k.sum() + soft[0, :3].sum()).backward()
    assert torch.isfinite(lam.grad)
    for value in (0.0, -0.2):  # λ is unconstrained as released: no inf·0 anywhere
        k = attenuation_kernel(dist, mask, torch.tensor(value), "exp")
        assert torch.isfinite(k).all() and k[0, 0, 2] == 0

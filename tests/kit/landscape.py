"""Slow, obviously-correct references and tiny seeded problems for the landscape tests."""
from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.autograd.functional import hessian
from torch.nn.utils import vector_to_parameters


def flat_params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).clone() for p in model.parameters() if p.requires_grad])


def reference_loss(model, batches, loss_fn, theta, forward=None, weights=None) -> float:
    """Copy the model, write θ into the copy, run every batch, batch-size-weighted mean loss."""
    m = copy.deepcopy(model)
    m.eval()
    vector_to_parameters(theta.clone(), [p for p in m.parameters() if p.requires_grad])
    fwd = forward or (lambda mod, b: mod(b[0]))
    if weights is None:
        weights = [b[0].shape[0] for b in batches]
    total = 0.0
    with torch.no_grad():
        for w, b in zip(weights, batches):
            total += float(w) * float(loss_fn(fwd(m, b), b))
    return total / float(sum(weights))


def reference_outputs(model, batches, theta, forward=None) -> list:
    m = copy.deepcopy(model)
    m.eval()
    vector_to_parameters(theta.clone(), [p for p in m.parameters() if p.requires_grad])
    fwd = forward or (lambda mod, b: mod(b[0]))
    with torch.no_grad():
        return [fwd(m, b) for b in batches]


def reference_filter_normalize(d: list[torch.Tensor], theta: list[torch.Tensor], include_1d: bool) -> list[torch.Tensor]:
    """Li et al. 2018 filter normalization, one filter at a time in Python."""
    out = []
    for dt, tt in zip(d, theta):
        dt = dt.clone()
        if dt.ndim <= 1:
            if include_1d:
                dn, tn = dt.norm().item(), tt.norm().item()
                dt = dt * (tn / dn) if dn > 0 else torch.zeros_like(dt)
            else:
                dt = torch.zeros_like(dt)
        else:
            for f in range(dt.shape[0]):
                dn, tn = dt[f].norm().item(), tt[f].norm().item()
                dt[f] = dt[f] * (tn / dn) if dn > 0 else 0.0
        out.append(dt)
    return out


def split_like(flat: torch.Tensor, model: nn.Module) -> list[torch.Tensor]:
    out, i = [], 0
    for p in model.parameters():
        if p.requires_grad:
            out.append(flat[i : i + p.numel()].view_as(p))
            i += p.numel()
    return out


def mlp(d_in: int = 6, hidden: int = 16, d_out: int = 3, act: type[nn.Module] = nn.ReLU) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, hidden), act(), nn.Linear(hidden, hidden), act(), nn.Linear(hidden, d_out))


def classification_batches(d_in: int = 6, n_classes: int = 3, sizes=(20, 12, 7), seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(n, d_in, generator=g), torch.randint(0, n_classes, (n,), generator=g)) for n in sizes
    ]


def ce_loss(out, batch):
    return nn.functional.cross_entropy(out, batch[1])


def accuracy(outputs_list, batches) -> float:
    correct = sum(int((o.argmax(-1) == b[1]).sum()) for o, b in zip(outputs_list, batches))
    return correct / sum(b[1].shape[0] for b in batches)


class TinyAttention(nn.Module):
    """One pre-norm self-attention block with explicit softmax, then mean-pool and a head."""

    def __init__(self, d_model: int = 8, heads: int = 2, d_out: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.norm(x)
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        q, k, v = (t.view(b, n, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads), dim=-1)
        y = (self.drop(att) @ v).transpose(1, 2).reshape(b, n, d)
        x = x + self.proj(y)
        return self.head(x.mean(dim=1))


# --- a tiny MLP written out by hand, for explicit Hessians -------------------------------------


def tiny_model() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def tiny_batches():
    g = torch.Generator().manual_seed(2)
    return [(torch.randn(n, 3, generator=g, dtype=torch.float64), torch.randint(0, 2, (n,), generator=g)) for n in (9, 5)]


def explicit_loss(theta: torch.Tensor, batches) -> torch.Tensor:
    """The same network written out by hand on slices of θ (no nn.Module involved)."""
    w1, b1 = theta[:12].view(4, 3), theta[12:16]
    w2, b2 = theta[16:24].view(2, 4), theta[24:26]
    n = sum(b[0].shape[0] for b in batches)
    total = theta.new_zeros(())
    for x, y in batches:
        out = torch.tanh(x @ w1.T + b1) @ w2.T + b2
        total = total + x.shape[0] / n * nn.functional.cross_entropy(out, y)
    return total


def explicit_hessian(model, batches) -> torch.Tensor:
    return hessian(lambda t: explicit_loss(t, batches), flat_params(model))


# --- a quadratic with a chosen Hessian ---------------------------------------------------------


class Quadratic(nn.Module):
    """L(θ) = ½ θᵀAθ + bᵀθ through :func:`quadratic_loss`: the Hessian is A, exactly, everywhere."""

    def __init__(self, theta0: torch.Tensor) -> None:
        super().__init__()
        self.theta = nn.Parameter(theta0.clone())

    def forward(self, batch) -> torch.Tensor:
        return self.theta


def quadratic_loss(a: torch.Tensor, b: torch.Tensor | None = None):
    b = torch.zeros(a.shape[0], dtype=a.dtype) if b is None else b
    return lambda out, batch: 0.5 * out @ a @ out + b @ out


def symmetric_with_eigenvalues(values, seed: int = 0) -> torch.Tensor:
    """Q diag(values) Qᵀ with a seeded random rotation Q (float64)."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(values), len(values), generator=g, dtype=torch.float64))
    return q @ torch.diag(torch.as_tensor(values, dtype=torch.float64)) @ q.T

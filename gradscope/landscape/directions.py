"""Directions in parameter space along which a landscape is drawn.

Random directions follow Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets"
(NeurIPS), §4 *filter normalization*: draw d ~ N(0, I) with the shape of θ, then rescale every
filter of d to the norm of the same filter of θ,

    d_{i,j} ← d_{i,j} / ‖d_{i,j}‖ · ‖θ_{i,j}‖    (filter j of layer i),

which removes the scale invariance of ReLU-type networks, so that curves of different minima
(Adam vs SAM vs GraphSAM, the GraphSAM paper's Fig. 2) can be compared. A *filter* is a slice
along dim 0 of a weight tensor (one output unit / output channel). 1-D tensors (biases, norm-layer
gains) are set to 0 as in Li et al. unless ``include_1d`` (then each counts as one filter).
A zero-norm filter of θ (e.g. the all-zero biases of a fresh transformer) gives direction 0 there,
never a division by zero. ``layer`` normalization matches whole tensors, ``model`` the whole vector.

The normalization is vectorized: each weight tensor is reshaped to ``[out, -1]`` and all its row
norms are computed at once (a loop over tensors, none over filters).

Other directions: given flat vectors (the ε/ω snapshots of a trace), the straight line between two
parameter sets (d = θ_B − θ_A, Goodfellow et al. 2015), and the top Hessian eigenvectors
(:func:`gradscope.landscape.hessian.hessian_directions`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from gradscope.errors import ConfigError, GradscopeError
from gradscope.optim.flat import FlatLayout
from gradscope.landscape.settings import NORMALIZATIONS

DIRECTION_KINDS = ("random", "vectors", "interpolation", "hessian")


@dataclass(frozen=True, eq=False)
class Directions:
    """``k`` flat directions over one parameter layout.

    Attributes:
        vectors: ``[k, P]`` the directions d₁ … d_k as applied (after normalization).
        layout: the parameters they live on.
        kind: ``random``, ``vectors``, ``interpolation`` or ``hessian``.
        normalization: what scaling was applied (``filter``, ``layer``, ``model``, ``none``).
        include_1d: whether 1-D tensors were perturbed.
        seed: the seed of random directions (else ``None``).
        raw: ``[k, P]`` the vectors before normalization (to re-normalize them for another
            parameter set), or ``None`` when ``vectors`` are used as given.
        eigenvalues: the Hessian eigenvalues of ``hessian`` directions.
    """

    vectors: torch.Tensor
    layout: FlatLayout
    kind: str
    normalization: str = "none"
    include_1d: bool = False
    seed: int | None = None
    raw: torch.Tensor | None = None
    eigenvalues: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or self.vectors.shape[1] != self.layout.numel:
            raise GradscopeError(
                f"directions must be [k, {self.layout.numel}], got {tuple(self.vectors.shape)}"
            )
        if self.kind not in DIRECTION_KINDS:
            raise ConfigError(f"direction kind must be one of {', '.join(DIRECTION_KINDS)}; got {self.kind!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ConfigError(f"normalization must be one of {', '.join(NORMALIZATIONS)}")
        if self.raw is not None and self.raw.shape != self.vectors.shape:
            raise GradscopeError("raw and normalized directions differ in shape")

    @property
    def k(self) -> int:
        return int(self.vectors.shape[0])

    def to(self, device: torch.device | str) -> Directions:
        return replace(
            self,
            vectors=self.vectors.to(device),
            raw=None if self.raw is None else self.raw.to(device),
        )

    def select(self, k: int) -> Directions:
        """The first ``k`` directions."""
        if k > self.k:
            raise ConfigError(f"{k} directions needed, only {self.k} given")
        if k == self.k:
            return self
        eig = None if self.eigenvalues is None else self.eigenvalues[:k]
        raw = None if self.raw is None else self.raw[:k]
        return replace(self, vectors=self.vectors[:k], raw=raw, eigenvalues=eig)

    def renormalized(self, model: nn.Module) -> Directions:
        """The same raw directions normalized to ``model``'s parameters (another checkpoint).

        With filter normalization this is how Li et al. 2018 compare minima: one random draw,
        scaled to each parameter set's own filters.
        """
        if self.raw is None:
            raise GradscopeError(f"{self.kind} directions keep no raw vectors to re-normalize")
        origin = self.layout.flatten_module(model)
        raw = self.raw.to(origin.device)
        vectors = normalize_directions(raw, origin, self.layout, self.normalization, self.include_1d)
        return replace(self, vectors=vectors, raw=raw)


def normalize_directions(
    directions: torch.Tensor,
    origin: torch.Tensor,
    layout: FlatLayout,
    normalization: str = "filter",
    include_1d: bool = False,
) -> torch.Tensor:
    """Scale raw directions ``[k, P]`` (or ``[P]``) to the parameters ``origin`` ``[P]``.

    ``filter``: every row of every weight tensor (reshaped ``[out, -1]``) gets the norm of the
    same row of θ (Li et al. 2018, §4); ``layer``: every tensor gets its tensor's norm; ``model``:
    the whole vector gets ‖θ‖ (over the perturbed entries). 1-D and 0-d tensors are zeroed unless
    ``include_1d``, then each is one filter. ``none`` returns the directions unchanged.
    Zero norms give zero direction entries, never NaN. Returns a new tensor.
    """
    if normalization not in NORMALIZATIONS:
        raise ConfigError(f"normalization must be one of {', '.join(NORMALIZATIONS)}; got {normalization!r}")
    squeeze = directions.ndim == 1
    d = directions.unsqueeze(0) if squeeze else directions
    if d.shape[-1] != layout.numel or origin.shape != (layout.numel,):
        raise GradscopeError("directions and parameters do not match the layout")
    out = d.clone()
    if normalization == "none":
        return out.squeeze(0) if squeeze else out
    theta = origin.to(out.dtype)
    k = out.shape[0]
    tiny = torch.finfo(out.dtype).tiny
    for (a, b), shape in zip(layout.spans, layout.shapes):
        if a == b:
            continue
        seg = out[:, a:b]
        if len(shape) <= 1 and not include_1d:
            seg.zero_()
            continue
        if normalization == "filter" and len(shape) >= 2:
            rows = seg.view(k, shape[0], -1)
            t_norm = torch.linalg.vector_norm(theta[a:b].view(shape[0], -1), dim=1)  # [out]
            d_norm = torch.linalg.vector_norm(rows, dim=2)  # [k, out]
            scale = torch.where(d_norm > 0, t_norm / d_norm.clamp_min(tiny), torch.zeros_like(d_norm))
            rows.mul_(scale.unsqueeze(-1))
        elif normalization in ("filter", "layer"):
            t_norm = torch.linalg.vector_norm(theta[a:b])
            d_norm = torch.linalg.vector_norm(seg, dim=1, keepdim=True)  # [k, 1]
            scale = torch.where(d_norm > 0, t_norm / d_norm.clamp_min(tiny), torch.zeros_like(d_norm))
            seg.mul_(scale)
    if normalization == "model":
        mask = torch.zeros(layout.numel, dtype=torch.bool, device=out.device)
        for (a, b), shape in zip(layout.spans, layout.shapes):
            if len(shape) >= 2 or include_1d:
                mask[a:b] = True
        t_norm = torch.linalg.vector_norm(theta[mask])
        d_norm = torch.linalg.vector_norm(out, dim=1, keepdim=True)
        scale = torch.where(d_norm > 0, t_norm / d_norm.clamp_min(tiny), torch.zeros_like(d_norm))
        out.mul_(scale)
    return out.squeeze(0) if squeeze else out


def gaussian_directions(layout: FlatLayout, k: int, seed: int) -> torch.Tensor:
    """``[k, P]`` standard normal draws from a seeded CPU generator (same numbers on every device)."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(k, layout.numel, generator=gen, dtype=layout.flat_dtype)


def random_directions(
    model: nn.Module,
    k: int = 2,
    *,
    seed: int = 0,
    normalization: str = "filter",
    include_1d: bool = False,
    layout: FlatLayout | None = None,
) -> Directions:
    """``k`` seeded Gaussian directions normalized to ``model``'s parameters (filter-wise by default)."""
    if k < 1:
        raise ConfigError(f"k must be positive, got {k}")
    layout = layout or FlatLayout.from_module(model)
    origin = layout.flatten_module(model)
    raw = gaussian_directions(layout, k, seed).to(origin.device)
    vectors = normalize_directions(raw, origin, layout, normalization, include_1d)
    return Directions(
        vectors=vectors, layout=layout, kind="random", normalization=normalization,
        include_1d=include_1d, seed=int(seed), raw=raw,
    )


def _to_tensor(vector: object) -> torch.Tensor:
    if isinstance(vector, torch.Tensor):
        return vector.detach().reshape(-1)
    return torch.as_tensor(np.asarray(vector)).reshape(-1)


def directions_from_vectors(
    model: nn.Module,
    vectors: Sequence[object] | torch.Tensor | np.ndarray,
    *,
    param_names: Sequence[str] | None = None,
    param_shapes: Sequence[Sequence[int]] | None = None,
    normalization: str = "filter",
    include_1d: bool = False,
) -> Directions:
    """Directions from flat vectors, e.g. the ε_t, ω_t snapshots of a trace's ``vectors`` group.

    Args:
        model: the parameter set the directions are for (its trainable parameters, in
            ``named_parameters`` order, define the layout).
        vectors: one flat vector or a sequence / ``[k, P]`` array of them (numpy or torch).
        param_names: the order of the parameters inside the vectors when it is not the model's
            (e.g. an optimizer's param order); entries are reordered into the model's layout.
        param_shapes: their shapes, checked against the model when given.
        normalization: applied to the vectors (``filter`` by default so that ranges are comparable
            with random directions; ``none`` keeps the raw gradient scale).
        include_1d: perturb 1-D tensors too (with ``normalization="none"`` they are always kept).
    """
    layout = FlatLayout.from_module(model)
    if isinstance(vectors, (torch.Tensor, np.ndarray)) and np.ndim(vectors) == 1:
        vectors = [vectors]
    stacked = torch.stack([_to_tensor(v) for v in vectors]).to(layout.flat_dtype)
    origin = layout.flatten_module(model)
    stacked = stacked.to(origin.device)
    if param_names is not None:
        stacked = _reorder(stacked, layout, model, list(param_names), param_shapes)
    elif stacked.shape[1] != layout.numel:
        raise GradscopeError(
            f"vectors have {stacked.shape[1]} entries but the model has {layout.numel} trainable parameters"
        )
    normalized = normalize_directions(stacked, origin, layout, normalization, include_1d)
    return Directions(
        vectors=normalized, layout=layout, kind="vectors", normalization=normalization,
        include_1d=include_1d, raw=stacked,
    )


def _reorder(
    stacked: torch.Tensor,
    layout: FlatLayout,
    model: nn.Module,
    names: list[str],
    shapes: Sequence[Sequence[int]] | None,
) -> torch.Tensor:
    params = dict(model.named_parameters())
    unknown = [n for n in names if n not in params]
    if unknown:
        raise GradscopeError(f"vector parameter {unknown[0]!r} is not a parameter of the model")
    sizes = [params[n].numel() for n in names]
    if shapes is not None:
        for n, s in zip(names, shapes):
            if tuple(int(x) for x in s) != tuple(params[n].shape):
                raise GradscopeError(f"vector parameter {n!r} has shape {tuple(s)}, the model's is {tuple(params[n].shape)}")
    if sum(sizes) != stacked.shape[1]:
        raise GradscopeError(f"vectors have {stacked.shape[1]} entries, the named parameters {sum(sizes)}")
    starts = np.concatenate([[0], np.cumsum(sizes)])
    where = {n: (int(starts[i]), int(starts[i + 1])) for i, n in enumerate(names)}
    pieces = []
    for name, numel in zip(layout.names, layout.numels):
        if name in where:
            a, b = where[name]
            pieces.append(stacked[:, a:b])
        else:  # a trainable parameter the vectors do not cover: no movement there
            pieces.append(stacked.new_zeros(stacked.shape[0], numel))
    return torch.cat(pieces, dim=1)


def interpolation_direction(
    model_a: nn.Module, model_b: nn.Module | Mapping[str, torch.Tensor]
) -> Directions:
    """d = θ_B − θ_A, so that coordinate α walks θ_A (α=0) → θ_B (α=1) on the line through both.

    Use a range such as ``(-0.5, 1.5)`` to see beyond both ends (e.g. an Adam minimum vs a SAM
    minimum). ``model_b`` may be a module or a state dict with the same parameter names.
    """
    layout = FlatLayout.from_module(model_a)
    theta_a = layout.flatten_module(model_a)
    if isinstance(model_b, nn.Module):
        theta_b = layout.flatten_module(model_b)
    else:
        missing = [n for n in layout.names if n not in model_b]
        if missing:
            raise GradscopeError(f"the second parameter set has no {missing[0]!r}")
        for n, s in zip(layout.names, layout.shapes):
            if tuple(model_b[n].shape) != s:
                raise GradscopeError(f"parameter {n!r} has shape {tuple(model_b[n].shape)} in the second set, {s} in the first")
        theta_b = layout.flatten(model_b)
    d = (theta_b.to(theta_a.device) - theta_a).unsqueeze(0)
    return Directions(vectors=d, layout=layout, kind="interpolation", normalization="none")

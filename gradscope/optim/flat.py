"""Flat contiguous buffers over a fixed list of parameters.

The sharpness-aware optimizers keep θ (a backup), ε, ε̂ and ω each as one 1-D tensor with a
view per parameter. A global norm or dot product is then one kernel, a copy between the model
and a buffer is one foreach call, and per-tensor quantities (the released GraphSAM code and the
LookSAM reference code work per tensor) come from ``torch._foreach_norm`` over the views or one
segmented reduction. Nothing here reads a device value on the host.

:class:`FlatLayout` is also the one flat-parameter layout for the rest of gradscope: it knows the
parameters' names (when given), builds itself from a module (:meth:`FlatLayout.from_module`) and
maps between flat vectors and per-parameter tensors (:meth:`flatten`, :meth:`unflatten`,
:meth:`named`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from gradscope.errors import GradscopeError


class FlatBuffer:
    """A 1-D tensor ``data`` and, in parameter order, ``views`` of it shaped like each parameter.

    ``present`` is set by the optimizer when a forward-backward pass writes the buffer: one
    host-side flag per parameter, False where the pass gave that parameter no gradient (its
    slice is then zero). ``None`` while no pass has written the buffer.
    """

    __slots__ = ("data", "views", "present")

    def __init__(self, data: torch.Tensor, views: list[torch.Tensor]) -> None:
        self.data = data
        self.views = views
        self.present: tuple[bool, ...] | None = None


class FlatLayout:
    """Where each parameter lives in a flat vector (offsets, sizes, shapes, names), plus helpers.

    Args:
        params: the parameters, in the order the flat vectors use. All on one device.
        names: their names (as ``model.named_parameters()`` gives them), or None when unknown.
    """

    def __init__(self, params: Sequence[torch.Tensor], names: Sequence[str] | None = None) -> None:
        self.params: list[torch.Tensor] = list(params)
        if not self.params:
            raise GradscopeError("a flat layout needs at least one parameter")
        if names is not None and len(names) != len(self.params):
            raise GradscopeError(f"{len(names)} names for {len(self.params)} parameters")
        if names is not None and len(set(names)) != len(names):
            raise GradscopeError("duplicate parameter names in a flat layout")
        self.names: tuple[str, ...] | None = None if names is None else tuple(names)
        self.shapes = [p.shape for p in self.params]
        self.numels = [p.numel() for p in self.params]
        self.offsets: list[int] = []
        total = 0
        for n in self.numels:
            self.offsets.append(total)
            total += n
        self.numel = total
        self.device = self.params[0].device
        # per-tensor sizes on the device, for per-tensor reductions and expansions without a host read
        self._numels_t = torch.tensor(self.numels, dtype=torch.long, device=self.device)

    @classmethod
    def from_module(cls, model: nn.Module, trainable_only: bool = True) -> FlatLayout:
        """The layout of ``model``'s named parameters (those with ``requires_grad`` unless told otherwise)."""
        items = [(n, p) for n, p in model.named_parameters() if p.requires_grad or not trainable_only]
        if not items:
            raise GradscopeError("the model has no trainable parameters")
        return cls([p for _, p in items], [n for n, _ in items])

    # ------------------------------------------------------------------ buffers
    def buffer(self, dtype: torch.dtype = torch.float32) -> FlatBuffer:
        """A zero-filled flat buffer of this layout."""
        data = torch.zeros(self.numel, dtype=dtype, device=self.device)
        return FlatBuffer(data, self.views(data))

    def views(self, data: torch.Tensor) -> list[torch.Tensor]:
        """Per-parameter views of a flat tensor of this layout (``[..., P]`` gives ``[..., *shape]``)."""
        lead = tuple(data.shape[:-1])
        return [data[..., o:o + n].view(lead + tuple(s)) for o, n, s in zip(self.offsets, self.numels, self.shapes)]

    # --------------------------------------------------------- flat <-> tensors
    def flatten(self, tensors: Sequence[torch.Tensor] | Mapping[str, torch.Tensor] | None = None,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """One new flat vector of ``tensors`` (in layout order, or by name), θ itself when None."""
        if tensors is None:
            tensors = self.params
        elif isinstance(tensors, Mapping):
            if self.names is None:
                raise GradscopeError("this flat layout has no parameter names; pass the tensors in order")
            missing = [n for n in self.names if n not in tensors]
            if missing:
                raise GradscopeError(f"no tensor named {missing[0]!r} to flatten")
            tensors = [tensors[n] for n in self.names]
        if len(tensors) != len(self.params):
            raise GradscopeError(f"expected {len(self.params)} tensors, got {len(tensors)}")
        return torch.cat([t.detach().reshape(-1).to(dtype) for t in tensors])

    def unflatten(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Views of ``flat`` (``[..., P]``) shaped like each parameter, in layout order (no copy)."""
        if flat.shape[-1] != self.numel:
            raise GradscopeError(f"flat vector has {flat.shape[-1]} entries, the layout has {self.numel}")
        return self.views(flat)

    def named(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{name: view}`` of ``flat``, the form ``torch.func.functional_call`` takes."""
        if self.names is None:
            raise GradscopeError("this flat layout has no parameter names")
        return dict(zip(self.names, self.unflatten(flat)))

    # ------------------------------------------------------ per-tensor reductions
    def per_tensor_norms(self, buf: FlatBuffer) -> torch.Tensor:
        """‖x_k‖₂ of each parameter's slice, as a 1-D tensor (one foreach kernel)."""
        return torch.stack(torch._foreach_norm(buf.views))

    def per_tensor_dots(self, a: torch.Tensor, b: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
        """x_k·y_k of each parameter's slices of flat ``a`` and ``b`` (``scratch`` is overwritten)."""
        torch.mul(a, b, out=scratch)
        # unsafe=True: the lengths are ours and valid; validating them would read them on the host
        return torch.segment_reduce(scratch, "sum", lengths=self._numels_t, unsafe=True)

    def expand(self, per_tensor: torch.Tensor) -> torch.Tensor:
        """Repeat one value per parameter over that parameter's slice (a flat tensor)."""
        return torch.repeat_interleave(per_tensor, self._numels_t, output_size=self.numel)

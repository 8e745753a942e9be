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
        params = list(params)
        if not params:
            raise GradscopeError("a flat layout needs at least one parameter")
        self._describe(names, [p.shape for p in params], [p.dtype for p in params], params[0].device)
        self.params: list[torch.Tensor] | None = params  # None for a described layout

    def _describe(self, names: Sequence[str] | None, shapes: Sequence[Sequence[int]],
                  dtypes: Sequence[torch.dtype], device: torch.device) -> None:
        """Set the geometry (names, shapes, dtypes, offsets) shared by bound and described layouts."""
        if names is not None and len(names) != len(shapes):
            raise GradscopeError(f"{len(names)} names for {len(shapes)} parameters")
        if names is not None and len(set(names)) != len(names):
            raise GradscopeError("duplicate parameter names in a flat layout")
        self.names: tuple[str, ...] | None = None if names is None else tuple(names)
        self.shapes = [torch.Size(s) for s in shapes]
        self.dtypes: tuple[torch.dtype, ...] = tuple(dtypes)
        self.numels = [s.numel() for s in self.shapes]
        self.offsets: list[int] = []
        total = 0
        for n in self.numels:
            self.offsets.append(total)
            total += n
        self.numel = total
        #: ``(start, end)`` of each parameter's slice of a flat vector
        self.spans: list[tuple[int, int]] = [(o, o + n) for o, n in zip(self.offsets, self.numels)]
        self.device = device
        # per-tensor sizes on the device, for per-tensor reductions and expansions without a host read
        self._numels_t = torch.tensor(self.numels, dtype=torch.long, device=self.device)

    @classmethod
    def described(cls, names: Sequence[str], shapes: Sequence[Sequence[int]],
                  dtypes: Sequence[torch.dtype]) -> FlatLayout:
        """A layout known by its names, shapes and dtypes only (e.g. read back from a file): it maps
        flat vectors to named tensors and finds its parameters in a model (:meth:`parameters`)."""
        if not shapes:
            raise GradscopeError("a flat layout needs at least one parameter")
        layout = cls.__new__(cls)
        layout._describe(names, shapes, dtypes, torch.device("cpu"))
        layout.params = None
        return layout

    @classmethod
    def from_module(cls, model: nn.Module, trainable_only: bool = True) -> FlatLayout:
        """The layout of ``model``'s named parameters (those with ``requires_grad`` unless told otherwise)."""
        items = [(n, p) for n, p in model.named_parameters() if p.requires_grad or not trainable_only]
        if not items:
            raise GradscopeError("the model has no trainable parameters")
        return cls([p for _, p in items], [n for n, _ in items])

    @property
    def flat_dtype(self) -> torch.dtype:
        """The common floating type of the parameters (float32 for a float32 model)."""
        dtype = self.dtypes[0]
        for other in self.dtypes[1:]:
            dtype = torch.promote_types(dtype, other)
        return dtype

    def parameters(self, model: nn.Module) -> list[torch.Tensor]:
        """``model``'s parameters of this layout, by name and in layout order (errors when they do not fit)."""
        if self.names is None:
            raise GradscopeError("this flat layout has no parameter names")
        named = dict(model.named_parameters())
        missing = [n for n in self.names if n not in named]
        if missing:
            raise GradscopeError(f"the model has no parameter {missing[0]!r} of the layout")
        tensors = [named[n] for n in self.names]
        for name, t, shape in zip(self.names, tensors, self.shapes):
            if t.shape != shape:
                raise GradscopeError(f"parameter {name!r} has shape {tuple(t.shape)}, the layout says {tuple(shape)}")
        return tensors

    def flatten_module(self, model: nn.Module) -> torch.Tensor:
        """θ of ``model`` (its parameters of this layout) as one new flat vector, on the model's device."""
        return self.flatten(self.parameters(model))

    def __eq__(self, other: object) -> bool:
        """Same names, shapes and dtypes (the parameter tensors themselves are not compared)."""
        if not isinstance(other, FlatLayout):
            return NotImplemented
        return (self.names, self.shapes, self.dtypes) == (other.names, other.shapes, other.dtypes)

    __hash__ = None  # type: ignore[assignment]  # mutable parameters behind it: no hashing

    def to_dict(self) -> dict:
        """Names, shapes and dtypes as JSON-ready values (:meth:`from_dict` reads them back)."""
        if self.names is None:
            raise GradscopeError("this flat layout has no parameter names")
        return {"names": list(self.names), "shapes": [list(s) for s in self.shapes],
                "dtypes": [str(d).removeprefix("torch.") for d in self.dtypes]}

    @classmethod
    def from_dict(cls, data: Mapping) -> FlatLayout:
        """The described layout of :meth:`to_dict`'s output."""
        try:
            return cls.described(tuple(data["names"]), [tuple(int(x) for x in s) for s in data["shapes"]],
                                 [getattr(torch, d) for d in data["dtypes"]])
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise GradscopeError(f"not a stored parameter layout ({exc})") from None

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
                dtype: torch.dtype | None = None) -> torch.Tensor:
        """One new flat vector of ``tensors`` (in layout order, or by name), θ itself when None; in
        ``dtype``, by default the parameters' common type :attr:`flat_dtype`."""
        if tensors is None:
            if self.params is None:
                raise GradscopeError("this flat layout is only described: pass the tensors to flatten")
            tensors = self.params
        elif isinstance(tensors, Mapping):
            if self.names is None:
                raise GradscopeError("this flat layout has no parameter names; pass the tensors in order")
            missing = [n for n in self.names if n not in tensors]
            if missing:
                raise GradscopeError(f"no tensor named {missing[0]!r} to flatten")
            tensors = [tensors[n] for n in self.names]
        if len(tensors) != len(self.shapes):
            raise GradscopeError(f"expected {len(self.shapes)} tensors, got {len(tensors)}")
        dtype = dtype or self.flat_dtype
        return torch.cat([t.detach().reshape(-1).to(dtype) for t in tensors])

    def unflatten(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Views of ``flat`` (``[..., P]``) shaped like each parameter, in layout order (no copy)."""
        if flat.shape[-1] != self.numel:
            raise GradscopeError(f"flat vector has {flat.shape[-1]} entries, the layout has {self.numel}")
        return self.views(flat)

    def named(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{name: view}`` of ``flat`` (``[..., P]``), the form ``torch.func.functional_call`` takes;
        a view is cast to its parameter's dtype where that differs from the flat vector's."""
        if self.names is None:
            raise GradscopeError("this flat layout has no parameter names")
        return {name: v if v.dtype == dtype else v.to(dtype)
                for name, v, dtype in zip(self.names, self.unflatten(flat), self.dtypes)}

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

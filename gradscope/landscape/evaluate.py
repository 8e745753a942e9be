"""Batched evaluation of L(θ₀ + Σ_j c_j d_j) at many points.

Each point's parameters are built afresh from θ₀ (``θ₀ + C·D`` as one ``addmm`` over a chunk of
points; no accumulated drift), and a chunk of points is evaluated in one call of
``torch.func.vmap(functional_call)`` over a stacked leading parameter dimension — one batched
forward for ``C`` parameter sets instead of ``C`` forwards. The model itself is never written to.

The chunk size is capped by a memory estimate (parameters plus an upper bound of the bytes one
forward allocates); below the cap it is tuned by timing the first chunks (1, 4, 16, … points; the
fastest points/s wins; one point is a plain call, so a model that does not gain from batching ends
up in a per-point loop), and it is halved when a chunk raises (out of memory or another
``RuntimeError``).
Where an operation does not batch under vmap (data-dependent control flow, some fused kernels),
the first failure is caught once, a warning is given, and this evaluator continues with a
per-point loop.
"""
from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import vmap
from torch.utils import _pytree as pytree

from gradscope.errors import ConfigError, GradscopeError
from gradscope.landscape.functional import (
    Batch,
    ForwardFn,
    FunctionalModel,
    LossFn,
    MetricFn,
    batch_size,
    eval_mode,
)
from gradscope.optim.flat import FlatLayout
from gradscope.progress import Progress

ChunkCallback = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], None]
"""``on_chunk(point_indices, losses, metrics)`` called after every evaluated chunk."""


@dataclass
class EvalResult:
    """Loss (and metric, else ``None``) per evaluated point, float64, in the order given."""

    loss: np.ndarray
    metric: np.ndarray | None


def _allocated_bytes(fn: Callable[[], Any]) -> int:
    """An upper bound of the bytes ``fn`` allocates: the sum of the sizes of all op outputs.

    Counted with a dispatch mode (device independent); freed temporaries are counted too, so
    the bound is conservative. Returns 0 if counting is not possible.
    """
    try:
        from torch.utils._python_dispatch import TorchDispatchMode
    except ImportError:  # pragma: no cover - very old torch
        return 0

    class _Count(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            out = func(*args, **(kwargs or {}))
            for t in pytree.tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    self.total += t.numel() * t.element_size()
            return out

    counter = _Count()
    try:
        with counter:
            fn()
    except Exception:  # noqa: BLE001 - an estimate only; the real run reports real errors
        return 0
    return counter.total


class _ChunkTuner:
    """Picks the fastest chunk size by timing real chunks of 1, 4, 16, 64, … points (≤ the cap).

    Batching grid points into one call removes per-operation overhead but makes every
    activation ``C`` times larger; a CPU then falls out of cache and a GPU saturates, and for a
    compute-bound model on a CPU batching may not pay at all (size 1 is a plain per-point call).
    Throughput is not monotone in ``C`` either — small batched sizes often lose to a plain call
    while larger ones win — so every candidate is timed (there are few: powers of four) and the
    best points/s is kept. The timed chunks are real grid points, so no work is wasted.
    """

    def __init__(self, cap: int) -> None:
        cap = max(cap, 1)
        sizes = [1]
        while sizes[-1] * 4 <= cap:
            sizes.append(sizes[-1] * 4)
        if sizes[-1] != cap:
            sizes.append(cap)
        # the first chunk (one point) is a warm-up, not timed: a first call pays for allocations
        # and caches, and timing it would bias the choice against plain per-point calls
        self.sizes = [1, *sizes]
        self.i = 0
        self.best = 1
        self.best_rate = 0.0
        self.active = True

    def next_size(self) -> int:
        return self.sizes[self.i]

    def record(self, size: int, seconds: float) -> None:
        rate = size / max(seconds, 1e-9)
        if self.i > 0 and rate > self.best_rate:
            self.best, self.best_rate = size, rate
        self.i += 1
        if self.i >= len(self.sizes):
            self.active = False

    def limit(self, cap: int) -> None:
        """After an out-of-memory failure: never try more than ``cap`` points again."""
        cap = max(1, cap)
        kept = [s for s in self.sizes[self.i:] if s <= cap]
        self.sizes = self.sizes[:self.i] + kept
        self.best = min(self.best, cap)
        if self.i >= len(self.sizes):
            self.active = False


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


class LandscapeEvaluator:
    """Evaluates the loss (and a metric) of ``model`` at θ₀ + c·D for many coefficient rows c.

    Args:
        model: the parameter set θ₀ (read, never written).
        batches: the fixed evaluation set.
        loss_fn: ``loss_fn(outputs, batch) -> 0-d tensor`` (mean over the batch).
        metric_fn: optional ``metric_fn(outputs_list, batches) -> float`` over the whole set, where
            ``outputs_list[b]`` are one point's outputs on ``batches[b]``.
        forward: ``forward(model, batch) -> outputs``.
        layout: the perturbed parameters (default: all trainable ones).
        batch_weights: per-batch loss weights (default: batch sizes).
        chunk_size: points per batched call (``None``: tuned by timing, below a memory estimate
            and ``max_chunk_size``).
        memory_budget_mb: memory for one chunk on a CPU; on CUDA half the free memory is used.
        mode: ``auto`` (vmap, with a per-point fallback), ``vmap`` or ``loop``.

    Attributes:
        mode: after the first evaluation, ``vmap`` or ``loop`` — what is actually used.
        chunk_size: the chunk size in use (tuned on the first call, halved after failures).
    """

    def __init__(
        self,
        model: nn.Module,
        batches: Sequence[Batch],
        loss_fn: LossFn,
        *,
        metric_fn: MetricFn | None = None,
        forward: ForwardFn | None = None,
        layout: FlatLayout | None = None,
        batch_weights: Sequence[float] | None = None,
        chunk_size: int | None = None,
        max_chunk_size: int = 64,
        memory_budget_mb: float = 1024.0,
        mode: str = "auto",
    ) -> None:
        if mode not in ("auto", "vmap", "loop"):
            raise ConfigError(f"mode must be auto, vmap or loop; got {mode!r}")
        if chunk_size is not None and chunk_size < 1:
            raise ConfigError(f"chunk_size must be positive, got {chunk_size}")
        self.fm = FunctionalModel(model, batches, loss_fn, forward=forward, layout=layout, batch_weights=batch_weights)
        self.metric_fn = metric_fn
        self.mode = mode
        self.chunk_size = chunk_size
        self.max_chunk_size = int(max_chunk_size)
        self.memory_budget_mb = float(memory_budget_mb)
        self.origin = self.fm.origin()
        self._tuner: _ChunkTuner | None = None
        self._scratch: Any = None  # see _scratch_model

    @property
    def layout(self) -> FlatLayout:
        return self.fm.layout

    # ----------------------------------------------------------------------------- public
    def evaluate(
        self,
        directions: torch.Tensor,
        coefficients: np.ndarray | torch.Tensor,
        *,
        indices: np.ndarray | None = None,
        progress: bool = False,
        desc: str = "landscape",
        on_chunk: ChunkCallback | None = None,
    ) -> EvalResult:
        """Loss (and metric) at θ₀ + coefficients[i] @ directions for every row i.

        Args:
            directions: ``[k, P]``.
            coefficients: ``[N, k]`` (float64 recommended; applied in the parameters' dtype).
            indices: labels of the rows handed to ``on_chunk`` (default ``arange(N)``).
            progress: show progress (a bar on a terminal, lines in logs: :mod:`gradscope.progress`).
            on_chunk: called after each chunk with (indices, losses, metrics) — for writing
                results as they come (resumable files).
        """
        coeffs = torch.as_tensor(np.asarray(coefficients), dtype=torch.float64)
        if coeffs.ndim != 2 or directions.ndim != 2 or coeffs.shape[1] != directions.shape[0]:
            raise GradscopeError(
                f"coefficients {tuple(coeffs.shape)} do not match directions {tuple(directions.shape)}"
            )
        if directions.shape[1] != self.layout.numel:
            raise GradscopeError(f"directions have {directions.shape[1]} entries, the model {self.layout.numel}")
        n = coeffs.shape[0]
        labels = np.arange(n) if indices is None else np.asarray(indices)
        loss_out = np.full(n, np.nan)
        metric_out = np.full(n, np.nan) if self.metric_fn is not None else None
        if n == 0:
            return EvalResult(loss_out, metric_out)
        d = directions.to(device=self.origin.device, dtype=self.origin.dtype)
        with eval_mode(self.fm.model), torch.no_grad():
            self._plan_chunks(d)
            tuner = self._tuner if self._tuner is not None and self._tuner.active else None  # tuning goes on
            bar = Progress(n, desc, unit="points", enabled=progress)
            pos = 0
            try:
                while pos < n:
                    tuning = tuner is not None and tuner.active
                    size = min(tuner.next_size() if tuning else self.chunk_size, n - pos)  # type: ignore[union-attr]
                    start = time.perf_counter()
                    result = self._try_chunk(d, coeffs[pos : pos + size], tuner)
                    if result is None:  # out of memory: the chunk size was halved, try again
                        continue
                    losses, metrics = result
                    if tuning:
                        self._tuned(tuner, size, time.perf_counter() - start)  # type: ignore[arg-type]
                    loss_out[pos : pos + size] = losses
                    if metric_out is not None and metrics is not None:
                        metric_out[pos : pos + size] = metrics
                    if on_chunk is not None:
                        on_chunk(labels[pos : pos + size], losses, metrics)
                    pos += size
                    bar.update(size)
            finally:
                bar.close(finished=pos >= n)
        return EvalResult(loss_out, metric_out)

    def _plan_chunks(self, d: torch.Tensor) -> None:
        """Choose the evaluation mode (``auto``) and the first chunk size when none is set: the
        memory estimate's cap, tuned by timing for vmap; at most 16 for a loop, which gains
        nothing from large chunks (they only set the write granularity)."""
        if self.mode == "auto":
            self._choose_mode(d)
        if self.chunk_size is None:
            cap = self._estimate_chunk_size()
            if self.mode == "vmap":
                self._tuner = _ChunkTuner(cap)
                self.chunk_size = self._tuner.best
            else:
                self.chunk_size = min(cap, 16)

    def _try_chunk(self, d: torch.Tensor, coeffs: torch.Tensor,
                   tuner: _ChunkTuner | None) -> tuple[np.ndarray, np.ndarray | None] | None:
        """Losses and metrics of one chunk; None after running out of memory on more than one
        point (the chunk size is halved: the caller tries again); a one-line error on one point."""
        size = coeffs.shape[0]
        try:
            return self._run_chunk(d, coeffs)
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if size > 1:
                self.chunk_size = max(1, min(self.chunk_size, size // 2))  # type: ignore[type-var]
                if tuner is not None:
                    tuner.limit(size // 2)
                if d.device.type == "cuda":
                    torch.cuda.empty_cache()
                return None
            if _is_oom(exc):
                raise GradscopeError("out of memory evaluating a single grid point: use smaller evaluation batches") from exc
            raise

    def _tuned(self, tuner: _ChunkTuner, size: int, seconds: float) -> None:
        """Record a timed chunk; when tuning ends with one point at a time (plain calls) beating
        every batched size, evaluate in a loop from then on."""
        tuner.record(size, seconds)
        self.chunk_size = tuner.best
        if not tuner.active and tuner.best == 1:
            self.mode = "loop"
            self.chunk_size = min(tuner.sizes[-1], 16)

    def plain_loss(self) -> float:
        """L(θ₀) by a plain (un-batched) pass — the value the landscape's centre must equal."""
        with eval_mode(self.fm.model), torch.no_grad():
            return float(self.fm.loss(self.origin).double().cpu())

    # ----------------------------------------------------------------------------- internals
    def _points(self, d: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
        """``[C, P]`` parameter vectors θ₀ + c_i·D, each built from θ₀ (no drift)."""
        c = coeffs.to(device=d.device, dtype=d.dtype)
        return torch.addmm(self.origin, c, d)

    def _vmapped(self, flat: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, Any]:
        params = self.fm.named(flat)
        want_out = self.metric_fn is not None

        def one(p: dict[str, torch.Tensor]) -> Any:
            loss, out = self.fm.batch_loss(p, batch)
            return (loss, out) if want_out else loss

        result = vmap(one)(params)
        return result if want_out else (result, None)

    def _scratch_model(self) -> tuple[nn.Module, list[torch.Tensor]] | None:
        """A private copy of the model whose parameters the per-point path overwrites.

        Writing one point's parameters once and running every batch costs one copy per point;
        ``functional_call`` would re-bind every parameter on every batch. The copy is taken at
        first use and costs one more set of parameters in memory. ``None`` (use
        ``functional_call``) when the model cannot be deep-copied.
        """
        if self._scratch is None:
            try:
                model = copy.deepcopy(self.fm.model)
            except Exception:  # noqa: BLE001 - e.g. a module holding an uncopyable handle
                self._scratch = False
            else:
                model.eval()
                self._scratch = (model, self.layout.parameters(model))
        return None if self._scratch is False else self._scratch

    def _looped(self, flat: torch.Tensor) -> tuple[torch.Tensor, list[list[Any]]]:
        """Per point: every batch, with the point's parameters; losses ``[C, n_batches]``."""
        scratch = self._scratch_model()
        losses, outs = [], []
        for i in range(flat.shape[0]):
            if scratch is not None:
                model, params = scratch
                for p, v in zip(params, self.layout.named(flat[i]).values()):
                    p.copy_(v)
                pairs = [self.fm.batch_loss_of(model, batch) for batch in self.fm.batches]
            else:
                named = self.fm.named(flat[i])
                pairs = [self.fm.batch_loss(named, batch) for batch in self.fm.batches]
            losses.append(torch.stack([loss for loss, _ in pairs]))
            outs.append([out for _, out in pairs])
        return torch.stack(losses), outs

    def _run_chunk(self, d: torch.Tensor, coeffs: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        flat = self._points(d, coeffs)
        c = flat.shape[0]
        weights = torch.tensor(self.fm.weights, dtype=torch.float64, device=flat.device)
        per_point_outputs: list[list[Any]] = [[] for _ in range(c)]
        if self.mode == "vmap" and c > 1:  # one point: a plain call, no vmap overhead
            columns = []
            for batch in self.fm.batches:
                losses, out = self._vmapped(flat, batch)
                columns.append(losses)
                if self.metric_fn is not None:
                    for i in range(c):
                        per_point_outputs[i].append(pytree.tree_map(lambda t, i=i: t[i], out))
            per_batch = torch.stack(columns, dim=1)
        else:
            per_batch, per_point_outputs = self._looped(flat)
        total = per_batch.to(torch.float64) @ weights
        metrics = None
        if self.metric_fn is not None:
            metrics = np.array([float(self.metric_fn(outs, self.fm.batches)) for outs in per_point_outputs])
        return total.cpu().numpy(), metrics

    def _choose_mode(self, d: torch.Tensor) -> None:
        """Try vmap once on two points of the first batch; on failure warn and loop per point."""
        flat = self._points(d, torch.zeros(2, d.shape[0], dtype=torch.float64))
        try:
            self._vmapped(flat, self.fm.batches[0])
        except GradscopeError:
            raise  # a user mistake (e.g. a loss that is not 0-d) is not a batching problem
        except Exception as exc:  # noqa: BLE001 - any other failure to batch means: loop
            if _is_oom(exc):
                self.mode = "vmap"
                return
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            warnings.warn(
                f"batched (vmap) landscape evaluation is not possible for this model "
                f"({type(exc).__name__}: {first[:200]}); falling back to a per-point loop",
                RuntimeWarning,
                stacklevel=3,
            )
            self.mode = "loop"
            return
        self.mode = "vmap"

    def _estimate_chunk_size(self) -> int:
        """Points per chunk from a memory estimate, capped at ``max_chunk_size``."""
        largest = max(range(len(self.fm.batches)), key=lambda i: batch_size(self.fm.batches[i]))
        batch = self.fm.batches[largest]
        params = self.fm.named(self.origin)
        act = _allocated_bytes(lambda: self.fm.batch_loss(params, batch)) if self.mode == "vmap" else 0
        per_point = self.origin.numel() * self.origin.element_size() + act
        device = self.origin.device
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            budget = 0.5 * free
        else:
            budget = self.memory_budget_mb * 2**20
        return int(max(1, min(self.max_chunk_size, budget // max(per_point, 1))))

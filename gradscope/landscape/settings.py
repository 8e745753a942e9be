"""Configuration of landscape and sharpness measurements (frozen, self-validating dataclasses)."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from gradscope.errors import ConfigError
from gradscope.landscape.grid import AxisRange, Grid, make_grid

NORMALIZATIONS = ("filter", "layer", "model", "none")
EVAL_MODES = ("auto", "vmap", "loop")
#: The fewest grid points per axis of a landscape: the centre θ₀ and one point on each side.
MIN_POINTS = 3


def _check_normalization(value: str) -> None:
    if value not in NORMALIZATIONS:
        raise ConfigError(f"normalization must be one of {', '.join(NORMALIZATIONS)}; got {value!r}")


def _as_range(value: Any) -> AxisRange | None:
    """JSON gives lists; keep ranges hashable (a float or a (low, high) tuple)."""
    if value is None or isinstance(value, (int, float)):
        return value
    return tuple(float(v) for v in value)  # type: ignore[return-value]


@dataclass(frozen=True)
class LandscapeSettings:
    """How a 1-D or 2-D loss landscape is laid out and evaluated.

    Attributes:
        dims: 1 (a curve along d₁) or 2 (a surface over d₁, d₂).
        points_x: grid points along d₁, at least :data:`MIN_POINTS`; must put 0 on the grid (odd
            for a symmetric range).
        range_x: ``r`` for the coordinates [-r, r], or a ``(low, high)`` pair containing 0
            (e.g. ``(-0.5, 1.5)`` for an interpolation θ_A → θ_B).
        points_y, range_y: the same along d₂ (default: those of x).
        normalization: scaling of random directions — ``filter`` (Li et al. 2018, the default),
            ``layer``, ``model`` or ``none``.
        include_1d: perturb 1-D tensors (biases, norm gains) too; Li et al. 2018 leave them at 0.
        seed: seed of the random directions (a ``torch.Generator`` on the CPU, so reproducible
            across devices).
        chunk_size: grid points per batched (vmap) call; ``None`` picks it from a memory estimate.
        max_chunk_size: the cap on the automatic chunk size.
        memory_budget_mb: memory the batched evaluation may use on a CPU (on a GPU, half the free
            memory is used instead).
        mode: ``auto`` (vmap, falling back to a per-point loop when an op does not batch),
            ``vmap`` or ``loop``.
    """

    dims: int = 1
    points_x: int = 51
    range_x: AxisRange = 1.0
    points_y: int | None = None
    range_y: AxisRange | None = None
    normalization: str = "filter"
    include_1d: bool = False
    seed: int = 0
    chunk_size: int | None = None
    max_chunk_size: int = 64
    memory_budget_mb: float = 1024.0
    mode: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "range_x", _as_range(self.range_x))
        object.__setattr__(self, "range_y", _as_range(self.range_y))
        if self.dims not in (1, 2):
            raise ConfigError(f"dims must be 1 or 2, got {self.dims!r}")
        if self.dims == 1 and (self.points_y is not None or self.range_y is not None):
            raise ConfigError("points_y / range_y are set but dims is 1")
        for name in ("points_x", "points_y"):
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool) and 0 < value < MIN_POINTS:
                raise ConfigError(f"{name} must be at least {MIN_POINTS}, got {value} "
                                  "(a landscape needs θ₀ and points around it)")
        self.grid()  # validates counts and ranges (the centre must be a grid point)
        _check_normalization(self.normalization)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")
        if self.chunk_size is not None and (not isinstance(self.chunk_size, int) or self.chunk_size < 1):
            raise ConfigError(f"chunk_size must be a positive integer or None, got {self.chunk_size!r}")
        if not isinstance(self.max_chunk_size, int) or self.max_chunk_size < 1:
            raise ConfigError(f"max_chunk_size must be a positive integer, got {self.max_chunk_size!r}")
        if not self.memory_budget_mb > 0:
            raise ConfigError(f"memory_budget_mb must be positive, got {self.memory_budget_mb!r}")
        if self.mode not in EVAL_MODES:
            raise ConfigError(f"mode must be one of {', '.join(EVAL_MODES)}; got {self.mode!r}")

    def grid(self) -> Grid:
        """The grid these settings describe."""
        return make_grid(self.dims, self.points_x, self.range_x, self.points_y, self.range_y)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LandscapeSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown landscape setting {unknown[0]!r}")
        return cls(**dict(data))

    @classmethod
    def from_json(cls, text: str) -> LandscapeSettings:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class SharpnessSettings:
    """Sharpness numbers of one parameter set (see :mod:`gradscope.landscape.sharpness`).

    Attributes:
        radius: perturbation size r; the random-direction sharpness is the loss increase at
            θ + r·d for filter-normalized (or otherwise normalized) random directions d.
        n_directions: how many random directions.
        seed, normalization, include_1d: as in :class:`LandscapeSettings` (the seed also seeds
            the Lanczos, Hutchinson and quadrature vectors).
        rho: radius ρ of the Euclidean ball of the ρ-sharpness (SAM's ρ).
        rho_steps: normalized-gradient ascent steps of the ρ-sharpness (1 = SAM's one step;
            0 = not computed).
        hessian: also the Hessian's extreme eigenvalues: λ_max, λ_min and the top-k (and, where
            ``trace_probes`` / ``density_runs`` ask for them, the trace and the spectral density).
        top_k: how many of the largest eigenvalues.
        hessian_iters: the most Lanczos steps (Hessian-vector products) for the eigenvalues.
        hessian_tol: stop when every wanted Ritz value's residual bound is ≤ tol·max|λ|.
        trace_probes: Rademacher probes of Hutchinson's trace estimate (0, the default: not
            computed; ``gradscope landscape --hessian`` uses 20).
        density_runs, density_steps: random start vectors and Lanczos steps of each for the
            stochastic-Lanczos-quadrature density (``density_runs`` 0, the default: not computed;
            ``gradscope landscape --hessian`` uses 1 × 30).
        chunk_size, max_chunk_size, memory_budget_mb, mode: evaluation, as in
            :class:`LandscapeSettings`.
    """

    radius: float = 0.05
    n_directions: int = 10
    seed: int = 0
    normalization: str = "filter"
    include_1d: bool = False
    rho: float = 0.05
    rho_steps: int = 1
    hessian: bool = True
    top_k: int = 3
    hessian_iters: int = 100
    hessian_tol: float = 1e-4
    trace_probes: int = 0
    density_runs: int = 0
    density_steps: int = 30
    chunk_size: int | None = None
    max_chunk_size: int = 64
    memory_budget_mb: float = 1024.0
    mode: str = "auto"

    def __post_init__(self) -> None:
        for name in ("radius", "rho"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in ("n_directions", "top_k", "hessian_iters", "density_steps"):
            _check_count(name, getattr(self, name), minimum=1)
        for name in ("rho_steps", "trace_probes", "density_runs"):
            _check_count(name, getattr(self, name), minimum=0)
        _check_normalization(self.normalization)
        if not self.hessian_tol >= 0:
            raise ConfigError(f"hessian_tol must be >= 0, got {self.hessian_tol!r}")
        if self.chunk_size is not None and (not isinstance(self.chunk_size, int) or self.chunk_size < 1):
            raise ConfigError(f"chunk_size must be a positive integer or None, got {self.chunk_size!r}")
        if self.mode not in EVAL_MODES:
            raise ConfigError(f"mode must be one of {', '.join(EVAL_MODES)}; got {self.mode!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_count(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"{name} must be {what}, got {value!r}")

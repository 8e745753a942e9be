"""Statistics over a trace's step columns, defined once for the reader and the analyses.

Wang et al., "Efficient Sharpness-Aware Minimization for Molecular Graph Transformer Models",
ICLR 2024 (arXiv 2406.13137), §3 (Observation 2, Fig. 3c):

* :func:`consistent_fraction` — the share of steps whose perturbation gradient points along the
  previous updating gradient, cos(ε_{t+1}, ω_t) ≥ 0 (column ``cos_eps_prev_omega``; the paper:
  67.45 % of SAM's steps on BBBP);
* :func:`exact_agreement` — the share of probed steps whose (approximated) ε agrees in sign with
  the exact gradient, cos(ε_t, ∇L_B(θ_t)) ≥ 0 (column ``cos_eps_exact``; GraphSAM 72.46 %,
  SAM-k 56.74 %, SAM-One 40.05 %). Anchored steps — ε *is* the exact gradient there, so the
  cosine is 1 by construction — are left out unless asked (``anchored == 1``; −1, "not told",
  counts as not anchored);
* :func:`per_epoch` — a step column reduced over each epoch's steps.

A cosine that is not finite means "not defined at this step" and is never counted. Everything
takes plain arrays or a mapping of step columns (a :class:`~gradscope.trace.Table`), so the
functions are usable on a trace, a ``Trace.to_dict()`` or a notebook's own arrays.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

#: Step columns the statistics read.
CONSISTENCY_COLUMN = "cos_eps_prev_omega"
EXACT_COLUMN = "cos_eps_exact"
ANCHORED_COLUMN = "anchored"


@dataclass(frozen=True)
class SignAgreement:
    """The share of defined cosines that are ≥ 0 (NaN when none is defined) and how many were defined."""

    fraction: float
    count: int

    @property
    def percent(self) -> float:
        return 100.0 * self.fraction


def sign_agreement(cosines: np.ndarray) -> SignAgreement:
    """The :class:`SignAgreement` of ``cosines``; non-finite entries are not counted."""
    values = np.asarray(cosines, dtype=np.float64)
    defined = values[np.isfinite(values)]
    if defined.size == 0:
        return SignAgreement(float("nan"), 0)
    return SignAgreement(float(np.count_nonzero(defined >= 0.0)) / defined.size, int(defined.size))


def defined(values: np.ndarray) -> np.ndarray:
    """The finite entries of ``values`` as float64."""
    values = np.asarray(values, dtype=np.float64)
    return values[np.isfinite(values)]


def consistency_cosines(steps: Mapping[str, np.ndarray]) -> np.ndarray:
    """The defined values of cos(ε_{t+1}, ω_t) (row t+1 of ``cos_eps_prev_omega``)."""
    return defined(steps[CONSISTENCY_COLUMN])


def consistent_fraction(steps: Mapping[str, np.ndarray]) -> SignAgreement:
    """Observation 2: the share of steps with cos(ε_{t+1}, ω_t) ≥ 0."""
    return sign_agreement(steps[CONSISTENCY_COLUMN])


def exact_cosines(steps: Mapping[str, np.ndarray], exclude_anchored: bool = True) -> np.ndarray:
    """The defined values of cos(ε_t, ∇L_B(θ_t)), anchored steps left out unless asked."""
    cos = np.asarray(steps[EXACT_COLUMN], dtype=np.float64)
    if exclude_anchored and ANCHORED_COLUMN in steps:
        cos = np.where(np.asarray(steps[ANCHORED_COLUMN]) == 1, np.nan, cos)
    return defined(cos)


def exact_agreement(steps: Mapping[str, np.ndarray], exclude_anchored: bool = True) -> SignAgreement:
    """The share of probed steps whose ε agrees in sign with the exact gradient (cos ≥ 0)."""
    return sign_agreement(exact_cosines(steps, exclude_anchored))


def per_epoch(
    epoch: np.ndarray, values: np.ndarray, reduce: Callable[[np.ndarray], float] = np.mean
) -> tuple[np.ndarray, np.ndarray]:
    """``reduce`` (default: the mean) of ``values`` over each epoch's steps.

    Returns:
        ``(epochs, reduced)``: the sorted distinct epoch numbers and, per epoch, ``reduce`` of
        its non-NaN values (NaN for an epoch without any).
    """
    epoch = np.asarray(epoch)
    values = np.asarray(values, dtype=np.float64)
    if epoch.shape[0] != values.shape[0]:
        raise ValueError(f"epoch ({epoch.shape[0]} rows) and values ({values.shape[0]} rows) differ in length")
    epochs, inverse = np.unique(epoch, return_inverse=True)
    out = np.full(epochs.shape[0], np.nan)
    keep = ~np.isnan(values)
    for i in range(epochs.shape[0]):
        chunk = values[(inverse == i) & keep]
        if chunk.size:
            out[i] = reduce(chunk)
    return epochs, out

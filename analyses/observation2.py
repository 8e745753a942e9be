"""Observation 2 of the GraphSAM paper: consecutive ε and ω point the same way.

Wang et al., ICLR 2024 (arXiv 2406.13137), §3 Fig. 3c: the distribution of cos(ε_{t+1}, ω_t)
over SAM's training steps; the pair is *consistent* when the cosine is ≥ 0, which the paper
finds for 67.45% of steps on BBBP. This is why GraphSAM can approximate ε_{t+1} by a moving
average of normalized ω (eq. 3). The trace column ``cos_eps_prev_omega`` at row t+1 is
cos(ε_{t+1}, ω_t).

The paper also measures how often an approximated ε agrees in sign with the exact gradient
(cos ≥ 0): GraphSAM 72.46%, SAM-k 56.74%, SAM-One 40.05%. The recorder's exact-ε probe writes
that cosine as ``cos_eps_exact`` on the probed steps. Anchored steps (where ε *is* the exact
gradient, so the cosine is 1 by construction) are left out by default.

Fractions count only steps where the cosine is defined (finite).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from analyses import plotting
from analyses.paper import PAPER_CONSISTENT_PCT, PAPER_EXACT_AGREEMENT_PCT
from analyses.runs import MissingDataError, RunLike, canonical, has_column, labelled, step_column
from gradscope.trace import Trace, stats
from gradscope.trace.stats import SignAgreement

CONSISTENCY_LABEL = (r"$\cos(\epsilon_{t+1}, \omega_t)$", "cos(ε<sub>t+1</sub>, ω<sub>t</sub>)")
EXACT_LABEL = (r"$\cos(\epsilon_t, \nabla L_B(\theta_t))$", "cos(ε<sub>t</sub>, ∇L<sub>B</sub>(θ<sub>t</sub>))")

def _steps(trace: Trace, label: str, name: str, purpose: str) -> Trace:
    """``trace`` after checking that it recorded steps and the column ``name`` (MissingDataError)."""
    step_column(trace, name, label, purpose=purpose)
    return trace


def consistency_cosines(trace: Trace, label: str = "") -> np.ndarray:
    """The defined values of cos(ε_{t+1}, ω_t) (``steps/cos_eps_prev_omega``)."""
    return stats.consistency_cosines(_steps(trace, label, stats.CONSISTENCY_COLUMN, "Observation 2").steps)


def consistent_fraction(trace: Trace, label: str = "") -> SignAgreement:
    """Share of steps with cos(ε_{t+1}, ω_t) ≥ 0 (Observation 2; paper: 67.45% for SAM on BBBP)."""
    return stats.consistent_fraction(_steps(trace, label, stats.CONSISTENCY_COLUMN, "Observation 2").steps)


def exact_cosines(trace: Trace, label: str = "", exclude_anchored: bool = True) -> np.ndarray:
    """cos(ε_t, ∇L_B(θ_t)) on the probed steps (anchored steps left out unless asked)."""
    return stats.exact_cosines(_steps(trace, label, stats.EXACT_COLUMN, "exact-ε agreement").steps, exclude_anchored)


def exact_agreement(trace: Trace, label: str = "", exclude_anchored: bool = True) -> SignAgreement:
    """Share of probed steps whose ε agrees in sign with the exact gradient (cos ≥ 0).

    Paper values: GraphSAM 72.46%, SAM-k 56.74%, SAM-One 40.05%. A run without the exact-ε
    probe has count 0 and fraction NaN. The rule is :func:`gradscope.trace.stats.exact_agreement`
    (also behind :meth:`gradscope.trace.Trace.exact_agreement`).
    """
    return stats.exact_agreement(_steps(trace, label, stats.EXACT_COLUMN, "exact-ε agreement").steps, exclude_anchored)


def _pct(value: SignAgreement) -> float | None:
    return None if value.count == 0 else round(value.percent, 2)


def observation2_table(traces: Sequence[RunLike], labels: Sequence[str] | None = None, exclude_anchored: bool = True) -> list[dict[str, Any]]:
    """Per run: consistent-pair % and exact-agreement % with the paper's values beside them.

    Columns: ``run``, ``consistent_pct``, ``consistent_n``, ``paper_consistent_pct``,
    ``exact_agreement_pct``, ``exact_n``, ``paper_exact_agreement_pct`` (``None`` = not available).
    """
    rows = []
    for label, trace in labelled(traces, labels):
        key = canonical(trace)
        consistent = consistent_fraction(trace, label)
        if has_column(trace, "steps", "cos_eps_exact"):
            exact = exact_agreement(trace, label, exclude_anchored)
        else:
            exact = stats.sign_agreement(np.array([]))
        rows.append({
            "run": label,
            "consistent_pct": _pct(consistent),
            "consistent_n": consistent.count,
            "paper_consistent_pct": PAPER_CONSISTENT_PCT.get(key),
            "exact_agreement_pct": _pct(exact),
            "exact_n": exact.count,
            "paper_exact_agreement_pct": PAPER_EXACT_AGREEMENT_PCT.get(key),
        })
    return rows


def _gather(traces: Sequence[RunLike], labels: Sequence[str] | None, exclude_anchored: bool) -> tuple[list, list]:
    consistency, exact = [], []
    pairs = labelled(traces, labels)
    for i, (label, trace) in enumerate(pairs):
        cos = consistency_cosines(trace, label)
        if cos.size:
            consistency.append((i, label, cos))
        if has_column(trace, "steps", "cos_eps_exact"):
            e = exact_cosines(trace, label, exclude_anchored)
            if e.size:
                exact.append((i, label, e))
    if not consistency and not exact:
        names = ", ".join(label for label, _ in pairs)
        raise MissingDataError(f"{names}: no defined cos(ε_{{t+1}}, ω_t) or exact-ε cosine (needed for Observation 2)")
    return consistency, exact


BINS = np.linspace(-1.0, 1.0, 41)


def _percent(cos: np.ndarray) -> float:
    return 100.0 * np.count_nonzero(cos >= 0) / cos.size


def _legend_text(label: str, consistency: list, exact: list) -> str:
    """One legend entry per run: its share of cosines ≥ 0 in each panel it appears in."""
    parts = [f"{_percent(c):.2f}% ≥ 0" for _, name, c in consistency if name == label]
    parts += [f"exact: {_percent(c):.2f}% ≥ 0" for _, name, c in exact if name == label]
    return f"{label}: {'; '.join(parts)}"


def observation2_figure(
    traces: Sequence[RunLike], labels: Sequence[str] | None = None, axes: Axes | Sequence[Axes] | None = None,
    bins: np.ndarray = BINS, exclude_anchored: bool = True, colors: Mapping[str, str] | None = None,
) -> Figure:
    """Fig. 3c: histograms (density) of cos(ε_{t+1}, ω_t) per run, and of the exact-ε cosine.

    The legend (below the panels) gives each run's percentage of cosines ≥ 0 in each panel. The
    right panel notes when no run recorded the exact-ε probe.
    """
    from matplotlib.lines import Line2D

    consistency, exact = _gather(traces, labels, exclude_anchored)
    pal = plotting.palette([label for label, _ in labelled(traces, labels)], colors)
    fig, (left, right) = plotting.mpl_axes(axes, 2)
    for ax, groups, xlabel, title in (
        (left, consistency, CONSISTENCY_LABEL[0], "consecutive ε and ω (Observation 2)"),
        (right, exact, EXACT_LABEL[0], "approximated vs exact ε"),
    ):
        for _, label, cos in groups:
            ax.hist(cos, bins=bins, density=True, histtype="step", linewidth=1.4, color=pal[label])
        ax.axvline(0.0, color="0.3", linewidth=0.8, linestyle=":")
        ax.set_xlim(-1.0, 1.0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("density")
        ax.set_title(title)
        if not groups:
            ax.text(0.5, 0.5, "not recorded", transform=ax.transAxes, ha="center", va="center", color="0.4")
    shown = list(dict.fromkeys(label for _, label, _ in consistency + exact))
    entries = [(Line2D([], [], color=pal[label], linewidth=1.4), _legend_text(label, consistency, exact))
               for label in shown]
    plotting.legend_below(fig, [left, right], ncols=min(len(shown), 2), entries=entries)
    return fig


def observation2_plotly(traces: Sequence[RunLike], labels: Sequence[str] | None = None, bins: np.ndarray = BINS,
                        exclude_anchored: bool = True, colors: Mapping[str, str] | None = None) -> Any:
    """Interactive (plotly) :func:`observation2_figure`; bars are densities over ``bins``."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    consistency, exact = _gather(traces, labels, exclude_anchored)
    pal = plotting.palette([label for label, _ in labelled(traces, labels)], colors)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("consecutive ε and ω (Observation 2)", "approximated vs exact ε"))
    centres = 0.5 * (bins[1:] + bins[:-1])
    for col, groups in ((1, consistency), (2, exact)):
        for _, label, cos in groups:
            density, _ = np.histogram(cos, bins=bins, density=True)
            fig.add_trace(go.Scatter(x=centres, y=density, mode="lines", line=dict(shape="hvh", color=pal[label]),
                                     name=f"{label}: {_percent(cos):.2f}% ≥ 0"), row=1, col=col)
        if not groups:
            fig.add_annotation(text="not recorded", showarrow=False, x=0, y=0.5, row=1, col=col)
    fig.update_xaxes(title_text=CONSISTENCY_LABEL[1], range=[-1, 1], row=1, col=1)
    fig.update_xaxes(title_text=EXACT_LABEL[1], range=[-1, 1], row=1, col=2)
    fig.update_yaxes(title_text="density")
    return plotting.plotly_layout(fig)

"""The figure kinds of ``gradscope plot KIND`` and of the report, in one registry.

Each kind names its matplotlib figure, its plotly variant and (where it has one) its table, so
the CLI and the HTML report draw exactly the same things.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analyses import entropy, losses, observation1, observation2, throughput
from analyses import landscapes as landscape_mod
from analyses.runs import Run
from gradscope.errors import ConfigError


@dataclass(frozen=True)
class PlotOptions:
    """Options some kinds take: the zoom window (obs1, norms), the epoch of the entropy numbers,
    the metric of the throughput table, and the landscape quantity; and for every kind the
    colour of each run (label → colour, :func:`analyses.plotting.run_colors` of all the runs of
    a command or report, so that a run keeps its colour where a figure shows only some runs)."""

    zoom: tuple[float, float] | None = None
    at: str | int = "last"
    metric: str | None = None
    quantity: str = "loss"
    colors: Mapping[str, str] | None = field(default=None, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.zoom is not None:
            lo, hi = self.zoom
            if not lo < hi:
                raise ConfigError(f"zoom window needs A < B, got {lo}:{hi}")
        if not (self.at in ("last", "best") or (isinstance(self.at, int) and not isinstance(self.at, bool))):
            raise ConfigError(f"at must be 'last', 'best' or an epoch number, got {self.at!r}")
        if self.quantity not in ("loss", "metric"):
            raise ConfigError(f"quantity must be 'loss' or 'metric', got {self.quantity!r}")


@dataclass(frozen=True)
class Kind:
    """One figure kind: what it shows and how to draw it from runs."""

    name: str
    title: str
    paper: str
    description: str
    figure: Callable[[Sequence[Run], PlotOptions], Any]
    plotly: Callable[[Sequence[Run], PlotOptions], Any]
    table: Callable[[Sequence[Run], PlotOptions], list[dict[str, Any]]] | None = None
    table_headers: dict[str, str] = field(default_factory=dict)
    needs_landscape: bool = False
    #: the :class:`PlotOptions` fields this kind reads (``gradscope plot`` refuses the others' flags)
    options: tuple[str, ...] = ()


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "obs1", "Observation 1: ε changes slowly, ω does not", "Fig. 3a, Fig. 8",
            "Step-to-step changes ‖ε_{t+1}−ε_t‖ (solid) and ‖ω_{t+1}−ω_t‖ (dashed), with a zoomed window. "
            "The table gives std(‖Δω‖)/std(‖Δε‖) and the median ‖ω_t‖/‖ε_t‖.",
            lambda runs, o: observation1.observation1_figure(runs, zoom=o.zoom, colors=o.colors),
            lambda runs, o: observation1.observation1_plotly(runs, zoom=o.zoom, colors=o.colors),
            lambda runs, o: observation1.observation1_table(runs),
            {"label": "run", "eps_change_std": "std ‖Δε‖", "omega_change_std": "std ‖Δω‖",
             "change_std_ratio": "std ‖Δω‖ / std ‖Δε‖", "median_norm_ratio": "median ‖ω‖/‖ε‖"},
            options=("zoom",),
        ),
        Kind(
            "norms", "Gradient norms ‖ε_t‖ and ‖ω_t‖", "Fig. 9",
            "Norms of the perturbation gradient ε_t (solid) and the updating gradient ω_t (dashed), log scale.",
            lambda runs, o: observation1.norms_figure(runs, zoom=o.zoom, colors=o.colors),
            lambda runs, o: observation1.norms_plotly(runs, zoom=o.zoom, colors=o.colors),
            options=("zoom",),
        ),
        Kind(
            "obs2", "Observation 2: consecutive ε and ω agree", "Fig. 3c",
            "Distribution of cos(ε_{t+1}, ω_t) (consistent when ≥ 0; paper: 67.45% for SAM on BBBP) and of the "
            "cosine between the approximated ε and the exact gradient on probed steps (paper: GraphSAM 72.46%, "
            "SAM-k 56.74%, SAM-One 40.05%). Anchored steps are left out of the exact agreement.",
            lambda runs, o: observation2.observation2_figure(runs, colors=o.colors),
            lambda runs, o: observation2.observation2_plotly(runs, colors=o.colors),
            lambda runs, o: observation2.observation2_table(runs),
            {"consistent_pct": "consistent %", "consistent_n": "n", "paper_consistent_pct": "paper %",
             "exact_agreement_pct": "exact agreement %", "exact_n": "probed n", "paper_exact_agreement_pct": "paper %"},
        ),
        Kind(
            "entropy", "Attention entropy", "Fig. 10",
            "Mean attention entropy (nats) per epoch, the paper's values dotted (Adam 2.4130 < GraphSAM 2.7239 < "
            "SAM 2.8382), and per layer and head where recorded.",
            lambda runs, o: entropy.entropy_figure(runs, at=o.at, colors=o.colors),
            lambda runs, o: entropy.entropy_plotly(runs, at=o.at, colors=o.colors),
            lambda runs, o: entropy.entropy_table(runs, at=o.at),
            {"attention_entropy": "attention entropy", "paper_attention_entropy": "paper"},
            options=("at",),
        ),
        Kind(
            "loss", "Loss curves", "Fig. 5",
            "Train loss and test loss (validation loss where no test loss was recorded) per epoch.",
            lambda runs, o: losses.loss_figure(runs, colors=o.colors),
            lambda runs, o: losses.loss_plotly(runs, colors=o.colors),
        ),
        Kind(
            "throughput", "Throughput and accuracy", "Tables 2 and 7",
            "Training throughput (mean graphs/s over epochs) and its ratio to SAM and Adam; the test metric at the "
            "best validation epoch; forward-backward passes the optimizer spent.",
            lambda runs, o: throughput.throughput_figure(runs, metric=o.metric, colors=o.colors),
            lambda runs, o: throughput.throughput_plotly(runs, metric=o.metric, colors=o.colors),
            lambda runs, o: throughput.throughput_table(runs, metric=o.metric),
            throughput.HEADERS,
            options=("metric",),
        ),
        Kind(
            "landscape", "Loss landscapes", "Fig. 2",
            "Filter-normalized 1-D loss curves around each minimum (overlaid) and 2-D contour maps. Where "
            "`gradscope landscape --hessian` measured them, the table gives the sharpness: the loss increase "
            "along random directions at radius r, the ρ-sharpness (SAM's ascent step), the largest and smallest "
            "Hessian eigenvalues and the Hessian trace.",
            lambda runs, o: landscape_mod.landscape_figure(runs, quantity=o.quantity, colors=o.colors),
            lambda runs, o: landscape_mod.landscape_plotly(runs, quantity=o.quantity, colors=o.colors),
            lambda runs, o: landscape_mod.sharpness_table(runs),
            {**landscape_mod.SHARPNESS_HEADERS, "radius": "r", "rho": "ρ"},
            needs_landscape=True,
            options=("quantity",),
        ),
    )
}


def get_kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise ConfigError(f"unknown plot kind {name!r}; choose one of {', '.join(KINDS)}") from None

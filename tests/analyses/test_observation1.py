"""Observation 1 figures and numbers from synthetic traces with known values."""
from __future__ import annotations

import math

import numpy as np
import pytest
from kit.traces import sam_like, write_trace

from analyses.observation1 import (
    norms_figure,
    norms_plotly,
    observation1_figure,
    observation1_numbers,
    observation1_plotly,
    observation1_table,
)
from analyses.runs import MissingDataError
from gradscope.errors import GradscopeError
from gradscope.trace import open_trace


def _ref_std(values: np.ndarray) -> float:
    """Population standard deviation over the finite values, the slow way."""
    vals = [float(v) for v in values if math.isfinite(float(v))]
    mean = sum(vals) / len(vals)
    return math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))


@pytest.fixture
def two_runs(tmp_path):
    a = sam_like(80, seed=1)
    b = sam_like(80, seed=2)
    sam = open_trace(write_trace(tmp_path / "sam" / "trace.h5", a, optimizer="SAM"))
    gsam = open_trace(write_trace(tmp_path / "gsam" / "trace.h5", b, optimizer="GraphSAM"))
    return (sam, a), (gsam, b)


def test_numbers_match_reference(two_runs):
    (sam, cols), _ = two_runs
    got = observation1_numbers(sam, "SAM")
    eps_change = cols["eps_change"].astype(np.float32)
    omega_change = cols["omega_change"].astype(np.float32)
    assert got.eps_change_std == pytest.approx(_ref_std(eps_change), rel=1e-9)
    assert got.omega_change_std == pytest.approx(_ref_std(omega_change), rel=1e-9)
    assert got.change_std_ratio == pytest.approx(_ref_std(omega_change) / _ref_std(eps_change), rel=1e-9)
    ratios = sorted(float(w) / float(e) for w, e in zip(cols["omega_norm"].astype(np.float32), cols["eps_norm"].astype(np.float32)))
    n = len(ratios)
    median = ratios[n // 2] if n % 2 else 0.5 * (ratios[n // 2 - 1] + ratios[n // 2])
    assert got.median_norm_ratio == pytest.approx(median, rel=1e-9)
    assert got.steps == 80
    # The synthetic ε changes are ~40× calmer than ω's, as in Observation 1.
    assert got.change_std_ratio > 10


def test_numbers_skip_zero_and_nan_eps(tmp_path):
    cols = {"eps_norm": np.array([np.nan, 0.0, 2.0, 1.0]), "omega_norm": np.array([5.0, 5.0, 8.0, 3.0]),
            "eps_change": np.full(4, np.nan), "omega_change": np.array([np.nan, 1.0, 3.0, 5.0])}
    trace = open_trace(write_trace(tmp_path / "t.h5", cols))
    got = observation1_numbers(trace)
    assert got.median_norm_ratio == pytest.approx(3.5)  # median of 8/2 and 3/1
    assert math.isnan(got.eps_change_std) and math.isnan(got.change_std_ratio)


def test_table_rows(two_runs):
    (sam, _), (gsam, _) = two_runs
    rows = observation1_table([sam, gsam])
    assert [r["label"] for r in rows] == ["SAM", "GraphSAM"]
    assert rows[1]["change_std_ratio"] == pytest.approx(observation1_numbers(gsam).change_std_ratio)


def test_figure_lines_hold_the_series(two_runs):
    (sam, a), (gsam, b) = two_runs
    fig = observation1_figure([sam, gsam], zoom=(10, 30))
    full, zoomed = fig.axes[:2]
    assert full.get_xlabel() == "step" and zoomed.get_xlabel() == "step"
    assert full.get_ylabel() == "change between consecutive steps"
    assert len(full.lines) == 4 and len(zoomed.lines) == 4
    labels = [line.get_label() for line in full.lines]
    assert labels[0].startswith("SAM: ") and "epsilon" in labels[0]
    assert labels[3].startswith("GraphSAM: ") and "omega" in labels[3]
    np.testing.assert_allclose(full.lines[0].get_ydata(), a["eps_change"].astype(np.float32), equal_nan=True)
    np.testing.assert_allclose(full.lines[3].get_ydata(), b["omega_change"].astype(np.float32), equal_nan=True)
    np.testing.assert_array_equal(full.lines[0].get_xdata(), np.arange(80))
    # the zoom panel holds exactly the steps 10..30 (inclusive)
    np.testing.assert_array_equal(zoomed.lines[1].get_xdata(), np.arange(10, 31))
    np.testing.assert_allclose(zoomed.lines[1].get_ydata(), a["omega_change"][10:31].astype(np.float32))
    assert zoomed.get_title() == "steps 10–30"
    assert full.lines[0].get_linestyle() == "-" and full.lines[1].get_linestyle() == "--"


def test_labels_override_and_default_zoom(two_runs):
    (sam, _), (gsam, _) = two_runs
    fig = observation1_figure([sam, gsam], labels=["a", "b"])
    zoomed = fig.axes[1]
    assert zoomed.get_title() == "steps 0–10"  # first tenth, at least 10 steps
    assert [line.get_label().split(":")[0] for line in fig.axes[0].lines] == ["a", "a", "b", "b"]


def test_adam_run_has_no_eps_lines(tmp_path):
    cols = {"omega_norm": np.linspace(1, 2, 30), "omega_change": np.linspace(0, 1, 30)}
    adam = open_trace(write_trace(tmp_path / "adam.h5", cols, optimizer="Adam"))
    fig = observation1_figure([adam])
    assert [line.get_label() for line in fig.axes[0].lines] == ["Adam: $\\|\\omega_{t+1}-\\omega_t\\|$"]
    assert math.isnan(observation1_numbers(adam).change_std_ratio)


def test_plotly_variants(two_runs):
    (sam, a), (gsam, b) = two_runs
    fig = observation1_plotly([sam, gsam], zoom=(5, 9))
    assert len(fig.data) == 8  # 2 runs × 2 quantities × (full, zoom)
    np.testing.assert_allclose(np.asarray(fig.data[0].y, dtype=float), a["eps_change"].astype(np.float32), equal_nan=True)
    np.testing.assert_array_equal(np.asarray(fig.data[1].x), np.arange(5, 10))
    assert fig.layout.xaxis.title.text == "step"
    norms = norms_plotly([sam])
    np.testing.assert_allclose(np.asarray(norms.data[2].y, dtype=float), a["omega_norm"].astype(np.float32))
    assert norms.layout.yaxis.type == "log"


def test_norms_figure(two_runs):
    (sam, a), _ = two_runs
    fig = norms_figure([sam], zoom=(0, 79))
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "gradient norm"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), a["eps_norm"].astype(np.float32))
    np.testing.assert_allclose(ax.lines[1].get_ydata(), a["omega_norm"].astype(np.float32))


def test_draws_into_given_axes(two_runs):
    from matplotlib.figure import Figure

    (sam, _), _ = two_runs
    fig = Figure()
    axes = fig.subplots(1, 2)
    assert observation1_figure([sam], axes=axes) is fig
    with pytest.raises(GradscopeError, match="2 axes"):
        observation1_figure([sam], axes=axes[0])


def test_errors_are_one_line(tmp_path):
    empty = open_trace(write_trace(tmp_path / "empty.h5", n_steps=0))
    with pytest.raises(MissingDataError, match="no recorded steps") as info:
        observation1_figure([empty])
    assert "\n" not in str(info.value)
    missing = open_trace(write_trace(tmp_path / "missing.h5", sam_like(20), omit=("omega_change",)))
    with pytest.raises(MissingDataError, match="no steps/omega_change"):
        observation1_numbers(missing)
    full = open_trace(write_trace(tmp_path / "full.h5", sam_like(20)))
    with pytest.raises(MissingDataError, match="zoom window 500:600"):
        observation1_figure([full], zoom=(500, 600))
    with pytest.raises(GradscopeError, match="A < B"):
        observation1_figure([full], zoom=(9, 3))

"""Observation 2: consistent-pair percentage, exact-ε agreement, histograms and the table."""
from __future__ import annotations

import math

import numpy as np
import pytest
from kit.traces import sam_like, write_trace

from analyses.observation2 import (
    BINS,
    consistent_fraction,
    exact_agreement,
    observation2_figure,
    observation2_plotly,
    observation2_table,
)
from analyses.runs import MissingDataError
from gradscope.trace import open_trace


def _ref_fraction(cos, skip=None):
    """Loop over steps: count cosines ≥ 0 among the defined ones (optionally skipping rows)."""
    hits = total = 0
    for i, c in enumerate(cos):
        if math.isnan(c) or (skip is not None and skip[i]):
            continue
        total += 1
        hits += c >= 0
    return hits / total, total


def test_consistent_fraction_matches_loop(tmp_path):
    cols = sam_like(200, seed=3)
    cos = cols["cos_eps_prev_omega"].astype(np.float32)
    cos[[5, 17]] = 0.0  # exactly 0 counts as consistent
    cols["cos_eps_prev_omega"] = cos
    trace = open_trace(write_trace(tmp_path / "t.h5", cols))
    got = consistent_fraction(trace)
    want, n = _ref_fraction(cos)
    assert got.fraction == pytest.approx(want, abs=0) and got.count == n == 199
    assert got.percent == pytest.approx(100 * want)


def test_hand_computed_percentage(tmp_path):
    cos = [np.nan, 0.5, -0.2, 0.0, 0.9, -1.0, 0.1, np.nan]  # 4 of 6 defined are ≥ 0
    trace = open_trace(write_trace(tmp_path / "t.h5", {"cos_eps_prev_omega": cos}))
    assert consistent_fraction(trace).percent == pytest.approx(400 / 6)


def test_exact_agreement_skips_anchored_and_unprobed(tmp_path):
    rng = np.random.default_rng(0)
    n = 100
    cos = np.where(np.arange(n) % 3 == 0, rng.uniform(-1, 1, n), np.nan).astype(np.float32)
    anchored = (np.arange(n) % 10 == 0).astype(int)
    cos[anchored == 1] = 1.0  # an anchored ε is exact: cosine 1 by construction
    trace = open_trace(write_trace(tmp_path / "g.h5", {"cos_eps_exact": cos, "anchored": anchored}, optimizer="GraphSAM"))
    got = exact_agreement(trace)
    want, count = _ref_fraction(cos, skip=anchored == 1)
    assert (got.fraction, got.count) == (pytest.approx(want), count)
    with_anchors = exact_agreement(trace, exclude_anchored=False)
    assert with_anchors.count == count + int(anchored.sum())


def test_table_puts_paper_values_beside(tmp_path):
    sam = open_trace(write_trace(tmp_path / "sam.h5", sam_like(50, 1), optimizer="SAM"))
    k_cols = sam_like(50, 2)
    k_cols["cos_eps_exact"] = np.where(np.arange(50) % 2 == 0, 0.3, np.nan)
    k_cols["cos_eps_exact"][[0, 2, 4]] = -0.5  # 3 of 25 probed steps disagree (step 0 anchored: skipped)
    k_cols["anchored"] = (np.arange(50) == 0).astype(int)
    samk = open_trace(write_trace(tmp_path / "samk.h5", k_cols, optimizer="SAM-k"))
    rows = observation2_table([sam, samk])
    assert rows[0]["run"] == "SAM" and rows[0]["paper_consistent_pct"] == 67.45
    assert rows[0]["exact_agreement_pct"] is None and rows[0]["exact_n"] == 0
    assert rows[1]["paper_exact_agreement_pct"] == 56.74 and rows[1]["paper_consistent_pct"] is None
    assert rows[1]["exact_n"] == 24
    assert rows[1]["exact_agreement_pct"] == pytest.approx(round(100 * 22 / 24, 2))
    want, _ = _ref_fraction(k_cols["cos_eps_prev_omega"].astype(np.float32))
    assert rows[1]["consistent_pct"] == pytest.approx(round(100 * want, 2))


def test_histograms_hold_the_cosines(tmp_path):
    cols = sam_like(150, 4)
    cos = cols["cos_eps_prev_omega"].astype(np.float32)
    trace = open_trace(write_trace(tmp_path / "t.h5", cols))
    fig = observation2_plotly([trace])
    want, _ = np.histogram(cos[np.isfinite(cos)], bins=BINS, density=True)
    np.testing.assert_allclose(np.asarray(fig.data[0].y, dtype=float), want)
    pct = 100 * _ref_fraction(cos)[0]
    assert fig.data[0].name == f"SAM: {pct:.2f}% ≥ 0"
    mpl = observation2_figure([trace])
    left, right = mpl.axes
    assert left.get_xlabel() == "$\\cos(\\epsilon_{t+1}, \\omega_t)$" and left.get_ylabel() == "density"
    assert mpl.legends[0].get_texts()[0].get_text().startswith(f"SAM: {pct:.2f}% ≥ 0")  # one legend, below
    # histtype="step": one polygon whose top edge traces the densities
    heights = left.patches[0].get_xy()[1:-1:2, 1]
    np.testing.assert_allclose(heights[: len(want)], want)
    assert [t.get_text() for t in right.texts] == ["not recorded"]


def test_errors(tmp_path):
    nothing = open_trace(write_trace(tmp_path / "n.h5", {"omega_norm": np.ones(5)}))
    with pytest.raises(MissingDataError, match="SAM: no defined cos"):
        observation2_figure([nothing])
    gone = open_trace(write_trace(tmp_path / "g.h5", {"omega_norm": np.ones(5)}, omit=("cos_eps_prev_omega",)))
    with pytest.raises(MissingDataError, match="no steps/cos_eps_prev_omega"):
        consistent_fraction(gone)
    empty = open_trace(write_trace(tmp_path / "e.h5", n_steps=0))
    with pytest.raises(MissingDataError, match="no recorded steps"):
        observation2_table([empty])


def test_trace_method_and_analysis_agree(tmp_path):
    """Trace.exact_agreement / consistent_fraction and the analysis give one number (one rule)."""
    rng = np.random.default_rng(5)
    n = 90
    cols = sam_like(n, 4)
    cols["cos_eps_exact"] = np.where(rng.random(n) < 0.5, rng.uniform(-1, 1, n), np.nan)
    cols["anchored"] = rng.choice([-1, 0, 1], size=n)  # −1: the optimizer did not say; counts as not anchored
    trace = open_trace(write_trace(tmp_path / "t.h5", cols, optimizer="GraphSAM"))
    for exclude in (True, False):
        ours = exact_agreement(trace, exclude_anchored=exclude)
        assert trace.exact_agreement(exclude_anchored=exclude) == ours.fraction
        want, count = _ref_fraction(cols["cos_eps_exact"].astype(np.float32), skip=(cols["anchored"] == 1) if exclude else None)
        assert (ours.fraction, ours.count) == (pytest.approx(want), count)
    assert trace.consistent_fraction() == consistent_fraction(trace).fraction

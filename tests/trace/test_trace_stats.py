"""gradscope.trace.stats against naive per-step loops, and the Trace methods built on it."""
from __future__ import annotations

import math

import numpy as np
import pytest

from gradscope.trace import TraceWriter, open_trace, stats


def _naive_sign_share(cosines, skip=None):
    """Loop over steps: the share of cosines ≥ 0 among the finite ones not skipped, and their count."""
    hits = total = 0
    for i, c in enumerate(cosines):
        if not math.isfinite(float(c)) or (skip is not None and skip[i]):
            continue
        total += 1
        hits += float(c) >= 0.0
    return (hits / total if total else float("nan")), total


def _naive_per_epoch(epoch, values, reduce):
    out = {}
    for e in sorted(set(int(x) for x in epoch)):
        chunk = [float(v) for x, v in zip(epoch, values) if int(x) == e and not math.isnan(float(v))]
        out[e] = reduce(np.array(chunk)) if chunk else float("nan")
    return out


def _columns(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    prev = rng.uniform(-1, 1, n).astype(np.float32)
    prev[rng.random(n) < 0.2] = np.nan
    prev[rng.random(n) < 0.05] = 0.0  # exactly 0 counts as consistent
    exact = np.where(rng.random(n) < 0.4, rng.uniform(-1, 1, n), np.nan).astype(np.float32)
    anchored = rng.choice([-1, 0, 1], size=n, p=[0.1, 0.7, 0.2])
    exact[anchored == 1] = 1.0
    epoch = np.sort(rng.integers(0, 6, n))
    return {"cos_eps_prev_omega": prev, "cos_eps_exact": exact, "anchored": anchored, "epoch": epoch,
            "omega_norm": np.where(rng.random(n) < 0.3, np.nan, rng.gamma(2.0, size=n)).astype(np.float32)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_statistics_match_naive_loops(seed) -> None:
    cols = _columns(300, seed)
    got = stats.consistent_fraction(cols)
    want, count = _naive_sign_share(cols["cos_eps_prev_omega"])
    assert (got.fraction, got.count) == (pytest.approx(want, abs=0), count)
    got = stats.exact_agreement(cols)
    want, count = _naive_sign_share(cols["cos_eps_exact"], skip=cols["anchored"] == 1)  # −1 ("not told") counts
    assert (got.fraction, got.count) == (pytest.approx(want, abs=0), count)
    got = stats.exact_agreement(cols, exclude_anchored=False)
    want, count = _naive_sign_share(cols["cos_eps_exact"])
    assert (got.fraction, got.count) == (pytest.approx(want, abs=0), count)
    for reduce in (np.mean, np.median, np.max):
        epochs, values = stats.per_epoch(cols["epoch"], cols["omega_norm"], reduce)
        ref = _naive_per_epoch(cols["epoch"], cols["omega_norm"], reduce)
        assert list(epochs) == list(ref)
        np.testing.assert_allclose(values, list(ref.values()), rtol=1e-12)


def test_edge_cases() -> None:
    none = stats.sign_agreement(np.array([np.nan, np.inf, -np.inf]))
    assert math.isnan(none.fraction) and none.count == 0
    assert stats.sign_agreement(np.array([0.0, -0.0])).fraction == 1.0
    epochs, values = stats.per_epoch(np.array([3, 3, 1]), np.array([np.nan, np.nan, 2.0]))
    np.testing.assert_array_equal(epochs, [1, 3])
    assert values[0] == 2.0 and math.isnan(values[1])
    no_anchor = {"cos_eps_exact": np.array([1.0, -0.5])}  # a trace without the anchored column
    assert stats.exact_agreement(no_anchor).count == 2
    with pytest.raises(ValueError, match="differ in length"):
        stats.per_epoch(np.zeros(3), np.zeros(2))


def test_trace_methods_are_the_shared_statistics(tmp_path) -> None:
    cols = _columns(120, 7)
    path = tmp_path / "t.h5"
    with TraceWriter(path, optimizer="X") as w:
        w.append_steps({"step": np.arange(120), **cols})
    trace = open_trace(path)
    assert trace.consistent_fraction() == stats.consistent_fraction(cols).fraction
    assert trace.exact_agreement() == stats.exact_agreement(cols).fraction
    assert trace.exact_agreement(exclude_anchored=False) == stats.exact_agreement(cols, False).fraction
    epochs, means = trace.per_epoch("omega_norm")
    ref_epochs, ref_means = stats.per_epoch(cols["epoch"], cols["omega_norm"])
    np.testing.assert_array_equal(epochs, ref_epochs)
    np.testing.assert_array_equal(means, ref_means)

"""Loss curves, the throughput/accuracy table and the table renderers."""
from __future__ import annotations

import numpy as np
import pytest
from kit.traces import write_trace

from analyses.losses import loss_curves, loss_figure, loss_plotly
from analyses.runs import MissingDataError
from analyses.tables import format_value, to_html, to_markdown
from analyses.throughput import throughput_figure, throughput_plotly, throughput_table
from gradscope.trace import open_trace

TRAIN = np.array([1.0, 0.7, 0.5, 0.4])
TEST = np.array([1.1, 0.9, 0.8, 0.85])
VAL = np.array([1.05, 0.95, 0.85, 0.9])


def _write(tmp_path, name, optimizer, epochs, grad_evals=None):
    steps = {"omega_norm": np.ones(len(grad_evals) if grad_evals is not None else 4)}
    if grad_evals is not None:
        steps["grad_evals"] = grad_evals
    return open_trace(write_trace(tmp_path / f"{name}.h5", steps, epochs, optimizer=optimizer))


def test_loss_curves_test_then_val(tmp_path):
    with_test = _write(tmp_path, "a", "SAM", {"epoch": np.arange(4), "train_loss": TRAIN, "val_loss": VAL, "test_loss": TEST})
    val_only = _write(tmp_path, "b", "Adam", {"epoch": np.arange(4), "train_loss": TRAIN * 2, "val_loss": VAL})
    c = loss_curves(with_test)
    assert c.held_out == "test"
    np.testing.assert_allclose(c.held_out_loss, TEST)
    assert loss_curves(val_only).held_out == "val"
    fig = loss_figure([with_test, val_only])
    left, right = fig.axes
    np.testing.assert_allclose(left.lines[1].get_ydata(), TRAIN * 2)
    np.testing.assert_allclose(right.lines[0].get_ydata(), TEST)
    np.testing.assert_allclose(right.lines[1].get_ydata(), VAL)
    assert [line.get_label() for line in right.lines] == ["SAM (test)", "Adam (val)"]
    assert left.get_title() == "train loss" and right.get_title() == "test / validation loss"
    assert left.get_xlabel() == "epoch" and left.get_ylabel() == "loss"
    p = loss_plotly([with_test])
    np.testing.assert_allclose(np.asarray(p.data[0].y, dtype=float), TRAIN)
    np.testing.assert_allclose(np.asarray(p.data[1].y, dtype=float), TEST)


def test_loss_curves_missing(tmp_path):
    trace = _write(tmp_path, "x", "SAM", {"epoch": np.arange(2), "graphs_per_s": [1.0, 2.0]})
    with pytest.raises(MissingDataError, match="train_loss"):
        loss_figure([trace])


def _reference_row(epochs, grad_evals, higher_better=True, metric="roc_auc"):
    """Best validation epoch by an explicit loop (first best wins), sums by hand."""
    best, best_val = None, None
    for i, v in enumerate(epochs[f"val_{metric}"]):
        if np.isnan(v):
            continue
        if best is None or (v > best_val if higher_better else v < best_val):
            best, best_val = i, v
    speeds = [s for s in epochs["graphs_per_s"] if not np.isnan(s)]
    return {"graphs_per_s": sum(speeds) / len(speeds), "test_metric": epochs[f"test_{metric}"][best],
            "best_epoch": int(epochs["epoch"][best]), "grad_evals": int(sum(grad_evals)), "steps": len(grad_evals)}


def test_throughput_table_matches_reference(tmp_path):
    e_sam = {"epoch": np.arange(4), "graphs_per_s": np.array([100.0, 110.0, np.nan, 90.0]),
             "val_roc_auc": np.array([0.7, 0.9, 0.9, 0.8]), "test_roc_auc": np.array([0.6, 0.85, 0.95, 0.7])}
    e_gsam = {"epoch": np.arange(4), "graphs_per_s": np.array([190.0, 200.0, 210.0, 200.0]),
              "val_roc_auc": np.array([0.7, np.nan, 0.75, 0.95]), "test_roc_auc": np.array([0.6, 0.99, 0.8, 0.9])}
    e_adam = {"epoch": np.arange(4), "graphs_per_s": np.array([250.0] * 4),
              "val_roc_auc": np.array([0.7, 0.75, 0.8, 0.78]), "test_roc_auc": np.array([0.6, 0.7, 0.8, 0.75])}
    ge_sam, ge_gsam, ge_adam = [2] * 12, [2, 1, 1, 1, 2, 1, 1, 1, 2, 1, 1, 1], [1] * 12
    traces = [_write(tmp_path, "s", "SAM", e_sam, ge_sam), _write(tmp_path, "g", "GraphSAM", e_gsam, ge_gsam),
              _write(tmp_path, "a", "Adam", e_adam, ge_adam)]
    rows = throughput_table(traces)
    refs = [_reference_row(e, g) for e, g in ((e_sam, ge_sam), (e_gsam, ge_gsam), (e_adam, ge_adam))]
    for row, ref in zip(rows, refs):
        for key, value in ref.items():
            assert row[key] == pytest.approx(value), key
        assert row["metric"] == "roc_auc"
        assert row["vs_sam"] == pytest.approx(ref["graphs_per_s"] / refs[0]["graphs_per_s"])
        assert row["vs_adam"] == pytest.approx(ref["graphs_per_s"] / 250.0)
        assert row["passes_per_step"] == pytest.approx(ref["grad_evals"] / ref["steps"])
    assert rows[0]["best_epoch"] == 1  # tie 0.9 at epochs 1 and 2: the first wins
    assert rows[1]["best_epoch"] == 3  # NaN never wins

    fig = throughput_figure(traces)
    left, right = fig.axes
    np.testing.assert_allclose([p.get_height() for p in left.patches], [r["graphs_per_s"] for r in refs])
    np.testing.assert_allclose([p.get_height() for p in right.patches], [r["test_metric"] for r in refs])
    assert left.get_ylabel() == "graphs/s" and right.get_ylabel() == "test roc_auc (best val epoch)"
    assert [t.get_text() for t in left.texts][1] == f"{refs[1]['graphs_per_s'] / refs[0]['graphs_per_s']:.2f}× SAM"
    p = throughput_plotly(traces)
    np.testing.assert_allclose(np.asarray(p.data[0].y, dtype=float), [r["graphs_per_s"] for r in refs])


def test_lower_is_better_metric_and_missing_reference(tmp_path):
    e = {"epoch": np.arange(3), "val_rmse": np.array([1.0, 0.5, 0.7]), "test_rmse": np.array([1.1, 0.6, 0.4]),
         "graphs_per_s": np.array([5.0, 5.0, 5.0])}
    rows = throughput_table([_write(tmp_path, "g", "GraphSAM", e, [1, 1, 1])])
    ref = _reference_row(e, [1, 1, 1], higher_better=False, metric="rmse")
    assert rows[0]["test_metric"] == ref["test_metric"] == 0.6 and rows[0]["metric"] == "rmse"
    assert rows[0]["vs_sam"] is None and rows[0]["vs_adam"] is None
    with pytest.raises(MissingDataError, match="test_roc_auc"):
        throughput_table([_write(tmp_path, "h", "GraphSAM", e, [1])], metric="roc_auc")


def test_throughput_nothing_recorded(tmp_path):
    trace = open_trace(write_trace(tmp_path / "t.h5", {"omega_norm": np.ones(2)}, omit=("grad_evals",)))
    with pytest.raises(MissingDataError, match="throughput table"):
        throughput_table([trace])


def test_renderers():
    rows = [{"run": "SAM", "pct": 67.45, "n": 10, "x": None}, {"run": "a|b", "pct": float("nan"), "n": 3, "x": 0.000012}]
    md = to_markdown(rows, headers={"pct": "%"})
    assert md.splitlines() == ["| run | % | n | x |", "|---|---|---|---|", "| SAM | 67.45 | 10 | — |",
                               "| a\\|b | — | 3 | 1.200e-05 |"]
    html = to_html(rows)
    assert html.count("<tr>") == 3 and "<td>a|b</td>" in html and '<td class="num">67.45</td>' in html
    assert format_value(2.41300) == "2.413" and format_value(100.0) == "100" and format_value(True) == "yes"
    assert to_html([{"run": "<script>"}]).count("&lt;script&gt;") == 1


def test_metric_direction_comes_from_gradscope_metrics(tmp_path):
    """Which way is better is what gradscope.metrics says; an unknown metric has no best epoch."""
    from analyses.epochs import best_epoch_row, higher_is_better
    from gradscope.metrics import METRICS

    assert all(higher_is_better(name) == m.higher_is_better for name, m in METRICS.items())
    e = {"epoch": np.arange(3), "val_accuracy": np.array([0.5, 0.9, 0.7]), "test_accuracy": np.array([0.4, 0.8, 0.9]),
         "graphs_per_s": np.array([1.0, 1.0, 1.0])}
    trace = _write(tmp_path, "u", "SAM", e, [2])
    with pytest.raises(MissingDataError, match="unknown metric 'accuracy'"):
        best_epoch_row(trace, "accuracy")
    rows = throughput_table([trace])
    assert rows[0]["metric"] is None and rows[0]["graphs_per_s"] == 1.0


def test_best_epoch_by_validation_loss_when_the_metric_is_never_defined(tmp_path):
    """One class in the validation split: val_roc_auc is NaN at every epoch; record picks best.pt by
    validation loss, and the analyses pick the same epoch."""
    from analyses.epochs import best_epoch_row

    nan = float("nan")
    e = {"epoch": np.arange(4), "val_roc_auc": np.full(4, nan), "val_loss": np.array([0.9, 0.6, 0.7, 0.65]),
         "test_roc_auc": np.array([0.5, 0.6, 0.7, 0.8]), "graphs_per_s": np.ones(4)}
    trace = _write(tmp_path, "one-class", "SAM", e, [2])
    assert best_epoch_row(trace, "roc_auc") == 1
    assert throughput_table([trace])[0]["best_epoch"] == 1
    e["val_roc_auc"] = np.array([0.6, nan, 0.7, 0.65])  # defined somewhere: the metric decides, NaN never wins
    assert best_epoch_row(_write(tmp_path, "some", "SAM", e, [2]), "roc_auc") == 2

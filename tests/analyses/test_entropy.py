"""Attention-entropy aggregation and figures against hand computations."""
from __future__ import annotations

import numpy as np
import pytest
from kit.traces import write_trace

from analyses.entropy import entropy_figure, entropy_plotly, entropy_summary, entropy_table
from analyses.runs import MissingDataError
from gradscope.errors import ConfigError
from gradscope.trace import open_trace

RNG = np.random.default_rng(7)
LAYER_HEAD = 2.0 + RNG.random((5, 3, 4))  # epochs × layers × heads


def _epochs(**extra):
    base = {"epoch": np.arange(5), "attention_entropy": np.array([2.0, 2.2, 2.5, 2.4, np.nan]),
            "val_roc_auc": np.array([0.6, 0.8, 0.7, 0.8, 0.75]), "test_roc_auc": np.array([0.5, 0.7, 0.6, 0.9, 0.8])}
    base.update(extra)
    return base


def test_summary_last_best_and_number(tmp_path):
    trace = open_trace(write_trace(tmp_path / "t.h5", {"omega_norm": np.ones(3)}, _epochs(), optimizer="Adam"))
    last = entropy_summary(trace)
    assert (last.epoch, last.mean) == (3, 2.4)  # the last epoch that measured it (epoch 4 is NaN)
    assert last.paper == 2.4130
    best = entropy_summary(trace, at="best")  # first epoch with the best val_roc_auc
    assert (best.epoch, best.mean) == (1, 2.2)
    assert entropy_summary(trace, at=2).mean == 2.5
    with pytest.raises(MissingDataError, match="no epoch 9"):
        entropy_summary(trace, at=9)
    with pytest.raises(ConfigError):
        entropy_summary(trace, at="first")


def test_layer_head_aggregation(tmp_path):
    trace = open_trace(write_trace(tmp_path / "t.h5", {"omega_norm": np.ones(3)},
                                   _epochs(attention_entropy_layer_head=LAYER_HEAD), optimizer="SAM"))
    s = entropy_summary(trace, at=2)
    np.testing.assert_allclose(s.per_layer_head, LAYER_HEAD[2])
    per_layer = [sum(LAYER_HEAD[2, layer, h] for h in range(4)) / 4 for layer in range(3)]
    np.testing.assert_allclose(s.per_layer, per_layer)
    assert s.mean == 2.5  # the recorded mean wins over the grid


def test_grid_only_run_uses_the_grid_mean(tmp_path):
    epochs = {"epoch": np.arange(5), "attention_entropy": np.full(5, np.nan), "attention_entropy_layer_head": LAYER_HEAD}
    trace = open_trace(write_trace(tmp_path / "t.h5", {"omega_norm": np.ones(3)}, epochs, optimizer="GraphSAM"))
    s = entropy_summary(trace)
    ref = sum(LAYER_HEAD[4].ravel().tolist()) / LAYER_HEAD[4].size
    assert s.mean == pytest.approx(ref) and s.epoch == 4 and s.paper == 2.7239


def test_table_and_figures(tmp_path):
    adam = open_trace(write_trace(tmp_path / "a.h5", {"omega_norm": np.ones(3)}, _epochs(), optimizer="Adam"))
    sam_epochs = _epochs(attention_entropy=np.array([2.1, 2.6, 2.7, 2.8, 2.85]))
    sam = open_trace(write_trace(tmp_path / "s.h5", {"omega_norm": np.ones(3)}, sam_epochs, optimizer="SAM"))
    rows = entropy_table([adam, sam])
    assert [(r["run"], r["attention_entropy"], r["paper_attention_entropy"]) for r in rows] == [
        ("Adam", 2.4, 2.4130), ("SAM", 2.85, 2.8382)]
    fig = entropy_figure([adam, sam])
    left, right = fig.axes
    assert left.get_xlabel() == "epoch" and left.get_ylabel() == "attention entropy (nats)"
    np.testing.assert_allclose(left.lines[0].get_ydata(), _epochs()["attention_entropy"], equal_nan=True)
    assert left.lines[1].get_label() == "Adam (paper 2.4130)"
    np.testing.assert_allclose(left.lines[1].get_ydata(), [2.4130, 2.4130])
    np.testing.assert_allclose([p.get_height() for p in right.patches], [2.4, 2.85])
    pfig = entropy_plotly([adam, sam])
    np.testing.assert_allclose(np.asarray(pfig.data[2].y, dtype=float), sam_epochs["attention_entropy"])
    np.testing.assert_allclose(np.asarray(pfig.data[-1].y, dtype=float), [2.4, 2.85])


def test_grouped_bars_per_head(tmp_path):
    runs = []
    for k, name in enumerate(("SAM", "GraphSAM")):
        grid = LAYER_HEAD + k
        epochs = _epochs(attention_entropy_layer_head=grid)
        runs.append(open_trace(write_trace(tmp_path / f"{k}.h5", {"omega_norm": np.ones(3)}, epochs, optimizer=name)))
    right = entropy_figure(runs, at=0).axes[1]
    heights = np.array([p.get_height() for p in right.patches])
    np.testing.assert_allclose(heights, np.concatenate([LAYER_HEAD[0].ravel(), LAYER_HEAD[0].ravel() + 1]))
    assert [t.get_text() for t in right.get_xticklabels()][:5] == ["L0H0", "L0H1", "L0H2", "L0H3", "L1H0"]


def test_missing_entropy(tmp_path):
    trace = open_trace(write_trace(tmp_path / "t.h5", {"omega_norm": np.ones(3)}, {"epoch": np.arange(2), "train_loss": [1.0, 0.5]}))
    with pytest.raises(MissingDataError, match="no attention entropy"):
        entropy_summary(trace)
    no_epochs = open_trace(write_trace(tmp_path / "n.h5", {"omega_norm": np.ones(3)}))
    with pytest.raises(MissingDataError, match="epochs"):
        entropy_figure([no_epochs])

"""The writer: schema completeness, root attributes, overwrite and resume rules, epoch metrics."""
from __future__ import annotations

import json
import h5py
import numpy as np
import pytest

from gradscope.errors import ConfigError, GradscopeError
from gradscope.trace import SCHEMA_VERSION, TraceLayout, TraceWriter, VectorSpec, open_trace, schema

def test_every_schema_dataset_and_attribute_is_created_with_its_dtype(tmp_path, tr) -> None:
    path = tmp_path / "t.h5"
    rows = tr.write_trace(path, steps=7, layout=TraceLayout(layer_names=("a", "b"), vectors=VectorSpec(4)))
    with h5py.File(path, "r") as f:
        assert set(schema.ROOT_ATTRIBUTES) <= set(f.attrs)
        assert f.attrs["format"] == "gradscope.trace" and f.attrs["schema_version"] == SCHEMA_VERSION
        assert json.loads(f.attrs["config"]) == {"lr": 0.1, "name": "x"}
        assert f.attrs["optimizer"] == "Fake"
        for group, columns in (("steps", schema.STEP_COLUMNS), ("epochs", schema.EPOCH_COLUMNS)):
            assert sorted(f[group]) == sorted(c.name for c in columns)
            for col in columns:
                assert f[group][col.name].dtype == np.dtype(col.dtype), col.name
        assert {f["steps"][name].shape for name in f["steps"]} == {(7,)}
        assert f["layers/eps_norm"].shape == (0, 2)
        assert [n.decode() if isinstance(n, bytes) else n for n in f["layers"].attrs["names"]] == ["a", "b"]
        assert f["vectors/eps"].shape == (0, 4)
        for name, values in rows.items():
            np.testing.assert_array_equal(f["steps"][name][:], values)


def test_missing_columns_are_filled_and_unknown_ones_refused(tmp_path) -> None:
    with TraceWriter(tmp_path / "t.h5", optimizer="X") as w:
        w.append_steps({"step": np.arange(3), "omega_norm": np.ones(3)})
        with pytest.raises(GradscopeError, match="not step columns"):
            w.append_steps({"step": np.arange(3, 4), "bogus": np.ones(1)})
    s = open_trace(tmp_path / "t.h5").steps
    assert np.isnan(s["eps_norm"]).all() and (s["grad_evals"] == -1).all()
    np.testing.assert_array_equal(s["omega_norm"], np.ones(3))


def test_existing_file_is_never_overwritten_silently(tmp_path, tr) -> None:
    path = tmp_path / "t.h5"
    tr.write_trace(path, steps=5)
    before = path.read_bytes()
    with pytest.raises(GradscopeError, match="exists"):
        TraceWriter(path, optimizer="X")
    assert path.read_bytes() == before
    with pytest.raises(ConfigError, match="contradict"):
        TraceWriter(path, optimizer="X", overwrite=True, resume=True)
    TraceWriter(path, optimizer="Y", overwrite=True).close()
    trace = open_trace(path)
    assert len(trace) == 0 and trace.optimizer == "Y"


def test_unjsonable_config_is_a_config_error_and_leaves_no_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="JSON"):
        TraceWriter(tmp_path / "t.h5", optimizer="X", config={"f": object()})
    assert not (tmp_path / "t.h5").exists()
    with pytest.raises(ConfigError, match="set by the writer"):
        TraceWriter(tmp_path / "t.h5", optimizer="X", attributes={"format": "mine"})
    assert not (tmp_path / "t.h5").exists()


def test_resume_appends_after_the_last_step(tmp_path, tr) -> None:
    path = tmp_path / "t.h5"
    first = tr.write_trace(path, steps=6)
    with TraceWriter(path, optimizer="ignored", resume=True) as w:
        assert w.next_step == 6
        w.append_steps(tr.step_rows(6, 4, seed=1))
    trace = open_trace(path)
    np.testing.assert_array_equal(trace.steps["step"], np.arange(10))
    np.testing.assert_array_equal(trace.steps["omega_norm"][:6], first["omega_norm"])
    assert trace.optimizer == "Fake"  # root attributes of the original run are kept
    assert trace.config == {"lr": 0.1, "name": "x"}  # no config given on resume: the old one stays


def test_resume_with_a_config_makes_it_the_current_one(tmp_path, tr) -> None:
    """A run resumed to more epochs says so in its trace, as in its config.json."""
    path = tmp_path / "t.h5"
    tr.write_trace(path, steps=3)
    created = open_trace(path).metadata["created"]
    with TraceWriter(path, optimizer="ignored", resume=True, config={"lr": 0.1, "name": "x", "epochs": 9}) as w:
        w.append_steps(tr.step_rows(3, 2, seed=1))
    trace = open_trace(path)
    assert trace.config == {"epochs": 9, "lr": 0.1, "name": "x"}
    assert trace.optimizer == "Fake" and trace.metadata["created"] == created


def test_resume_at_a_step_drops_later_rows_of_every_group(tmp_path, tr) -> None:
    path = tmp_path / "t.h5"
    layout = TraceLayout(layer_names=("w",), vectors=VectorSpec(3), epoch_metrics=(("val_auc", ()),))
    with TraceWriter(path, optimizer="X", layout=layout) as w:
        for epoch in range(3):  # 4 steps per epoch, an epoch row after each
            rows = tr.step_rows(4 * epoch, 4, epoch=epoch)
            w.append_steps(rows, layers={"eps_norm": np.ones((4, 1)), "omega_norm": np.ones((4, 1))})
            w.append_vectors(4 * epoch, None, np.zeros(3))
            w.append_epoch({"epoch": epoch, "step_count": 4 * epoch + 4, "val_auc": 0.5})
    with TraceWriter(path, optimizer="X", layout=layout, resume=True, resume_step=8) as w:
        assert w.next_step == 8
        w.append_steps(tr.step_rows(8, 2, epoch=2), layers={"eps_norm": np.zeros((2, 1)), "omega_norm": np.zeros((2, 1))})
    t = open_trace(path)
    np.testing.assert_array_equal(t.steps["step"], np.arange(10))
    np.testing.assert_array_equal(t.layers["step"], np.arange(10))
    np.testing.assert_array_equal(t.layers["eps_norm"][:, 0], [1] * 8 + [0] * 2)
    np.testing.assert_array_equal(t.vectors.step, [0, 4])  # the snapshot at step 8 was dropped
    np.testing.assert_array_equal(t.epochs["epoch"], [0, 1])  # epoch 2's row was logged after step 8
    assert len({len(v) for v in t.steps.values()}) == 1
    assert json.loads(t.metadata["resumes"])[0]["step"] == 8


def test_resume_past_the_stored_steps_warns_about_the_gap(tmp_path, tr) -> None:
    path = tmp_path / "t.h5"
    tr.write_trace(path, steps=4)
    with pytest.warns(UserWarning, match="never flushed"):
        w = TraceWriter(path, optimizer="X", resume=True, resume_step=9)
    assert w.next_step == 9
    w.close()


def test_resume_refuses_incompatible_files(tmp_path, tr) -> None:
    path = tmp_path / "t.h5"
    tr.write_trace(path, layout=TraceLayout(layer_names=("a",)))
    with pytest.raises(GradscopeError, match="other tensors"):
        TraceWriter(path, optimizer="X", layout=TraceLayout(layer_names=("b",)), resume=True)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(GradscopeError, match="not a gradscope trace"):
        TraceWriter(other, optimizer="X", resume=True)
    fresh = tmp_path / "fresh.h5"
    TraceWriter(fresh, optimizer="X", resume=True).close()  # nothing to resume: a new trace
    assert len(open_trace(fresh)) == 0


def test_undeclared_epoch_metrics_are_written_at_close(tmp_path) -> None:
    path = tmp_path / "t.h5"
    w = TraceWriter(path, optimizer="X", layout=TraceLayout(epoch_metrics=(("val_auc", ()),)))
    w.append_epoch({"epoch": 0, "val_auc": 0.6})
    with pytest.warns(UserWarning, match="not declared"):
        w.append_epoch({"epoch": 1, "test_auc": 0.7, "attention_entropy_layer_head": [[1.0, 2.0]]})
    w.append_epoch({"epoch": 2, "test_auc": 0.8, "attention_entropy_layer_head": [[3.0, 4.0]]})
    with pytest.raises(GradscopeError, match="shape"):
        w.append_epoch({"epoch": 3, "attention_entropy_layer_head": [1.0, 2.0, 3.0]})
    assert "test_auc" not in open_trace(path).epochs  # not visible while writing
    w.close()
    e = open_trace(path).epochs
    np.testing.assert_array_equal(e["epoch"], [0, 1, 2])
    np.testing.assert_array_equal(e["val_auc"], [0.6, np.nan, np.nan])
    np.testing.assert_array_equal(e["test_auc"], [np.nan, 0.7, 0.8])
    np.testing.assert_array_equal(e["attention_entropy_layer_head"][1:], [[[1.0, 2.0]], [[3.0, 4.0]]])


def test_declared_epoch_metric_shapes_are_checked(tmp_path) -> None:
    with pytest.raises(ConfigError, match="shape"):
        TraceLayout(epoch_metrics=(("attention_entropy", (2,)),))
    with pytest.raises(ConfigError, match="invalid"):
        TraceLayout(epoch_metrics=(("a/b", ()),))
    with TraceWriter(tmp_path / "t.h5", optimizer="X", layout=TraceLayout(epoch_metrics=(("h", (2,)),))) as w:
        with pytest.raises(GradscopeError, match="declared"):
            w.append_epoch({"epoch": 0, "h": [1.0, 2.0, 3.0]})
        w.append_epoch({"epoch": 0, "h": [1.0, 2.0]})
    np.testing.assert_array_equal(open_trace(tmp_path / "t.h5").epochs["h"], [[1.0, 2.0]])

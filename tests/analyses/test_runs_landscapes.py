"""Finding runs, labelling them, landscape figures, decimation and zoom parsing."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from kit.traces import sam_like, write_landscape, write_trace

from analyses.landscapes import landscape_figure, landscape_panels, landscape_plotly
from analyses.plotting import decimate, default_zoom, parse_zoom
from analyses.runs import MissingDataError, load_run, load_runs, unique_labels
from gradscope.errors import GradscopeError

X = np.linspace(-1.0, 1.0, 11)
Y = np.linspace(-0.5, 0.5, 5)


def _run_dir(root, name, optimizer, landscapes=()):
    write_trace(root / name / "trace.h5", sam_like(20), optimizer=optimizer)
    for stem, loss, y, label in landscapes:
        write_landscape(root / name / "landscape" / f"{stem}.h5", X, loss, y=y, label=label)
    return root / name


def test_load_run_kinds(tmp_path):
    run = load_run(_run_dir(tmp_path, "r", "GraphSAM", [("one", X**2, None, "model")]))
    assert run.label == "GraphSAM" and run.trace is not None and [p.name for p in run.landscapes] == ["one.h5"]
    trace_only = load_run(tmp_path / "r" / "trace.h5")
    assert trace_only.trace is not None and trace_only.landscapes == ()
    ls_only = load_run(tmp_path / "r" / "landscape" / "one.h5", label="x")
    assert ls_only.trace is None and ls_only.label == "x"
    with pytest.raises(MissingDataError, match="holds no trace.h5"):
        ls_only.require_trace()


def test_load_run_errors(tmp_path):
    with pytest.raises(GradscopeError, match="does not exist"):
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GradscopeError, match="neither trace.h5 nor landscape"):
        load_run(tmp_path / "empty")
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(GradscopeError, match="not a readable HDF5 file"):
        load_run(text)
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.attrs["format"] = "something.else"
    with pytest.raises(GradscopeError, match="not a gradscope trace or landscape") as info:
        load_run(tmp_path / "other.h5")
    assert "\n" not in str(info.value)
    with pytest.raises(GradscopeError, match="2 labels given for 1 runs"):
        load_runs([tmp_path / "other.h5"], ["a", "b"])


def test_labels_made_unique(tmp_path):
    runs = load_runs([_run_dir(tmp_path, "seed0", "SAM"), _run_dir(tmp_path, "seed1", "SAM"), _run_dir(tmp_path, "g", "GraphSAM")])
    assert [r.label for r in runs] == ["SAM (seed0)", "SAM (seed1)", "GraphSAM"]
    assert unique_labels(["a", "a"], [None, None]) == ["a #1", "a #2"]


def test_landscape_figure_series(tmp_path):
    a = _run_dir(tmp_path, "a", "SAM", [("one", X**2, None, "sam")])
    b = _run_dir(tmp_path, "b", "GraphSAM", [("one", 0.5 * X**2, None, "model"),
                                             ("two", X[None, :] ** 2 + Y[:, None] ** 2, Y, "graphsam-2d")])
    runs = load_runs([a, b])
    assert landscape_panels(runs) == 2
    fig = landscape_figure(runs)
    curves, contour = fig.axes[:2]
    # one file: the run label; several: the run label, the directions and the dimension
    assert [line.get_label() for line in curves.lines[:2]] == ["SAM", "GraphSAM: random 1-D"]  # then the α = 0 marker
    np.testing.assert_allclose(curves.lines[0].get_ydata(), X**2)
    np.testing.assert_allclose(curves.lines[1].get_ydata(), 0.5 * X**2)
    assert curves.get_ylabel() == "loss" and curves.get_xlabel().startswith("α")
    assert contour.get_title() == "GraphSAM: random 2-D: 2-D loss" and contour.get_ylabel().startswith("β")
    p = landscape_plotly(runs)
    np.testing.assert_allclose(np.asarray(p.data[2].z, dtype=float), X[None, :] ** 2 + Y[:, None] ** 2)


def test_landscape_not_done_points_are_gaps(tmp_path):
    done = np.ones(11, dtype=bool)
    done[[0, 10]] = False
    path = write_landscape(tmp_path / "l.h5", X, X**2, done=done)
    fig = landscape_figure([path], labels=["partial"])
    y = fig.axes[0].lines[0].get_ydata()
    assert np.isnan(y[0]) and np.isnan(y[10]) and y[5] == 0.0


def test_landscape_missing(tmp_path):
    runs = load_runs([_run_dir(tmp_path, "a", "SAM")])
    with pytest.raises(MissingDataError, match="no landscape file"):
        landscape_figure(runs)


def _ref_decimate(y, max_points):
    """Per bucket of consecutive points (the first n % k buckets one longer): the positions of
    its first minimum and first maximum, in order (slow loop)."""
    n, k = len(y), max_points // 2
    sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
    keep, start = [], 0
    for size in sizes:
        idx = list(range(start, start + size))
        lo = min(idx, key=lambda j: (y[j], j))
        hi = max(idx, key=lambda j: (y[j], -j))
        keep.extend(sorted({lo, hi}))
        start += size
    return keep


def test_decimate_keeps_envelope():
    rng = np.random.default_rng(0)
    y = rng.normal(size=1003)
    y[500] = 50.0  # a spike a stride would likely miss
    x = np.arange(1003)
    xs, ys = decimate(x, y, max_points=100)
    assert len(xs) <= 100 and 50.0 in ys
    np.testing.assert_array_equal(xs, _ref_decimate(y, 100))
    np.testing.assert_array_equal(ys, y[xs])
    same_x, same_y = decimate(x[:50], y[:50], max_points=100)
    np.testing.assert_array_equal(same_y, y[:50])


def test_zoom_parsing():
    assert parse_zoom("10:250") == (10.0, 250.0)
    assert parse_zoom(None) is None
    for bad in ("10", "a:b", "5:5", "9:2", "1:2:3"):
        with pytest.raises(GradscopeError):
            parse_zoom(bad)
    assert default_zoom(np.arange(1000.0)) == (0.0, 100.0)  # a tenth, rounded up to whole steps
    assert default_zoom(np.arange(50.0)) == (0.0, 10.0)

"""The pieces of `gradscope landscape` that need no recorded run: sampling, naming, settings, sharpness files."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from gradscope.errors import ConfigError, GradscopeError
from gradscope.landscape import (LandscapeSettings, SharpnessSettings, landscape_file_name, measure_sharpness,
                                 read_sharpness, write_sharpness)
from gradscope.landscape.io import file_label
from gradscope.landscape.runs import RunLandscapeSettings, run_directory, sample_indices
from kit.landscape import ce_loss, tiny_batches, tiny_model


def test_samples_are_a_seeded_uniform_draw_not_the_first_rows() -> None:
    indices = np.arange(100, 300)
    a = sample_indices(indices, 40, seed=0)
    assert len(a) == 40 and len(set(a)) == 40 and set(a) <= set(indices)
    assert list(a) == sorted(a) and not np.array_equal(a, indices[:40])
    np.testing.assert_array_equal(a, sample_indices(indices, 40, seed=0))  # reproducible
    assert not np.array_equal(a, sample_indices(indices, 40, seed=1))
    np.testing.assert_array_equal(sample_indices(indices, None, 0), indices)
    np.testing.assert_array_equal(sample_indices(indices, 500, 0), indices)
    # uniform: over many seeds every position is drawn about equally often (5 of 20 → 1/4 each)
    counts = np.zeros(20)
    for seed in range(2000):
        counts[sample_indices(np.arange(20), 5, seed)] += 1
    expected = 2000 * 5 / 20
    assert np.abs(counts - expected).max() < 5 * np.sqrt(expected * 0.75)


def test_first_rows_of_a_sorted_file_are_not_representative() -> None:
    """A file whose first rows are all positive (as BBBP's first rows are mostly): the draw is not."""
    labels = np.r_[np.ones(60), np.zeros(140)]
    drawn = labels[sample_indices(np.arange(200), 50, seed=3)]
    assert labels[:50].mean() == 1.0 and abs(drawn.mean() - labels.mean()) < 0.15


def test_file_names() -> None:
    assert file_label("adam→sam") == "adam_sam" and file_label("sam run") == "sam_run"
    assert file_label("graphsam-released:s0") == "graphsam-released_s0"
    with pytest.raises(GradscopeError, match="no usable file name"):
        file_label("→→")
    names = {landscape_file_name("sam", d, k) for d in ("random", "eps-omega") for k in (1, 2)}
    assert len(names) == 4 and "sam_random_1d.h5" in names and "sam_eps-omega_2d.h5" in names


def test_run_directory(tmp_path) -> None:
    assert run_directory(tmp_path / "run" / "checkpoints" / "best.pt") == tmp_path / "run"
    assert run_directory(tmp_path / "loose.pt") == tmp_path


@pytest.mark.parametrize("kwargs, match", [
    ({"directions": "sideways"}, "unknown directions"),
    ({"split": "holdout"}, "unknown split"),
    ({"samples": 0}, "samples must be a positive number"),
    ({"step": 3}, "eps-omega directions only"),
    ({"directions": "interpolate", "landscape": LandscapeSettings(dims=2, points_x=3)}, "1-D line"),
    ({"checkpoint": "first"}, "best' or 'last"),
])
def test_run_settings_validate(kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        RunLandscapeSettings(**kwargs)


@pytest.mark.parametrize("points", [1, 2])
def test_degenerate_grids_are_refused(points) -> None:
    with pytest.raises(ConfigError, match="at least 3"):
        LandscapeSettings(points_x=points)
    with pytest.raises(ConfigError, match="at least 3"):
        LandscapeSettings(dims=2, points_x=5, points_y=points)


def test_sharpness_files_are_merged_by_label(tmp_path) -> None:
    model, batches = tiny_model(), tiny_batches()
    s = SharpnessSettings(n_directions=2, top_k=2, trace_probes=3, density_runs=1, density_steps=8)
    first = measure_sharpness(model, batches, ce_loss, s)
    second = measure_sharpness(model, batches, ce_loss, SharpnessSettings(n_directions=2, hessian=False))
    write_sharpness(tmp_path, {"adam": first}, {"adam": {"run": "../adam"}})
    write_sharpness(tmp_path, {"sam/1": second})
    summary = read_sharpness(tmp_path)
    assert set(summary) == {"adam", "sam/1"} and summary["adam"]["run"] == "../adam"
    assert summary["adam"]["lambda_max"] == first.lambda_max and summary["sam/1"]["lambda_max"] is None
    with h5py.File(tmp_path / "sharpness.h5", "r") as f:
        assert f.attrs["format"] == "gradscope.sharpness" and set(f) == {"adam", "sam_1"}
        assert f["sam_1"].attrs["label"] == "sam/1"
        np.testing.assert_allclose(f["adam/top_eigenvalues"][()], first.top_eigenvalues)
        np.testing.assert_allclose(f["adam/density/nodes"][()], first.density.nodes)
        grid, values = f["adam/density/grid"][()], f["adam/density/values"][()]
        assert np.trapezoid(values, grid) == pytest.approx(1.0, abs=1e-2)
        assert json.loads(f["adam"].attrs["summary"])["trace"] == first.trace
    write_sharpness(tmp_path, {"adam": second})  # measured again: replaced, the other label kept
    assert read_sharpness(tmp_path)["adam"]["lambda_max"] is None and "sam/1" in read_sharpness(tmp_path)
    (tmp_path / "sharpness.json").write_text("[1, 2]")
    with pytest.raises(GradscopeError, match="not a sharpness summary"):
        read_sharpness(tmp_path)

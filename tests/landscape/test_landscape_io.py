"""The landscape file: round trip, interruption and resume, direction reuse, user errors."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from gradscope.errors import GradscopeError
from gradscope.landscape import (
    LandscapeSettings,
    compare_landscapes,
    compute_landscape,
    load_directions,
    open_landscape,
)
from kit.landscape import accuracy, ce_loss, classification_batches, flat_params, mlp, reference_loss


def test_round_trip(tmp_path: Path) -> None:
    model, batches = mlp(), classification_batches()
    settings = LandscapeSettings(dims=2, points_x=5, points_y=3, range_y=0.5, seed=7)
    path = tmp_path / "ls.h5"
    ls = compute_landscape(
        model, batches, ce_loss, settings, metric_fn=accuracy, metric_name="accuracy", out_path=path,
        label="adam", checkpoint="runs/a/checkpoints/last.pt", progress=False,
    )
    back = open_landscape(path)
    np.testing.assert_array_equal(back.loss, ls.loss)
    np.testing.assert_array_equal(back.metric, ls.metric)
    np.testing.assert_array_equal(back.x, ls.x)
    np.testing.assert_array_equal(back.y, ls.y)
    assert back.done.all() and back.settings == settings
    assert (back.label, back.checkpoint, back.metric_name) == ("adam", "runs/a/checkpoints/last.pt", "accuracy")
    assert torch.equal(back.directions.vectors, ls.directions.vectors)
    assert torch.equal(back.directions.raw, ls.directions.raw)
    assert back.directions.layout == ls.directions.layout and back.directions.seed == 7
    with h5py.File(path) as f:
        assert f.attrs["format"] == "gradscope.landscape" and f.attrs["version"] == 1
        assert f["loss"].shape == (3, 5) and f["directions/vectors"].shape == (2, ls.directions.layout.numel)


class Interrupt(Exception):
    pass


def counting_forward(limit: int | None, counter: list[int]):
    def forward(model, batch):
        counter[0] += 1
        if limit is not None and counter[0] > limit:
            raise Interrupt
        return model(batch[0])

    return forward


def test_resume_after_interruption_evaluates_only_missing_points(tmp_path: Path) -> None:
    model, batches = mlp(), classification_batches()  # 3 batches
    settings = LandscapeSettings(dims=2, points_x=5, chunk_size=4, mode="loop")  # 25 points
    path = tmp_path / "ls.h5"
    calls = [0]
    with pytest.raises(Interrupt):
        # dies during the 4th chunk: 3 chunks of 4 points x 3 batches = 36 forwards completed
        compute_landscape(model, batches, ce_loss, settings, out_path=path, forward=counting_forward(40, calls),
                          progress=False)
    partial = open_landscape(path)
    assert partial.done.sum() == 12 and np.isnan(partial.loss[~partial.done]).all()
    calls = [0]
    resumed = compute_landscape(model, batches, ce_loss, settings, out_path=path, resume=True,
                                forward=counting_forward(None, calls), progress=False)
    assert calls[0] == (25 - 12) * 3  # only the missing points were evaluated
    full = compute_landscape(model, batches, ce_loss, settings, progress=False)
    np.testing.assert_allclose(resumed.loss, full.loss, rtol=1e-6)
    np.testing.assert_array_equal(partial.loss[partial.done], resumed.loss[partial.done])
    assert open_landscape(path).complete


def test_resume_batched_gives_the_same_surface(tmp_path: Path) -> None:
    model, batches = mlp(), classification_batches()
    settings = LandscapeSettings(dims=2, points_x=7, chunk_size=8)
    path = tmp_path / "ls.h5"
    calls = [0]
    with pytest.raises(Interrupt):
        compute_landscape(model, batches, ce_loss, settings, out_path=path, forward=counting_forward(10, calls),
                          progress=False)
    assert 0 < open_landscape(path).done.sum() < 49
    resumed = compute_landscape(model, batches, ce_loss, settings, out_path=path, resume=True, progress=False)
    full = compute_landscape(model, batches, ce_loss, settings, progress=False)
    np.testing.assert_allclose(resumed.loss, full.loss, rtol=1e-6)


def test_existing_file_needs_resume_or_overwrite_and_matching_settings(tmp_path: Path) -> None:
    model, batches = mlp(), classification_batches()
    path = tmp_path / "ls.h5"
    s = LandscapeSettings(points_x=5)
    compute_landscape(model, batches, ce_loss, s, out_path=path, progress=False)
    with pytest.raises(GradscopeError, match="exists"):
        compute_landscape(model, batches, ce_loss, s, out_path=path, progress=False)
    with pytest.raises(GradscopeError, match="grid"):
        compute_landscape(model, batches, ce_loss, LandscapeSettings(points_x=7), out_path=path, resume=True,
                          progress=False)
    with pytest.raises(GradscopeError, match="other directions"):
        compute_landscape(model, batches, ce_loss, s, out_path=path, resume=True, progress=False,
                          directions=load_directions(path, renormalize_to=mlp()))
    with pytest.raises(GradscopeError, match="metric"):
        compute_landscape(model, batches, ce_loss, s, out_path=path, resume=True, metric_fn=accuracy, progress=False)
    done = compute_landscape(model, batches, ce_loss, s, out_path=path, resume=True, progress=False)
    assert done.complete
    compute_landscape(model, batches, ce_loss, LandscapeSettings(points_x=7), out_path=path, overwrite=True,
                      progress=False)
    assert open_landscape(path).loss.shape == (7,)


def test_directions_reused_from_a_file(tmp_path: Path) -> None:
    a, b, batches = mlp(), mlp(), classification_batches()
    s = LandscapeSettings(points_x=5)
    path = tmp_path / "a.h5"
    ls_a = compute_landscape(a, batches, ce_loss, s, out_path=path, progress=False)
    same = compute_landscape(b, batches, ce_loss, s, directions=path, progress=False)
    assert torch.equal(same.directions.vectors, ls_a.directions.vectors)
    theta_b = flat_params(b)
    want = reference_loss(b, batches, ce_loss, theta_b + ls_a.x[-1] * ls_a.directions.vectors[0])
    assert same.loss[-1] == pytest.approx(want, rel=1e-5)
    renorm = load_directions(path, renormalize_to=b)
    assert torch.equal(renorm.raw, ls_a.directions.raw)
    w = b[0].weight.detach()
    torch.testing.assert_close(renorm.vectors[0, : w.numel()].view_as(w).norm(dim=1), w.norm(dim=1))


def test_compare_landscapes_shares_the_draw(tmp_path: Path) -> None:
    models = {"adam": mlp(), "sam": mlp()}
    batches = classification_batches()
    out = compare_landscapes(models, batches, ce_loss, LandscapeSettings(points_x=5, seed=3), out_dir=tmp_path,
                             progress=False)
    assert set(out) == {"adam", "sam"} and (tmp_path / "adam.h5").is_file() and (tmp_path / "sam.h5").is_file()
    assert torch.equal(out["adam"].directions.raw, out["sam"].directions.raw)
    assert not torch.equal(out["adam"].directions.vectors, out["sam"].directions.vectors)
    assert open_landscape(tmp_path / "sam.h5").label == "sam"
    with pytest.raises(GradscopeError, match="architecture"):
        compare_landscapes({"a": mlp(), "b": mlp(hidden=8)}, batches, ce_loss, progress=False)


def test_reading_errors(tmp_path: Path) -> None:
    with pytest.raises(GradscopeError, match="no landscape file"):
        open_landscape(tmp_path / "missing.h5")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["format"] = "gradscope.trace"
    with pytest.raises(GradscopeError, match="not a gradscope landscape"):
        open_landscape(other)
    text = tmp_path / "text.h5"
    text.write_text("hello")
    with pytest.raises(GradscopeError, match="HDF5"):
        open_landscape(text)

"""Batched evaluation against a per-point reference loop (copy model, set θ, forward)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from gradscope.errors import GradscopeError
from gradscope.landscape import (
    LandscapeEvaluator,
    LandscapeSettings,
    compute_landscape,
    interpolation_direction,
    random_directions,
)
from kit.landscape import (
    TinyAttention,
    accuracy,
    ce_loss,
    classification_batches,
    flat_params,
    mlp,
    reference_loss,
    reference_outputs,
)


def reference_surface(model, batches, loss_fn, dirs, grid, forward=None) -> np.ndarray:
    theta = flat_params(model)
    vals = [
        reference_loss(model, batches, loss_fn, theta + sum(c * d for c, d in zip(row, dirs)), forward)
        for row in grid.coefficients()
    ]
    return np.array(vals).reshape(grid.shape)


def test_centre_equals_plain_loss() -> None:
    model, batches = mlp(), classification_batches()
    ls = compute_landscape(model, batches, ce_loss, LandscapeSettings(dims=2, points_x=5, points_y=3), progress=False)
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    with torch.no_grad():
        plain = float(ce_loss(model(x), (x, y)))  # one pass over the whole evaluation set
    assert ls.centre_loss == pytest.approx(plain, rel=1e-6)
    assert ls.done.all() and ls.loss.shape == (3, 5)


def test_model_is_restored_bit_for_bit() -> None:
    model = nn.Sequential(nn.Linear(6, 16), nn.Dropout(0.5), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    model.train()
    model[2].eval()  # a mixed mode must survive too
    batches = classification_batches()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    ids = {n: (id(p), p.data_ptr()) for n, p in model.named_parameters()}
    flags = [m.training for m in model.modules()]
    compute_landscape(model, batches, ce_loss, LandscapeSettings(dims=2, points_x=5), progress=False)
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]) and (id(p), p.data_ptr()) == ids[n]
    for n, b in model.named_buffers():
        assert torch.equal(b, buffers[n])
    assert [m.training for m in model.modules()] == flags


def test_batched_equals_per_point_loop_on_non_square_grid() -> None:
    model, batches = mlp(), classification_batches()
    settings = LandscapeSettings(dims=2, points_x=7, range_x=0.8, points_y=6, range_y=(-0.4, 0.6), chunk_size=8)
    dirs = random_directions(model, 2, seed=3)
    ls = compute_landscape(model, batches, ce_loss, settings, directions=dirs, progress=False)
    ref = reference_surface(model, batches, ce_loss, dirs.vectors, settings.grid())
    np.testing.assert_allclose(ls.loss, ref, rtol=1e-5)
    ev = LandscapeEvaluator(model, batches, ce_loss, mode="loop")
    looped = ev.evaluate(dirs.vectors, settings.grid().coefficients())
    np.testing.assert_allclose(looped.loss.reshape(ls.loss.shape), ref, rtol=1e-5)


def test_loop_path_leaves_the_model_alone_and_works_without_a_copy() -> None:
    """The per-point path writes points into a private copy; a model that cannot be deep-copied
    falls back to functional_call. Both equal the reference, and the model is untouched."""
    import threading

    model, batches = mlp(), classification_batches()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    settings = LandscapeSettings(dims=2, points_x=5, range_x=0.7)
    dirs = random_directions(model, 2, seed=8)
    ref = reference_surface(model, batches, ce_loss, dirs.vectors, settings.grid()).ravel()
    copied = LandscapeEvaluator(model, batches, ce_loss, mode="loop")
    np.testing.assert_allclose(copied.evaluate(dirs.vectors, settings.grid().coefficients()).loss, ref, rtol=1e-5)
    assert copied._scratch not in (None, False)
    model.lock = threading.Lock()  # deepcopy raises TypeError on a lock
    fallback = LandscapeEvaluator(model, batches, ce_loss, mode="loop")
    np.testing.assert_allclose(fallback.evaluate(dirs.vectors, settings.grid().coefficients()).loss, ref, rtol=1e-5)
    assert fallback._scratch is False
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n])


def test_quadratic_model_curve_matches_closed_form() -> None:
    torch.manual_seed(2)
    model = nn.Linear(4, 3, bias=False).double()
    x = torch.randn(30, 4, dtype=torch.float64)
    y = torch.randn(30, 3, dtype=torch.float64)
    loss_fn = lambda out, b: ((out - b[1]) ** 2).mean()  # noqa: E731
    settings = LandscapeSettings(points_x=21, range_x=2.0)
    ls = compute_landscape(model, [(x, y)], loss_fn, settings, progress=False)
    d = ls.directions.vectors[0].view(3, 4)
    r = x @ model.weight.detach().T - y
    s = x @ d.T
    a = torch.from_numpy(ls.x)
    closed = (r**2).mean() + 2 * a * (r * s).mean() + a**2 * (s**2).mean()
    np.testing.assert_allclose(ls.loss, closed.numpy(), rtol=1e-10)


def test_vmap_failure_falls_back_to_loop_with_one_warning() -> None:
    class Branchy(nn.Module):  # Python control flow on a parameter value cannot be vmapped
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(6, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.lin.weight.sum() > 0:
                return self.lin(x)
            return -self.lin(x)

    model, batches = Branchy(), classification_batches()
    dirs = random_directions(model, 1, seed=1)
    grid = LandscapeSettings(points_x=9).grid()
    ev = LandscapeEvaluator(model, batches, ce_loss)
    with pytest.warns(RuntimeWarning, match="per-point loop"):
        res = ev.evaluate(dirs.vectors, grid.coefficients())
    assert ev.mode == "loop"
    ref = reference_surface(model, batches, ce_loss, dirs.vectors, grid)
    np.testing.assert_allclose(res.loss, ref, rtol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ev.evaluate(dirs.vectors, grid.coefficients())  # remembered: no second warning


def test_chunk_size_halves_on_out_of_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    model, batches = mlp(), classification_batches()
    dirs = random_directions(model, 2, seed=5)
    grid = LandscapeSettings(dims=2, points_x=5).grid()
    ev = LandscapeEvaluator(model, batches, ce_loss, chunk_size=16)
    real = ev._run_chunk
    sizes: list[int] = []

    def limited(d, coeffs):
        sizes.append(coeffs.shape[0])
        if coeffs.shape[0] > 3:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(d, coeffs)

    monkeypatch.setattr(ev, "_run_chunk", limited)
    res = ev.evaluate(dirs.vectors, grid.coefficients())
    assert ev.chunk_size == 2 and sizes[:4] == [16, 8, 4, 2]
    np.testing.assert_allclose(res.loss, reference_surface(model, batches, ce_loss, dirs.vectors, grid).ravel(), rtol=1e-5)


def test_metric_matches_reference_outputs() -> None:
    model, batches = mlp(), classification_batches()
    dirs = random_directions(model, 1, seed=8)
    settings = LandscapeSettings(points_x=9, range_x=1.5, chunk_size=4)
    ls = compute_landscape(model, batches, ce_loss, settings, directions=dirs, metric_fn=accuracy, progress=False)
    theta = flat_params(model)
    for a, got in zip(ls.x, ls.metric):
        outs = reference_outputs(model, batches, theta + a * dirs.vectors[0])
        assert got == pytest.approx(accuracy(outs, batches))
    assert len(set(ls.metric.tolist())) > 1  # the metric actually changes along the line


def test_tiny_attention_block_batches_and_matches_loop() -> None:
    torch.manual_seed(4)
    model = TinyAttention()
    g = torch.Generator().manual_seed(9)
    batches = [(torch.randn(n, 5, 8, generator=g), torch.randint(0, 2, (n,), generator=g)) for n in (6, 4)]
    model.train()  # dropout must be off during evaluation anyway
    settings = LandscapeSettings(dims=2, points_x=5, points_y=3, include_1d=True)
    dirs = random_directions(model, 2, seed=2, include_1d=True)
    ev = LandscapeEvaluator(model, batches, ce_loss, chunk_size=6)  # a fixed size: no tuning, vmap proper
    res = ev.evaluate(dirs.vectors, settings.grid().coefficients())
    assert ev.mode == "vmap"
    ref = reference_surface(model, batches, ce_loss, dirs.vectors, settings.grid())
    np.testing.assert_allclose(res.loss.reshape(ref.shape), ref, rtol=1e-5)


def test_torch_transformer_layer_matches_loop_either_way() -> None:
    torch.manual_seed(5)
    layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, batch_first=True)
    model = nn.Sequential(layer, nn.Flatten(), nn.Linear(8 * 4, 2))
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(5, 4, 8, generator=g), torch.randint(0, 2, (5,), generator=g))]
    dirs = random_directions(model, 1, seed=3)
    grid = LandscapeSettings(points_x=5).grid()
    ev = LandscapeEvaluator(model, batches, ce_loss)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a fallback (or torch's slow batching rule) is allowed here
        res = ev.evaluate(dirs.vectors, grid.coefficients())
    ref = reference_surface(model, batches, ce_loss, dirs.vectors, grid)
    np.testing.assert_allclose(res.loss, ref.ravel(), rtol=1e-5)


def test_custom_forward_and_batch_weights() -> None:
    model, batches = mlp(), classification_batches()
    dict_batches = [{"x": x, "y": y} for x, y in batches]
    fwd = lambda m, b: m(b["x"])  # noqa: E731
    loss = lambda out, b: nn.functional.cross_entropy(out, b["y"])  # noqa: E731
    dirs = random_directions(model, 1, seed=4)
    weights = [1.0, 1.0, 2.0]
    ev = LandscapeEvaluator(model, dict_batches, loss, forward=fwd, batch_weights=weights)
    res = ev.evaluate(dirs.vectors, np.array([[0.0], [0.3]]))
    theta = flat_params(model)
    for a, got in zip((0.0, 0.3), res.loss):
        want = reference_loss(model, batches, ce_loss, theta + a * dirs.vectors[0], weights=weights)
        assert got == pytest.approx(want, rel=1e-6)


def test_interpolation_hits_both_parameter_sets() -> None:
    a, b = mlp(), mlp()
    batches = classification_batches()
    d = interpolation_direction(a, b)
    settings = LandscapeSettings(points_x=9, range_x=(-0.5, 1.5))
    ls = compute_landscape(a, batches, ce_loss, settings, directions=d, progress=False)
    assert ls.x[2] == 0.0 and ls.x[6] == 1.0
    assert ls.loss[2] == pytest.approx(reference_loss(a, batches, ce_loss, flat_params(a)), rel=1e-6)
    assert ls.loss[6] == pytest.approx(reference_loss(b, batches, ce_loss, flat_params(b)), rel=1e-5)


def test_user_errors_are_gradscope_errors() -> None:
    model, batches = mlp(), classification_batches()
    with pytest.raises(GradscopeError, match="empty"):
        LandscapeEvaluator(model, [], ce_loss)
    bad_loss = lambda out, b: nn.functional.cross_entropy(out, b[1], reduction="none")  # noqa: E731
    for mode in ("loop", "auto"):
        ev = LandscapeEvaluator(model, batches, bad_loss, mode=mode)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "falling back to a loop" warning for a user mistake
            with pytest.raises(GradscopeError, match="0-d"):
                ev.evaluate(random_directions(model, 1).vectors, np.zeros((1, 1)))
    with pytest.raises(GradscopeError, match="shape"):
        compute_landscape(mlp(hidden=8), batches, ce_loss, directions=random_directions(model, 1), progress=False)


def test_chunk_tuner_times_every_candidate_and_keeps_the_fastest() -> None:
    from gradscope.landscape.evaluate import _ChunkTuner

    tuner = _ChunkTuner(48)
    assert tuner.sizes == [1, 1, 4, 16, 48]  # a warm-up point first, then the candidates
    seconds = {1: 1.0, 4: 8.0, 16: 2.0, 48: 12.0}  # points/s: 1, 0.5, 8, 4 — not monotone
    tried = []
    while tuner.active:
        size = tuner.next_size()
        tried.append(size)
        tuner.record(size, seconds[size])
    assert tried == [1, 1, 4, 16, 48] and tuner.best == 16
    assert _ChunkTuner(64).sizes == [1, 1, 4, 16, 64] and _ChunkTuner(1).sizes == [1, 1]
    capped = _ChunkTuner(64)
    capped.record(1, 1.0)
    capped.record(1, 1.0)
    capped.record(4, 1.0)
    capped.limit(8)  # out of memory at 16 points
    assert not capped.active and capped.best == 4 and capped.sizes == [1, 1, 4]


def test_chunk_tuner_ignores_the_slow_first_call() -> None:
    """A cold first call must not make batching look better than plain per-point calls."""
    from gradscope.landscape.evaluate import _ChunkTuner

    tuner = _ChunkTuner(4)
    for size, seconds in [(1, 10.0), (1, 1.0), (4, 5.0)]:  # warm-up, then 1 pt/s vs 0.8 pt/s
        assert tuner.next_size() == size
        tuner.record(size, seconds)
    assert not tuner.active and tuner.best == 1


def test_auto_chunk_size_is_tuned_across_calls_and_results_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    import gradscope.landscape.evaluate as evaluate_module

    clock = iter(np.arange(0.0, 1e6, 0.5))  # every chunk "takes" 0.5 s: bigger chunks are faster
    monkeypatch.setattr(evaluate_module.time, "perf_counter", lambda: float(next(clock)))
    model, batches = mlp(), classification_batches()
    dirs = random_directions(model, 2, seed=6)
    grid = LandscapeSettings(dims=2, points_x=9).grid()
    ev = LandscapeEvaluator(model, batches, ce_loss, max_chunk_size=16)
    first = ev.evaluate(dirs.vectors, grid.coefficients()[:6])  # warm-up 1, then sizes 1 and 4 tried
    assert ev._tuner is not None and ev._tuner.i == 3 and ev._tuner.active
    rest = ev.evaluate(dirs.vectors, grid.coefficients()[6:])  # tuning goes on: 16
    assert not ev._tuner.active and ev.chunk_size == 16 and ev.mode == "vmap"
    loss = np.concatenate([first.loss, rest.loss])
    np.testing.assert_allclose(loss, reference_surface(model, batches, ce_loss, dirs.vectors, grid).ravel(), rtol=1e-5)


def test_tuner_switches_to_a_loop_when_single_points_are_fastest(monkeypatch: pytest.MonkeyPatch) -> None:
    import gradscope.landscape.evaluate as evaluate_module

    # warm-up (untimed: 50 s), then 1, 0.2, 0.4 pt/s
    ticks = iter([0.0, 50.0, 60.0, 61.0, 70.0, 90.0, 100.0, 120.0] + list(np.arange(200.0, 1e6, 1.0)))
    monkeypatch.setattr(evaluate_module.time, "perf_counter", lambda: float(next(ticks)))
    model, batches = mlp(), classification_batches()
    dirs = random_directions(model, 1, seed=2)
    grid = LandscapeSettings(points_x=15).grid()
    ev = LandscapeEvaluator(model, batches, ce_loss, max_chunk_size=8)
    res = ev.evaluate(dirs.vectors, grid.coefficients())
    assert ev.mode == "loop" and ev.chunk_size == 8
    np.testing.assert_allclose(res.loss, reference_surface(model, batches, ce_loss, dirs.vectors, grid).ravel(), rtol=1e-5)


def test_progress_in_a_log_is_lines_not_a_bar(caplog) -> None:
    """Where stderr is not a terminal (a log file, a batch job) the grid's progress is plain lines
    with the count and rate, ending with the total (through the ``gradscope`` logger when logging
    is set up, as under pytest); nothing when progress is off."""
    import logging

    model, batches = mlp(), classification_batches()
    dirs = random_directions(model, 1, seed=2)
    coefficients = np.linspace(-1, 1, 5)[:, None]
    ev = LandscapeEvaluator(model, batches, ce_loss, mode="loop", chunk_size=1)
    with caplog.at_level(logging.INFO, logger="gradscope"):
        ev.evaluate(dirs.vectors, coefficients, progress=True, desc="landscape adam")
        lines = [r.getMessage() for r in caplog.records if r.name == "gradscope"]
        assert lines[0].startswith("landscape adam: 1/5 points (20 %)")
        assert lines[-1].startswith("landscape adam: 5 points in ")
        caplog.clear()
        ev.evaluate(dirs.vectors, coefficients, progress=False)
        assert not [r for r in caplog.records if r.name == "gradscope"]

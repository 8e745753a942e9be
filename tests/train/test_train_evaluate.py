"""evaluate(): batched, padded, on-device sums against one-molecule-at-a-time references."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gradscope.models import capture_attention
from gradscope.train.build import build_data, build_model_for
from gradscope.train.config import RecordConfig
from gradscope.train.evaluate import evaluate


@pytest.fixture
def setup(regression_csv):
    config = RecordConfig(data=str(regression_csv), model="tiny", split_sizes=(0.5, 0.25, 0.25))
    data = build_data(config, progress=False)
    torch.manual_seed(3)
    model = build_model_for(config, data.dataset)
    return data, model


def test_loss_metric_and_entropy_match_per_molecule_references(setup):
    data, model = setup
    idx = data.split["val"]
    result = evaluate(model, data.batches("val", 4), task="regression", metric="rmse", device=torch.device("cpu"),
                      standardizer=data.standardizer, entropy=True)
    assert model.training  # mode restored
    assert result.n == len(idx)

    mean, std = data.standardizer.mean[0], data.standardizer.std[0]
    sq_std, sq_orig, ent_sum, atoms = [], [], None, 0
    model.eval()
    with torch.no_grad():
        for i in idx:  # one molecule per batch: no padding at all
            g = data.dataset[int(i)]
            batch = data.dataset.batch([int(i)], standardizer=data.standardizer)
            with capture_attention(model) as cap:
                out = float(model(batch)[0, 0])
            target = float(g.y[0])
            sq_std.append((out - (target - mean) / std) ** 2)
            sq_orig.append((out * std + mean - target) ** 2)
            probs = torch.stack([p[0].double() for p in cap])  # [layers, H, n, n]
            rows = -(probs * probs.clamp_min(1e-300).log()).sum(-1)  # [layers, H, n]
            ent_sum = rows.sum(-1) if ent_sum is None else ent_sum + rows.sum(-1)
            atoms += probs.shape[-1]
    model.train()
    assert result.loss == pytest.approx(np.mean(sq_std), rel=1e-5)
    assert result.metric == pytest.approx(math.sqrt(np.mean(sq_orig)), rel=1e-5)
    per_head = (ent_sum / atoms).numpy()
    np.testing.assert_allclose(result.entropy_layer_head, per_head, rtol=1e-5)
    assert result.entropy == pytest.approx(per_head.mean(), rel=1e-5)


def test_batch_size_does_not_change_the_result(setup):
    data, model = setup
    kw = dict(task="regression", metric="rmse", device=torch.device("cpu"), standardizer=data.standardizer, entropy=True)
    a = evaluate(model, data.batches("test", 1), **kw)
    b = evaluate(model, data.batches("test", 128), **kw)
    assert a.loss == pytest.approx(b.loss, rel=1e-5) and a.metric == pytest.approx(b.metric, rel=1e-5)
    np.testing.assert_allclose(a.entropy_layer_head, b.entropy_layer_head, rtol=1e-5)
    packed = data.eval_batches("test")  # what training evaluates: size-packed, another grouping
    assert sorted(int(i) for b_ in packed for i in b_.index) == sorted(int(i) for i in data.split["test"])
    c = evaluate(model, packed, **kw)
    assert a.loss == pytest.approx(c.loss, rel=1e-5) and a.metric == pytest.approx(c.metric, rel=1e-5)
    np.testing.assert_allclose(a.entropy_layer_head, c.entropy_layer_head, rtol=1e-5)


def test_no_batches_gives_nan(setup):
    _, model = setup
    r = evaluate(model, [], task="regression", metric="rmse", device=torch.device("cpu"))
    assert r.n == 0 and math.isnan(r.loss) and math.isnan(r.metric)

"""chemprop v2 MPNNs trained with gradscope optimizers: recorded, checked against chemprop's own training,
and evaluated on gradscope's loss landscapes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("chemprop")
L = pytest.importorskip("lightning.pytorch")

import gradscope  # noqa: E402
from chemprop import data as cdata  # noqa: E402
from chemprop import featurizers as cf  # noqa: E402
from chemprop import models as cmodels  # noqa: E402
from gradscope.integrations import chemprop as gc  # noqa: E402
from gradscope.integrations.lightning import GradscopeCallback  # noqa: E402

CSV = Path(__file__).parent / "data" / "esol_small.csv"


def _loader(shuffle: bool = False, batch_size: int = 16):
    points, skipped = gc.read_csv(CSV, "smiles", ["logSolubility"])
    assert len(points) == 40 and not skipped
    ds = cdata.MoleculeDataset(points, cf.SimpleMoleculeMolGraphFeaturizer())
    scaler = ds.normalize_targets()
    return cdata.build_dataloader(ds, batch_size=batch_size, shuffle=shuffle, seed=0), scaler


def _mpnn(optimizer: str, scaler, seed: int = 0) -> gc.SharpnessAwareMPNN:
    torch.manual_seed(seed)
    return gc.default_mpnn(1, hidden=16, depth=2, scaler=scaler, optimizer=optimizer, warmup_epochs=1)


def _fit(model, loader, epochs: int = 2, callbacks=()) -> None:
    L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
              enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
              callbacks=list(callbacks)).fit(model, loader)


def test_graphsam_mpnn_is_recorded_and_says_entropy_does_not_apply(tmp_path) -> None:
    loader, scaler = _loader()
    path = tmp_path / "trace.h5"
    _fit(_mpnn("graphsam", scaler), loader, callbacks=[GradscopeCallback(path, **gc.MPNN_TRACE)])
    trace = gradscope.open_trace(path)
    steps = trace.steps
    assert len(trace) == 6 and list(steps.anchored) == [1, 0, 0, 1, 0, 0]
    assert list(steps.batch_size) == [16, 16, 8] * 2  # molecules, not atoms
    assert np.isfinite(steps.eps_norm).all() and np.isfinite(steps.omega_norm).all()
    assert trace.optimizer == "GraphSAM" and list(trace.epochs["rho"]) == [0.05, 0.025]
    assert "attention_entropy" not in trace.epochs  # no NaN column left behind ...
    assert "no attention" in trace.config["not_recorded"]["attention_entropy"]  # ... the reason instead
    assert np.isfinite(trace.epochs["train_loss"]).all()


def test_adam_adapter_trains_exactly_as_chemprop() -> None:
    """SharpnessAwareMPNN(optimizer="adam") through the mixin = chemprop's own MPNN (Adam + Noam, automatic)."""
    loader, scaler = _loader()
    ours = _mpnn("adam", scaler)
    torch.manual_seed(0)
    theirs = cmodels.MPNN(ours.message_passing.__class__(d_h=16, depth=2), ours.agg.__class__(),
                          ours.predictor.__class__(n_tasks=1, input_dim=16, hidden_dim=16,
                                                   output_transform=ours.predictor.output_transform),
                          warmup_epochs=1)
    theirs.load_state_dict(ours.state_dict())
    _fit(ours, loader)
    _fit(theirs, loader)
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    assert not torch.equal(ours.state_dict()["predictor.ffn.0.0.weight"], _mpnn("adam", scaler).state_dict()["predictor.ffn.0.0.weight"])


def test_landscape_centre_is_the_models_loss(tmp_path) -> None:
    from gradscope.landscape import LandscapeSettings

    loader, scaler = _loader()
    model = _mpnn("sam", scaler)
    _fit(model, loader, epochs=1)
    path = gc.save_mpnn(tmp_path / "model.pt", model)
    loaded = gc.load_mpnn(path)
    assert isinstance(loaded, cmodels.MPNN) and not isinstance(loaded, gc.SharpnessAwareMPNN)
    ls = gc.compute_mpnn_landscape(loaded, loader, LandscapeSettings(dims=1, points_x=5, range_x=0.5, mode="loop"),
                                   progress=False)
    # the reference: chemprop's criterion over the whole set, one pass, no landscape code
    batch = next(iter(cdata.build_dataloader(loader.dataset, batch_size=len(loader.dataset), shuffle=False)))
    with torch.no_grad():
        bmg, V_d, X_d, y, w, lt, gt = batch
        preds = loaded.predictor.train_step(loaded.fingerprint(bmg, V_d, X_d))
        metric = loaded.criterion.clone()
        metric.update(preds, y, y.isfinite(), w, lt, gt)
        plain = float(metric.compute())
    assert ls.x[2] == 0 and ls.loss[2] == pytest.approx(plain, rel=1e-5)
    assert np.isfinite(ls.loss).all() and ls.loss.max() > plain  # a real curve, not a constant


@pytest.mark.slow
def test_command_line_train_then_landscape(tmp_path, capsys) -> None:
    from gradscope.integrations.chemprop_cli import main

    out = tmp_path / "run"
    assert main(["train", "--data", str(CSV), "--targets", "logSolubility", "--optimizer", "sam", "--epochs", "2",
                 "--batch-size", "16", "--hidden", "16", "--depth", "2", "--out", str(out)]) == 0
    trace = gradscope.open_trace(out / "trace.h5")
    assert trace.optimizer == "SAM" and len(trace) == 4 and trace.config["optimizer"] == "sam"
    assert main(["landscape", str(out), "--points", "5"]) == 0
    assert "centre loss" in capsys.readouterr().out
    assert (out / "landscape" / "chemprop_1d.h5").is_file()
    assert main(["train", "--data", str(CSV), "--targets", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "no column 'nope'" in capsys.readouterr().err

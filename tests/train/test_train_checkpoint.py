"""Checkpoints: atomic, weights_only-loadable, clear errors; RNG state round trip; the typed
Checkpoint reads the checkpoints of older versions."""
from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from gradscope.errors import GradscopeError
from gradscope.train.checkpoint import (Checkpoint, find_checkpoint, load_checkpoint, rng_state, save_checkpoint,
                                        set_rng_state)
from gradscope.train.state import BestEpoch, EpochSums


def test_round_trip_with_weights_only(tmp_path):
    payload = {"model_state": {"w": torch.randn(3, 2)}, "epoch": 2, "history": [{"a": 1.0}], "rng": rng_state()}
    path = save_checkpoint(tmp_path / "ck" / "last.pt", payload)
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary left behind
    data = torch.load(path, weights_only=True)
    assert data["format"] == "gradscope.checkpoint" and data["version"] == 1
    assert torch.equal(data["model_state"]["w"], payload["model_state"]["w"])
    assert load_checkpoint(path)["history"] == [{"a": 1.0}]


def test_rng_state_round_trip():
    state = rng_state()
    first = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    set_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1]) and first[2] == again[2]


def test_rng_state_survives_a_weights_only_file(tmp_path):
    save_checkpoint(tmp_path / "r.pt", {"rng": rng_state()})
    first = (torch.rand(2), np.random.rand(2), random.random())
    set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    again = (torch.rand(2), np.random.rand(2), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1]) and first[2] == again[2]


def test_load_errors(tmp_path):
    with pytest.raises(GradscopeError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00junk")
    with pytest.raises(GradscopeError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"w": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(GradscopeError, match="not a gradscope checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    torch.save({"format": "gradscope.checkpoint", "version": 99}, tmp_path / "new.pt")
    with pytest.raises(GradscopeError, match="upgrade gradscope"):
        load_checkpoint(tmp_path / "new.pt")


class _Foreign:
    """An object only a pickle can hold (gradscope checkpoints never contain one)."""


def _cases(tmp_path: Path) -> dict[str, str]:
    """Damaged and foreign files → the words their one-line error must contain."""
    good = save_checkpoint(tmp_path / "good.pt", {"model_state": {"w": torch.randn(50, 50)}}).read_bytes()
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "cut.pt").write_bytes(good[:3000])
    (tmp_path / "half.pt").write_bytes(good[: len(good) // 2])
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(5000))
    (tmp_path / "text.pt").write_text("smiles,y\nCCO,1\n")
    torch.save({"object": _Foreign()}, tmp_path / "pickled.pt")
    with open(tmp_path / "legacy.pt", "wb") as fh:
        torch.save({"w": torch.ones(100)}, fh, _use_new_zipfile_serialization=False)
    (tmp_path / "legacy-cut.pt").write_bytes((tmp_path / "legacy.pt").read_bytes()[:100])
    return {"empty": "the file is empty", "cut": "cut short or damaged", "half": "cut short or damaged",
            "random": "not a PyTorch checkpoint", "text": "not a PyTorch checkpoint",
            "pickled": "not a gradscope checkpoint (written by another tool?)", "legacy-cut": "cut short or damaged"}


def test_damaged_and_foreign_files_name_the_file_and_the_problem(tmp_path, recwarn):
    """Before: "OSError: [Errno 22]", a blank "EOFError: ", and a hint to load with weights_only=False."""
    for name, problem in _cases(tmp_path).items():
        path = tmp_path / f"{name}.pt"
        with pytest.raises(GradscopeError) as info:
            load_checkpoint(path)
        message = str(info.value)
        assert message.startswith(f"cannot read checkpoint {path}: ") and problem in message, message
        assert "\n" not in message and "weights_only" not in message and "Errno" not in message
    assert not [w for w in recwarn if "pickle" in str(w.message)]  # torch's warnings about the file stay quiet


class _FullDisk:
    """A binary file with room for ``room`` bytes; then writes fail as on a full disk."""

    def __init__(self, path, mode, room):
        self.fh, self.room = open(path, mode), room

    def write(self, data):
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.fh.write(data)

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()


@pytest.mark.parametrize("room", [0, 1000, 100_000])
def test_a_failed_write_leaves_the_old_checkpoint_and_no_temporary_file(tmp_path, monkeypatch, room):
    import gradscope.train.checkpoint as checkpoint

    path = save_checkpoint(tmp_path / "last.pt", {"model_state": {"w": torch.zeros(3)}})
    monkeypatch.setattr(checkpoint, "open", lambda p, mode="r": _FullDisk(p, mode, room), raising=False)
    with pytest.raises(GradscopeError, match=rf"cannot write checkpoint {path}: No space left on device"):
        save_checkpoint(path, {"model_state": {"w": torch.ones(200, 200)}})
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    assert torch.equal(load_checkpoint(path)["model_state"]["w"], torch.zeros(3))


def test_find_checkpoint(tmp_path):
    ck = tmp_path / "run" / "checkpoints"
    save_checkpoint(ck / "last.pt", {})
    assert find_checkpoint(tmp_path / "run") == ck / "last.pt"  # no best.pt: falls back to last
    save_checkpoint(ck / "best.pt", {})
    assert find_checkpoint(tmp_path / "run") == ck / "best.pt"
    assert find_checkpoint(tmp_path / "run", "last") == ck / "last.pt"
    assert find_checkpoint(ck / "last.pt") == ck / "last.pt"
    with pytest.raises(GradscopeError, match="no such run"):
        find_checkpoint(tmp_path / "elsewhere")
    (tmp_path / "emptyrun").mkdir()
    with pytest.raises(GradscopeError, match="no checkpoint"):
        find_checkpoint(tmp_path / "emptyrun")


# -- the typed checkpoint, and checkpoints written before it ------------------------------------------
OLD_RUN = Path(__file__).resolve().parents[1] / "data" / "old-run"
#: The keys of every checkpoint `gradscope record` has written (version 1).
KEYS = {"format", "version", "config", "model_config", "model_state", "dataset", "dataset_sha256", "split",
        "standardizer", "optimizer_state", "rho_schedule_state", "lr_schedule_state", "epoch", "batch", "step",
        "partial", "best", "history", "rng", "gradscope_version", "torch_version"}


def test_a_checkpoint_of_the_code_before_the_registry_reads_typed():
    """tests/data/old-run was written by gradscope 0.1 (commit 7baee09): a `sam-one` run stopped after step 12."""
    old = torch.load(OLD_RUN / "checkpoints" / "last.pt", weights_only=True)
    assert set(old) == KEYS and "rho" in old["config"] and "extra" in old["config"]  # the flat layout
    ckpt = Checkpoint.read(OLD_RUN / "checkpoints" / "last.pt")
    assert ckpt.config.optimizer == "sam-one-epoch"  # what `sam-one` meant then: an anchor every epoch
    assert ckpt.config.optimizer_settings.rho == 0.05 and ckpt.config.rho_schedule.gamma == 0.5
    s = ckpt.state
    assert (s.epoch, s.batch, s.step) == (1, 4, 12) and len(s.history) == 1
    assert s.sums == EpochSums(**old["partial"]) and s.best == BestEpoch(**old["best"])
    again = ckpt.to_dict()
    assert set(again) | {"format", "version"} == KEYS | {"scaler_state"}  # scaler_state: added with fp16 runs
    for key in ("epoch", "batch", "step", "partial", "best", "history", "dataset", "standardizer"):
        assert again[key] == old[key], key


def test_checkpoint_round_trip_through_a_weights_only_file(tmp_path):
    ckpt = Checkpoint.read(OLD_RUN / "checkpoints" / "last.pt")
    ckpt.state.best.update(1, 0.5, higher_is_better=False)
    path = ckpt.save(tmp_path / "again.pt")
    back = Checkpoint.read(path)
    assert back.config == ckpt.config and back.state == ckpt.state
    assert torch.load(path, weights_only=True)["config"] == ckpt.config.to_dict()
    assert all(torch.equal(back.model_state[k], v) for k, v in ckpt.model_state.items())


def test_a_checkpoint_without_a_run_is_refused_in_one_line(tmp_path):
    save_checkpoint(tmp_path / "bare.pt", {"model_state": {}})
    with pytest.raises(GradscopeError, match=r"bare.pt lacks 'config'; was it written by gradscope record\?"):
        Checkpoint.read(tmp_path / "bare.pt")


def test_best_epoch_rule():
    """Lower is better for RMSE: NaN never beats a number and is not a bad epoch."""
    best = BestEpoch()
    assert best.update(0, float("nan"), higher_is_better=False) and best.epoch == 0
    assert best.update(1, 2.0, higher_is_better=False) and (best.epoch, best.bad_epochs) == (1, 0)
    assert not best.update(2, float("nan"), higher_is_better=False) and best.bad_epochs == 0
    assert not best.update(3, 2.5, higher_is_better=False) and best.bad_epochs == 1
    assert best.update(4, 1.5, higher_is_better=False) and (best.epoch, best.value, best.bad_epochs) == (4, 1.5, 0)
    assert not BestEpoch(0, 0.8).update(1, 0.7, higher_is_better=True)

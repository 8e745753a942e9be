"""`--model` reads the model registry, `--recipe compt-paper` fills the released settings, old runs keep their model."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gradscope.cli import build_parser, main
from gradscope.cli.record import config_from_args
from gradscope.errors import GradscopeError
from gradscope.models.recipes import recipe
from gradscope.train.build import load_run
from gradscope.train.config import RecordConfig
from gradscope.trace import open_trace
from kit.data import record_args


def _config(*flags: str) -> RecordConfig:
    return config_from_args(build_parser().parse_args(["record", *flags]))


def test_recipe_fills_what_was_not_given_and_the_peak_lr_follows_the_released_formula(moleculenet_dir: Path) -> None:
    bbbp = str(moleculenet_dir / "bbbp.csv")
    config = _config("--dataset", "bbbp", "--data", bbbp, "--recipe", "compt-paper", "--optimizer", "adam")
    r = recipe("compt-paper", "bbbp")
    n_train = int(0.8 * 67)  # the excerpt's 67 usable molecules, random 0.8/0.1/0.1 split
    w = (n_train // 32) * 30  # released: int(n_train / batch) steps per epoch × 30 warm-up epochs
    assert config.lr == pytest.approx(0.2 / math.sqrt(256 * w))  # factor / √(d_model · w)
    assert (config.model, config.epochs, config.batch_size, config.lr_schedule, config.warmup_epochs,
            config.early_stopping, config.weight_decay) == ("compt", 150, 32, "noam", 30.0, 21, 0.0)
    assert r.peak_lr(n_train // 32) == config.lr
    given = _config("--dataset", "bbbp", "--data", bbbp, "--recipe", "compt-paper", "--epochs", "3", "--lr", "0.01",
                    "--model", "compt-tiny")
    assert (given.epochs, given.lr, given.model, given.batch_size) == (3, 0.01, "compt-tiny", 32)
    with pytest.raises(GradscopeError, match="--recipe compt-paper is per dataset"):
        _config("--data", bbbp, "--recipe", "compt-paper")


def test_compt_tiny_records_and_its_checkpoint_rebuilds(regression_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(record_args(regression_csv, out, "--model", "compt-tiny", "--optimizer", "graphsam", "--quiet")) == 0
    trace = open_trace(out / "trace.h5")
    assert trace.config["model"] == "compt-tiny" and len(trace) == 6
    assert trace.epochs["attention_entropy"].shape == (2,) and not math.isnan(trace.epochs["attention_entropy"][-1])
    run = load_run(out)
    assert run.model_config.architecture == "compt" and type(run.model).__name__ == "CoMPT"


def test_configs_of_older_versions_read_compt_as_the_graph_transformer_preset() -> None:
    old = json.loads((Path(__file__).resolve().parents[1] / "data" / "old-run" / "config.json").read_text())
    assert RecordConfig.from_dict({**old, "model": "compt"}).model == "gt-large"
    assert RecordConfig.from_dict(RecordConfig(model="compt").to_dict()).model == "compt"


@pytest.mark.parametrize("model", ["tiny", "compt-tiny"])
def test_pack_atoms_records_the_trace_of_the_padded_run(regression_csv: Path, tmp_path: Path, model: str) -> None:
    """--pack-atoms: the model's per-atom layers on real atoms only; the run's losses, ‖ε‖ and ‖ω‖
    are those of the padded run to float rounding, and the checkpoint keeps the switch."""
    runs = {}
    for packed in (False, True):
        out = tmp_path / f"run-{packed}"
        flags = ("--pack-atoms",) if packed else ()
        assert main(record_args(regression_csv, out, "--model", model, "--optimizer", "sam", "--quiet", *flags)) == 0
        runs[packed] = open_trace(out / "trace.h5")
        assert load_run(out).model_config.pack_atoms is packed
        assert runs[packed].config["pack_atoms"] is packed
    for column in ("loss", "eps_norm", "omega_norm"):
        dense, packed = runs[False].steps[column], runs[True].steps[column]
        assert dense.shape == packed.shape and len(dense) == 6
        assert max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(dense, packed)) < 1e-4, column

"""Adding a method touches one file: a toy method declared in tests/train/toy_method.py trains through
``gradscope.train.record`` and the CLI, shows its flag in ``--help`` and resumes from its checkpoint."""
from __future__ import annotations

import json

import numpy as np
import pytest

import gradscope.train
import toy_method
from gradscope.cli import main
from gradscope.optim import display_name, register
from gradscope.optim.registry import unregister
from gradscope.trace import open_trace
from gradscope.train import RecordConfig
from kit.data import record_args

NAME = toy_method.METHOD.name


@pytest.fixture
def toy():
    register(toy_method.METHOD)
    yield toy_method.METHOD
    unregister(NAME)


def test_a_method_in_one_file_trains_through_record(toy, regression_csv, tmp_path):
    config = RecordConfig(data=str(regression_csv), model="tiny", epochs=2, batch_size=8, device="cpu",
                          optimizer=NAME, optimizer_settings={"period": 3})
    result = gradscope.train.record(config, tmp_path / "run", quiet=True)
    assert result.steps == 6 and not result.interrupted
    s = open_trace(tmp_path / "run" / "trace.h5").steps
    # SAM at steps 0 and 3 (two passes, exact ε), plain steps otherwise; ρ halves every epoch
    np.testing.assert_array_equal(s.grad_evals, [2, 1, 1, 2, 1, 1])
    np.testing.assert_array_equal(s.anchored, [1, 0, 0, 1, 0, 0])
    np.testing.assert_allclose(s.rho, [0.05] * 3 + [0.025] * 3)
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert stored["optimizer"] == NAME and stored["optimizer_settings"] == {"rho": 0.05, "period": 3}
    run = gradscope.train.load_run(tmp_path / "run")  # and the checkpoint rebuilds the run
    assert run.config == config and display_name(NAME) == "Periodic SAM (toy)"


def test_the_cli_shows_takes_and_resumes_it(toy, regression_csv, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["record", "--help"])
    help_text = capsys.readouterr().out
    assert NAME in help_text and "--period PERIOD" in help_text and "[toy-periodic-sam; default 2]" in help_text
    out = tmp_path / "run"
    assert main(record_args(regression_csv, out, "--optimizer", NAME, "--period", "2", "--quiet", epochs=1)) == 0
    assert main(["record", "--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    np.testing.assert_array_equal(open_trace(out / "trace.h5").steps.grad_evals, [2, 1, 2, 1, 2, 1])
    capsys.readouterr()
    assert main(record_args(regression_csv, tmp_path / "x", "--optimizer", "sam", "--period", "2")) == 2
    assert "--period does not apply to optimizer 'sam' (it is for: toy-periodic-sam)" in capsys.readouterr().err

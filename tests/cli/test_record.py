"""`gradscope record` as users call it: user errors, the no-argument demo run, the output.

Every user mistake must end with exit status 2 and one line ``gradscope: error: ...`` on
stderr, no traceback, and must leave the output directory as it was. Most cases run in
process (fast); a few run the real command in a subprocess.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gradscope.cli import main
from kit.data import record_args, write_regression_csv

REPO = Path(__file__).resolve().parents[2]






@pytest.fixture
def csv_file(moleculenet_dir, tmp_path) -> Path:
    return write_regression_csv(moleculenet_dir, tmp_path / "mols.csv", 24)


def args_for(data: Path, out: Path, *extra: str) -> list[str]:
    return record_args(data, out, *extra, "--quiet")


def assert_user_error(capsys, argv: list[str], *fragments: str) -> str:
    """Run in process; exit 2, one error line containing ``fragments``, nothing else printed."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("gradscope: error: ")
    assert "Traceback" not in captured.err and captured.out == ""
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def run_cli(*argv: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "gradscope", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


# ------------------------------------------------------------------------------ data errors
def test_missing_file(capsys, tmp_path):
    assert_user_error(capsys, args_for(tmp_path / "nope.csv", tmp_path / "out"), "nope.csv")
    assert not (tmp_path / "out").exists()  # nothing created for a failed start


def test_binary_file_is_unreadable(capsys, tmp_path):
    data = tmp_path / "garbage.csv"
    data.write_bytes(bytes(range(256)) * 8)
    assert_user_error(capsys, args_for(data, tmp_path / "out"), "garbage.csv")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_file_without_read_permission(capsys, csv_file, tmp_path):
    csv_file.chmod(0)
    try:
        assert_user_error(capsys, args_for(csv_file, tmp_path / "out"), "mols.csv")
    finally:
        csv_file.chmod(0o644)


def test_unknown_smiles_column(capsys, csv_file, tmp_path):
    assert_user_error(capsys, args_for(csv_file, tmp_path / "out", "--smiles-column", "SMILEZ"), "SMILEZ")


def test_unknown_target_column(capsys, csv_file, tmp_path):
    assert_user_error(capsys, args_for(csv_file, tmp_path / "out", "--targets", "logS,nothere"), "nothere")


def test_unknown_dataset(capsys, tmp_path):
    assert_user_error(capsys, ["record", "--dataset", "bbbq", "--out", str(tmp_path / "out")], "bbbq")


def test_file_without_a_valid_molecule(capsys, tmp_path):
    data = tmp_path / "bad.csv"
    data.write_text("smiles,y\nnot-a-molecule,1.0\nC1CC,2.0\nXx,3.0\n")
    assert_user_error(capsys, args_for(data, tmp_path / "out", "--targets", "y"), "no usable molecule")


def test_too_small_for_a_split(capsys, tmp_path):
    data = tmp_path / "two.csv"
    data.write_text("smiles,y\nCCO,1.0\nCCN,2.0\n")
    assert_user_error(capsys, args_for(data, tmp_path / "out"))


# ------------------------------------------------------------------------ settings errors
@pytest.mark.parametrize("extra,fragment", [
    (("--optimizer", "sgd-sam"), "sgd-sam"),
    (("--optimizer", "sam", "--beta", "0.9"), "--beta does not apply to optimizer 'sam'"),
    (("--optimizer", "adam", "--rho", "0.1"), "--rho does not apply to optimizer 'adam'"),
    (("--optimizer", "graphsam", "--k", "4"), "--k does not apply to optimizer 'graphsam'"),
    (("--optimizer", "sam", "--anchor-every-epochs", "2"), "--anchor-every-epochs does not apply to optimizer 'sam'"),
    (("--optimizer", "sam", "--anchor-every", "2"), "--anchor-every-epochs does not apply"),  # the deprecated spelling
    (("--optimizer", "sam-one", "--anchor-every-epochs", "2"), "(it is for: graphsam, sam-one-epoch)"),
    (("--optimizer", "asam", "--k", "3"), "--k does not apply to optimizer 'asam' (it is for: sam-k, looksam)"),
    (("--optimizer", "rst", "--p", "1.5"), "--p must lie in [0, 1], got 1.5"),
    (("--optimizer", "ae-sam", "--delta", "1"), "--delta must lie in [0, 1)"),
    (("--optimizer", "graphsam-released", "--radius", "-1"), "--radius must be a finite number >= 0"),
    (("--optimizer", "looksam", "--alpha", "inf"), "--alpha must be a finite number"),
    (("--optimizer", "asam", "--eta", "0"), "--eta must be > 0"),
    (("--gamma", "1.5"), "--gamma must lie in (0, 1]"),
    (("--optimizer", "sam", "--normalization", "global"), "--normalization does not apply to optimizer 'sam'"),
    (("--optimizer", "adam", "--probe-exact-every", "5"), "--probe-exact-every"),
    (("--lr", "-1"), "--lr"),
    (("--lr", "nan"), "--lr"),
    (("--epochs", "0"), "--epochs"),
    (("--batch-size", "0"), "--batch-size"),
    (("--flush-every", "0"), "--flush-every"),
    (("--rho", "-0.1"), "--rho"),
    (("--beta", "1.0"), "--beta"),
    (("--gamma", "0"), "--gamma"),
    (("--optimizer", "sam-k", "--k", "0"), "--k"),
    (("--weight-decay", "-1"), "--weight-decay"),
    (("--threads", "0"), "--threads"),
    (("--device", "tpu"), "tpu"),
])
def test_bad_settings(capsys, csv_file, tmp_path, extra, fragment):
    assert_user_error(capsys, args_for(csv_file, tmp_path / "out", *extra), fragment)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_cuda(capsys, csv_file, tmp_path):
    assert_user_error(capsys, args_for(csv_file, tmp_path / "out", "--device", "cuda"), "CUDA is not available")


# --------------------------------------------------------------------- run directory errors
def test_existing_run_needs_resume_or_overwrite(capsys, csv_file, tmp_path):
    out = tmp_path / "out"
    assert main(args_for(csv_file, out, "--epochs", "1")) == 0
    capsys.readouterr()
    before = (out / "checkpoints" / "last.pt").read_bytes()
    assert_user_error(capsys, args_for(csv_file, out, "--epochs", "1"), "--resume", "--overwrite")
    # --overwrite with a bad data file fails before touching the old run
    assert_user_error(capsys, args_for(tmp_path / "missing.csv", out, "--overwrite"), "missing.csv")
    assert (out / "checkpoints" / "last.pt").read_bytes() == before
    (out / "landscape").mkdir()  # what `gradscope landscape RUN` writes by default: stale after the overwrite
    (out / "landscape" / "adam.h5").write_bytes(b"old")
    # --overwrite replaces it, the old run's landscapes included
    assert main(args_for(csv_file, out, "--overwrite", "--optimizer", "sam", "--epochs", "1")) == 0
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["config"]["optimizer"] == "sam"
    assert not (out / "landscape").exists()


def test_resume_errors(capsys, csv_file, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_user_error(capsys, ["record", "--resume", str(empty)], "nothing to resume")
    assert_user_error(capsys, ["record", "--resume", str(tmp_path / "absent")], "nothing to resume")
    out = tmp_path / "run"
    assert main(args_for(csv_file, out, "--epochs", "1")) == 0
    capsys.readouterr()
    assert_user_error(capsys, ["record", "--resume", str(out), "--lr", "0.1"], "--lr cannot change")
    assert_user_error(capsys, ["record", "--resume", str(out), "--out", str(tmp_path / "other")], "--out")
    assert_user_error(capsys, ["record", "--resume", str(out), "--overwrite"], "--overwrite")
    assert_user_error(capsys, ["record", "--resume", str(out), "--epochs", "0"], "--epochs")
    (out / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    assert_user_error(capsys, ["record", "--resume", str(out)], "last.pt")


def test_debug_shows_the_traceback(csv_file, tmp_path):
    from gradscope.errors import GradscopeError

    with pytest.raises(GradscopeError, match="--beta"):
        main(args_for(csv_file, tmp_path / "out", "--optimizer", "sam", "--beta", "0.5", "--debug"))


# ------------------------------------------------------------------------------ subprocesses
def test_errors_from_the_real_command(csv_file, tmp_path):
    for argv, fragment in [
        (("record", "--data", str(tmp_path / "absent.csv"), "--out", "o"), "absent.csv"),
        (("record", "--data", str(csv_file), "--optimizer", "adamw-sam", "--out", "o"), "adamw-sam"),
    ]:
        proc = run_cli(*argv, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("gradscope: error: "), proc.stderr
        assert fragment in proc.stderr and "Traceback" not in proc.stderr


def test_help_lists_every_optimizer_and_the_next_commands():
    proc = subprocess.run([sys.executable, "-m", "gradscope", "record", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0
    for name in ("adam", "sam", "asam", "graphsam", "graphsam-released", "sam-one", "sam-one-epoch", "sam-k", "looksam",
                 "ae-sam", "rst"):
        assert f"\n  {name} " in proc.stdout  # the optimizer list, one line each
    assert "--resume" in proc.stdout and "torchrun" in proc.stdout and "gradscope plot" in proc.stdout


def test_help_gives_every_method_setting_with_its_default_and_meaning(capsys):
    """Each setting a method declares is a flag whose help names the methods, their defaults and a meaning."""
    from gradscope.optim.registry import methods

    with pytest.raises(SystemExit):
        main(["record", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for method in methods():
        for option in method.options():
            assert option.flag in text, option.flag
            default = f"{option.default:g}" if isinstance(option.default, float) else str(option.default)
            assert f"{method.name}" in text and f"default {default}" in text, (method.name, option.flag)
    assert "[asam; default 0.5]" in text  # ASAM's own ρ default
    assert "α: weight of the reused direction" in text and "[looksam; default 0.7]" in text
    assert "[rst; default 0.5]" in text and "[ae-sam; default -1]" in text and "[asam; default 0.01]" in text
    assert "[sam-k; default 8]" in text and "[looksam; default 5]" in text


def test_every_method_setting_reaches_the_config(csv_file, tmp_path):
    """The paper's LookSAM baseline (ρ = 1e-4, α = 0.2, k = 8), ASAM's η, RST's p, AE-SAM's thresholds."""
    from gradscope.cli import build_parser
    from gradscope.cli.record import config_from_args

    def config(*extra: str):
        return config_from_args(build_parser().parse_args(args_for(csv_file, tmp_path / "o", *extra)))

    looksam = config("--optimizer", "looksam", "--rho", "1e-4", "--alpha", "0.2", "--k", "8")
    assert (looksam.optimizer_settings.rho, looksam.optimizer_settings.alpha, looksam.optimizer_settings.k) == (
        1e-4, 0.2, 8)
    asam = config("--optimizer", "asam", "--eta", "0.1", "--scale-biases").optimizer_settings
    assert (asam.eta, asam.scale_biases) == (0.1, True)
    assert config("--optimizer", "looksam", "--normalization", "per-tensor").optimizer_settings.normalization == \
        "per-tensor"
    rst = config("--optimizer", "rst", "--p", "0.3", "--rst-seed", "4").optimizer_settings
    assert (rst.p, rst.seed) == (0.3, 4)
    aesam = config("--optimizer", "ae-sam", "--delta", "0.5", "--c1", "-2", "--c2", "3").optimizer_settings
    assert (aesam.delta, aesam.c1, aesam.c2) == (0.5, -2.0, 3.0)
    released = config("--optimizer", "graphsam-released", "--no-scale-grad-by-loss", "--radius", "0.2",
                      "--rho-step", "2").optimizer_settings
    assert (released.scale_grad_by_loss, released.radius, released.step_size) == (False, 0.2, 2)
    sam = config("--optimizer", "sam", "--gamma", "1", "--rho-step", "3")
    assert (sam.rho_schedule.gamma, sam.rho_schedule.step_size) == (1.0, 3)
    plain = config("--data", str(csv_file))
    assert plain.optimizer == "graphsam" and plain.epochs == 2 and plain.targets is None


def test_a_deprecated_flag_still_works_and_says_so(csv_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(args_for(csv_file, out, "--optimizer", "graphsam", "--anchor-every", "2", "--epochs", "1")) == 0
    err = capsys.readouterr().err
    assert "gradscope: warning: --anchor-every is deprecated; use --anchor-every-epochs" in err
    import json

    assert json.loads((out / "config.json").read_text())["optimizer_settings"]["anchor_every_epochs"] == 2


def test_output_of_a_run_names_its_files_and_the_next_commands(csv_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(record_args(csv_file, out, "--epochs", "1")) == 0
    captured = capsys.readouterr()
    assert f"wrote {out}/config.json, {out}/trace.h5 (3 steps)" in captured.out
    assert f"gradscope plot obs1 {out}" in captured.out and f"gradscope report {out}" in captured.out
    assert "epoch 1/1  train_loss" in captured.err  # not a terminal: plain log lines
    assert "mols: 24 molecules" in captured.err


@pytest.mark.slow
def test_no_arguments_trains_graphsam_on_the_demo(tmp_path):
    """The README's main job: `gradscope record` alone (GraphSAM, demo data, `small` model)."""
    proc = run_cli(cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = tmp_path / "runs" / "demo-graphsam"
    assert "wrote runs/demo-graphsam/config.json" in proc.stdout
    assert "gradscope plot obs1 runs/demo-graphsam" in proc.stdout
    from gradscope.trace import open_trace

    trace = open_trace(run / "trace.h5")
    assert trace.config["optimizer"] == "graphsam" and trace.config["model"] == "small"
    assert trace.config["dataset"] is None and trace.config["data"] is None  # the built-in demo
    epochs = trace.config["epochs"]
    assert trace.epochs.rows == epochs
    n_train = len(torch.load(run / "checkpoints" / "last.pt", weights_only=True)["split"]["train"])
    assert trace.steps.rows == epochs * -(-n_train // 32)
    assert (run / "checkpoints" / "best.pt").is_file()

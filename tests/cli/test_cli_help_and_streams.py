"""What a new user meets first: help for every flag, examples, flags that do not apply, one-line
warnings in every subcommand, results on stdout and progress on stderr (docs/record.md)."""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pytest

from gradscope.cli import build_parser, main


def _subparsers(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """(command path, parser) for every subcommand and sub-subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _subparsers(sub, (*prefix, name))


def test_every_flag_of_every_subcommand_has_help_and_shows_its_default():
    commands = dict(_subparsers(build_parser()))
    assert {"record", "landscape", "plot", "report", "trace", ("trace", "summary")} - {
        c if len(c) > 1 else c[0] for c in commands} == set()
    for command, parser in commands.items():
        for action in parser._actions:
            if isinstance(action, (argparse._SubParsersAction, argparse._HelpAction)) or action.help == argparse.SUPPRESS:
                continue
            name = "/".join(action.option_strings) or action.dest
            assert action.help, f"{' '.join(command)} {name} has no help"
            if action.default not in (None, False):
                assert "default" in action.help, f"{' '.join(command)} {name}: default {action.default!r} not shown"


@pytest.mark.parametrize("command", ["record", "landscape", "plot", "report", "trace"])
def test_help_has_examples(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"gradscope {command} " in out.split("examples:")[1]


# -- plot refuses flags the kind does not read --------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["entropy", "--zoom", "0:5"], "--zoom does not apply to plot entropy (it is for: obs1, norms)"),
    (["obs1", "--at", "best"], "--at does not apply to plot obs1 (it is for: entropy)"),
    (["loss", "--metric", "rmse"], "--metric does not apply to plot loss (it is for: throughput)"),
    (["obs2", "--quantity", "metric"], "--quantity does not apply to plot obs2 (it is for: landscape)"),
    (["obs1", "--molecule", "2"], "--molecule applies to plot attention only, not to plot obs1"),
    (["norms", "--checkpoint", "last"], "--checkpoint applies to plot attention only"),
    (["attention", "--zoom", "0:5"], "--zoom does not apply to plot attention"),
    (["attention", "--labels", "x"], "--labels does not apply to plot attention"),
])
def test_plot_refuses_flags_that_do_not_apply(argv, message, tiny_run, tmp_path, capsys):
    kind, *flags = argv
    out = tmp_path / "x.png"
    assert main(["plot", kind, str(tiny_run), "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not out.exists()


def test_plot_takes_the_flags_of_its_kind(tiny_run, tmp_path, capsys):
    assert main(["plot", "obs1", str(tiny_run), "--out", str(tmp_path / "o.png"), "--zoom", "0:2", "--quiet"]) == 0
    assert main(["plot", "entropy", str(tiny_run), "--out", str(tmp_path / "e.png"), "--at", "best", "--quiet"]) == 0


# -- one-line warnings and the streams, through the real command ---------------------------------------
@pytest.fixture(scope="module")
def run_with_bad_rows(tmp_path_factory, moleculenet_dir_module, cli):
    """A tiny run recorded by the real command on a CSV with an unparseable SMILES and an unlabelled
    row (both skipped, with a warning): its folder and the finished process."""
    base = tmp_path_factory.mktemp("bad_rows")
    with open(moleculenet_dir_module / "esol.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))[:24]
    data = base / "mols.csv"
    with open(data, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["smiles", "logS"])
        out.writerow(["not-a-molecule", "1.0"])
        out.writerow(["CCO", ""])
        for row in rows:
            out.writerow([row["smiles"].strip(), row["measured log solubility in mols per litre"]])
    proc = cli("record", "--data", "mols.csv", "--model", "tiny", "--epochs", "1", "--batch-size", "8",
               "--out", "run", cwd=base)
    return base, proc


@pytest.fixture(scope="module")
def moleculenet_dir_module() -> Path:
    return Path(__file__).resolve().parents[1] / "data" / "moleculenet"


def _no_python_lines(err: str) -> None:
    assert "Traceback" not in err and ".py:" not in err and "warnings.warn" not in err
    assert not [line for line in err.splitlines() if line.startswith("  ") and "=" in line]


def test_record_streams_and_the_skipped_rows(run_with_bad_rows):
    base, proc = run_with_bad_rows
    assert proc.returncode == 0, proc.stderr
    _no_python_lines(proc.stderr)
    warned = [line for line in proc.stderr.splitlines() if line.startswith("gradscope: warning:")]
    assert len(warned) == 1 and "skipped 2 of 26 rows" in warned[0] and "dataset.skipped" not in warned[0]
    assert "data rows 0, 1, counted from 0 after the header" in warned[0]
    assert "are in run/skipped.csv" in proc.stderr
    assert (base / "run" / "skipped.csv").read_text().splitlines() == [
        "row,smiles,reason", "0,not-a-molecule,unparseable SMILES", "1,CCO,no labels"]
    # results on stdout (the table, the files, the next commands); log lines on stderr
    assert "epoch 1/1  train_loss" in proc.stderr and "epoch 1/1" not in proc.stdout
    assert "wrote run/config.json" in proc.stdout and "next:" in proc.stdout and "wrote" not in proc.stderr


def test_landscape_warnings_are_one_line_and_results_go_to_stdout(run_with_bad_rows, cli):
    base, _ = run_with_bad_rows
    proc = cli("landscape", "run", "--points", "3", "--samples", "4", "--out", "ls", cwd=base)
    assert proc.returncode == 0, proc.stderr
    _no_python_lines(proc.stderr)
    assert any(line.startswith("gradscope: warning: mols: skipped 2") for line in proc.stderr.splitlines())
    assert "centre loss" in proc.stdout and "wrote ls/" in proc.stdout and "next:" in proc.stdout
    assert "centre loss" not in proc.stderr and "wrote" not in proc.stderr


def test_plot_and_report_print_results_on_stdout_only(tiny_run, cli, tmp_path):
    proc = cli("plot", "obs1", str(tiny_run), "--out", "o.png", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == ""
    assert "| graphsam |" in proc.stdout.lower() and "wrote o.png" in proc.stdout
    proc = cli("report", str(tiny_run), "--out", "r.html", "--no-attention", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "wrote r.html" in proc.stdout and "obs1" in proc.stdout

"""`gradscope plot` and `gradscope report` end to end through gradscope.cli.main."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gradscope.cli import main
import kit.traces as kit_traces




EPOCHS = {"epoch": np.arange(3), "train_loss": [1.0, 0.7, 0.6], "test_loss": [1.1, 0.9, 0.8],
          "val_roc_auc": [0.6, 0.8, 0.7], "test_roc_auc": [0.5, 0.75, 0.8], "graphs_per_s": [50.0, 55.0, 60.0],
          "attention_entropy": [2.1, 2.5, 2.7]}


@pytest.fixture
def runs(tmp_path):
    syn = kit_traces
    x = np.linspace(-1, 1, 7)
    syn.write_trace(tmp_path / "sam" / "trace.h5", syn.sam_like(40, 1), EPOCHS, optimizer="SAM")
    syn.write_landscape(tmp_path / "sam" / "landscape" / "d1.h5", x, x**2)
    syn.write_trace(tmp_path / "gsam" / "trace.h5", syn.sam_like(40, 2), EPOCHS, optimizer="GraphSAM")
    syn.write_landscape(tmp_path / "gsam" / "landscape" / "d1.h5", x, 0.5 * x**2)
    return [str(tmp_path / "sam"), str(tmp_path / "gsam")]


@pytest.mark.parametrize("kind", ["obs1", "norms", "obs2", "entropy", "loss", "throughput", "landscape"])
def test_plot_png_every_kind(kind, runs, tmp_path, capsys):
    out = tmp_path / "fig" / f"{kind}.png"
    assert main(["plot", kind, *runs, "--out", str(out), "--labels", "sam,gsam", "--dpi", "40"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed
    if kind in ("obs1", "obs2", "entropy", "throughput"):
        assert "| sam |" in printed and "| gsam |" in printed  # the table, with the given labels


def test_plot_html_is_self_contained(runs, tmp_path, capsys):
    out = tmp_path / "obs1.html"
    assert main(["plot", "obs1", *runs, "--out", str(out), "--zoom", "5:15", "--quiet"]) == 0
    page = out.read_text()
    assert "plotly-graph-div" in page and "<script src=" not in page and len(page) > 3_000_000
    assert capsys.readouterr().out == ""
    svg = tmp_path / "obs1.svg"
    assert main(["plot", "obs1", runs[0], "--out", str(svg), "--quiet"]) == 0
    assert svg.read_text().lstrip().startswith("<?xml")


def test_plot_accepts_trace_files(runs, tmp_path):
    out = tmp_path / "n.png"
    assert main(["plot", "norms", f"{runs[0]}/trace.h5", "--out", str(out), "--quiet", "--dpi", "40"]) == 0
    assert out.stat().st_size > 0


def test_report(runs, tmp_path, capsys):
    out = tmp_path / "r" / "report.html"
    assert main(["report", *runs, "--out", str(out), "--title", "my runs"]) == 0
    page = out.read_text()
    assert "<title>my runs</title>" in page and page.count('class="plotly-graph-div"') == 7
    assert f"wrote {out}" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["plot", "obs1", "{missing}", "--out", "{out}.png"], "does not exist"),
    (["plot", "obs1", "{sam}", "--out", "{out}.png", "--zoom", "9:3"], "A < B"),
    (["plot", "obs1", "{sam}", "--out", "{out}.png", "--zoom", "abc"], "--zoom must be A:B"),
    (["plot", "obs1", "{sam}", "{gsam}", "--out", "{out}.png", "--labels", "one"], "--labels needs 2"),
    (["plot", "obs1", "{sam}", "--out", "{out}.txt"], "--out must end in"),
    (["plot", "entropy", "{sam}", "--out", "{out}.png", "--at", "soon"], "--at must be"),
    (["plot", "throughput", "{sam}", "--out", "{out}.png", "--metric", "rmse"], "no epochs/test_rmse"),
    (["plot", "obs1", "{empty}", "--out", "{out}.png"], "no recorded steps"),
    (["plot", "obs1", "{notatrace}", "--out", "{out}.png"], "not a readable HDF5 file"),
    (["plot", "landscape", "{notrace_dir}", "--out", "{out}.png"], "neither trace.h5 nor landscape"),
    (["report", "{missing}", "--out", "{out}.html"], "does not exist"),
])
def test_bad_input_exits_2_with_one_line(argv, message, runs, tmp_path, capsys):
    syn = kit_traces
    syn.write_trace(tmp_path / "empty" / "trace.h5", n_steps=0)
    (tmp_path / "bad.h5").write_text("plain text")
    (tmp_path / "nothing").mkdir()
    paths = {"missing": str(tmp_path / "missing"), "out": str(tmp_path / "o"), "sam": runs[0], "gsam": runs[1],
             "empty": str(tmp_path / "empty"), "notatrace": str(tmp_path / "bad.h5"), "notrace_dir": str(tmp_path / "nothing")}
    assert main([a.format(**paths) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradscope: error: ") and message in err and err.count("\n") == 1


def test_unknown_kind_is_an_argparse_error(runs, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["plot", "sharpness", runs[0], "--out", str(tmp_path / "x.png")])
    assert info.value.code == 2

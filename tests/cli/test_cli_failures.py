"""Every failure of a CLI command is a clean one: one line, exit status 2, nothing half-written.

Damaged input files (a cut trace, a cut or foreign checkpoint), an ``--out`` that cannot be
written (under a file, in a read-only folder, at the filesystem root) and a disk that fills up
while writing, for record, plot, report and landscape. Cases that could hang run the real
command in a subprocess with a timeout; the rest run in process (fast).
"""
from __future__ import annotations

import errno
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

import matplotlib.figure
import pytest

from gradscope.cli import main

#: A generous bound for "fails fast" on a loaded machine (each case takes a few seconds).
LIMIT_S = 60
NO_SPACE = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def one_error_line(returncode: int, err: str, *fragments: str) -> str:
    assert returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradscope: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def in_process(capsys, argv: list[str], *fragments: str) -> str:
    code = main(argv)
    return one_error_line(code, capsys.readouterr().err, *fragments)


def no_temporary_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name]


# -- damaged inputs, through the real commands ------------------------------------------------------
COMMANDS = {
    "plot": ["plot", "obs1", "{run}", "--out", "{tmp}/obs1.png"],
    "report": ["report", "{run}", "--out", "{tmp}/report.html", "--no-attention"],
    "landscape": ["landscape", "{run}", "--directions", "eps-omega", "--points", "3", "--samples", "4"],
    "trace": ["trace", "summary", "{run}"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_truncated_trace_fails_within_seconds(command, run_copy, cli, tmp_path) -> None:
    """`head -c 3000 trace.h5` — before, plot, report and landscape hung for more than 10 minutes."""
    trace = run_copy / "trace.h5"
    trace.write_bytes(trace.read_bytes()[:3000])
    argv = [a.format(run=run_copy, tmp=tmp_path) for a in COMMANDS[command]]
    start = time.monotonic()
    proc = cli(*argv, cwd=tmp_path, timeout=LIMIT_S)
    assert time.monotonic() - start < LIMIT_S
    one_error_line(proc.returncode, proc.stderr, "trace.h5", "truncated")
    assert not (run_copy / "landscape").exists()  # nothing written for a failed start
    assert not (tmp_path / "obs1.png").exists() and not (tmp_path / "report.html").exists()


def test_a_trace_cut_in_half_fails_within_seconds(run_copy, cli, tmp_path) -> None:
    trace = run_copy / "trace.h5"
    trace.write_bytes(trace.read_bytes()[: trace.stat().st_size // 2])
    proc = cli("plot", "norms", str(run_copy), "--out", str(tmp_path / "n.png"), cwd=tmp_path, timeout=LIMIT_S)
    one_error_line(proc.returncode, proc.stderr, "trace.h5", "truncated")


@pytest.mark.parametrize("content, problem", [
    (b"", "empty"),
    ("cut", "cut short or damaged"),
    (b"smiles,y\nCCO,1\n", "not a PyTorch checkpoint"),
])
def test_a_damaged_checkpoint_is_named_in_one_line(content, problem, run_copy, capsys) -> None:
    best = run_copy / "checkpoints" / "best.pt"
    best.write_bytes(best.read_bytes()[:3000] if content == "cut" else content)
    line = in_process(capsys, ["landscape", str(run_copy), "--points", "3", "--samples", "4"], str(best), problem)
    assert "Errno" not in line and "EOFError" not in line
    assert not (run_copy / "landscape").exists()


# -- --out: one rule for every command (gradscope.outputs) ---------------------------------------------
def _argv(command: str, tiny_run: Path, out: Path, record_argv) -> list[str]:
    if command == "record":
        return record_argv(out)
    return {
        "plot": ["plot", "obs1", str(tiny_run), "--out", str(out / "obs1.png")],
        "report": ["report", str(tiny_run), "--out", str(out / "report.html"), "--no-attention"],
        "landscape": ["landscape", str(tiny_run), "--points", "3", "--samples", "4", "--out", str(out)],
    }[command]


@pytest.fixture(autouse=True)
def _cache(cli_cache, monkeypatch) -> None:
    monkeypatch.setenv("GRADSCOPE_CACHE", str(cli_cache))


@pytest.mark.parametrize("command", ["plot", "report", "landscape", "record"])
def test_out_under_an_existing_file(command, tiny_run, record_argv, tmp_path, capsys) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    in_process(capsys, _argv(command, tiny_run, blocker / "sub", record_argv), "--out", "afile is a file, not a folder")
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("command", ["plot", "report", "landscape", "record"])
def test_out_in_a_read_only_folder(command, tiny_run, record_argv, tmp_path, capsys, monkeypatch) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.geteuid() == 0:  # root may write anywhere: play a user who may not write here
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == locked else real(p, mode, **kw))
    try:
        in_process(capsys, _argv(command, tiny_run, locked / "out", record_argv), "--out", "cannot write into", "locked")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("command", ["plot", "report", "landscape", "record"])
def test_out_in_a_new_folder_at_the_filesystem_root(command, tiny_run, record_argv, capsys) -> None:
    """`plot --out /nonexistent/x.png` created /nonexistent; a new top-level folder is refused."""
    top = Path(Path.cwd().anchor) / f"gradscope-test-{uuid.uuid4().hex[:8]}"
    in_process(capsys, _argv(command, tiny_run, top / "x", record_argv), "--out", str(top))
    assert not top.exists()


def test_missing_parent_folders_are_created(tiny_run, tmp_path, capsys) -> None:
    out = tmp_path / "a" / "b" / "obs1.png"
    assert main(["plot", "obs1", str(tiny_run), "--out", str(out), "--quiet"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG" and no_temporary_files(tmp_path) == []


def test_landscape_into_a_read_only_run_suggests_out(run_copy, capsys, monkeypatch) -> None:
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == run_copy else real(p, mode, **kw))
    in_process(capsys, ["landscape", str(run_copy), "--points", "3"], "landscape folder", "--out DIR")


# -- a full disk ------------------------------------------------------------------------------------
def _savefig_fills_the_disk(self, fname, *args, **kwargs) -> None:
    Path(fname).write_bytes(b"\x89PNG half a figure")
    raise NO_SPACE


def test_plot_on_a_full_disk_leaves_no_file(tiny_run, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", _savefig_fills_the_disk)
    out = tmp_path / "figs" / "obs1.png"
    in_process(capsys, ["plot", "obs1", str(tiny_run), "--out", str(out)], f"cannot write {out}", "No space left")
    assert not out.exists() and no_temporary_files(tmp_path) == []


def test_report_on_a_full_disk_leaves_no_file(tiny_run, tmp_path, capsys, monkeypatch) -> None:
    def write_text(self, text, *args, **kwargs):
        with open(self, "w") as fh:
            fh.write(text[:100])
        raise NO_SPACE

    monkeypatch.setattr(Path, "write_text", write_text)
    out = tmp_path / "report.html"
    in_process(capsys, ["report", str(tiny_run), "--out", str(out), "--no-attention"], f"cannot write {out}",
               "No space left")
    assert not out.exists() and no_temporary_files(tmp_path) == []


def test_landscape_on_a_full_disk(tiny_run, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", _savefig_fills_the_disk)
    out = tmp_path / "ls"
    in_process(capsys, ["landscape", str(tiny_run), "--points", "3", "--samples", "4", "--out", str(out), "--quiet"],
               f"cannot write the landscape figures into {out}", "No space left")


class _FillingFile:
    """A binary file that takes ``room`` bytes, then fails as a full disk does."""

    def __init__(self, fh, room: int) -> None:
        self.fh, self.room = fh, room

    def write(self, data) -> int:
        if len(data) > self.room:
            self.fh.write(bytes(data)[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.fh.write(data)

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.fh.close()


def test_record_on_a_full_disk_leaves_no_partial_checkpoint(record_argv, tmp_path, capsys, monkeypatch) -> None:
    import gradscope.train.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "open", lambda path, mode="r": _FillingFile(open(path, mode), 50_000),
                        raising=False)
    out = tmp_path / "run"
    in_process(capsys, record_argv(out), "cannot write checkpoint", "last.pt", "No space left")
    assert no_temporary_files(out) == [] and not (out / "checkpoints" / "last.pt").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file-size limit")
def test_record_when_the_trace_cannot_grow(record_argv, tmp_path, cli) -> None:
    """A real failed write (the file-size limit of `ulimit -f`): HDF5's error becomes one line."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))

    out = tmp_path / "run"
    proc = cli(*record_argv(out), cwd=tmp_path, timeout=LIMIT_S, preexec_fn=limit)
    one_error_line(proc.returncode, proc.stderr, "cannot write", "trace.h5", "File too large")
    assert no_temporary_files(out) == []


def test_overwrite_removes_what_an_interrupted_write_left(run_copy, record_argv, capsys) -> None:
    """Older versions left `.last.pt.tmpN` behind after a failed write; --overwrite removes them."""
    leftovers = [run_copy / "checkpoints" / ".last.pt.tmp4242", run_copy / "checkpoints" / ".best.pt.tmp17",
                 run_copy / ".config.json.tmp"]
    for path in leftovers:
        path.write_bytes(b"partial")
    assert main(record_argv(run_copy, "--overwrite")) == 0
    assert not any(p.exists() for p in leftovers) and (run_copy / "checkpoints" / "last.pt").is_file()

"""Featurization progress: log lines when stderr is not a terminal (every ~10 s or 10 %)."""
from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
import textwrap

import pytest

from gradscope import progress as progress_module
from gradscope.progress import Progress

LINE = re.compile(r"^featurizing x: [\d,]+/1,000 molecules \(\d+ %\), [\d,.]+ molecules/s, ETA .+$")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", c)
    return c


def no_logging_handlers(monkeypatch):
    """As in a plain script: nothing configured logging (pytest's own handlers hidden)."""
    monkeypatch.setattr(progress_module.LOGGER, "hasHandlers", lambda: False)


def test_lines_every_tenth_of_the_work(clock, monkeypatch):
    no_logging_handlers(monkeypatch)
    out = io.StringIO()  # not a terminal
    with Progress(1000, "featurizing x", stream=out) as bar:
        for _ in range(100):
            clock.now += 0.01
            bar.update(10)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10  # at 10 %, 20 %, ..., 90 %, and the total
    assert all(LINE.match(line) for line in lines[:-1]), lines
    assert [int(re.search(r"\((\d+) %\)", line).group(1)) for line in lines[:-1]] == list(range(10, 100, 10))
    assert re.match(r"featurizing x: 1,000 molecules in 1 s \(1,000 molecules/s\)$", lines[-1]), lines[-1]


def test_lines_every_ten_seconds_when_slow(clock, monkeypatch):
    no_logging_handlers(monkeypatch)
    out = io.StringIO()
    bar = Progress(1000, "featurizing x", stream=out)
    for _ in range(9):  # 9 molecules, 4 s apart: 0.9 % of the work in 36 s
        clock.now += 4.0
        bar.update(1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and all(LINE.match(line) for line in lines)  # at 12 s, 24 s, 36 s
    assert lines[-1].endswith("(1 %), 0.25 molecules/s, ETA 1 h 06 min")  # 991 molecules left
    bar.close(finished=False)  # an interrupted run writes no total
    assert len(out.getvalue().splitlines()) == 3


def test_lines_go_to_logging_when_it_is_configured(clock, caplog):
    out = io.StringIO()
    with caplog.at_level(logging.INFO, logger="gradscope"):
        with Progress(1000, "featurizing x", stream=out) as bar:
            clock.now += 1.0
            bar.update(500)
            clock.now += 1.0
            bar.update(500)
    assert out.getvalue() == ""
    messages = [r.getMessage() for r in caplog.records if r.name == "gradscope"]
    assert len(messages) == 2 and LINE.match(messages[0]) and "1,000 molecules in" in messages[1]


def test_disabled_and_terminal_show_no_lines(clock, monkeypatch):
    no_logging_handlers(monkeypatch)
    out = io.StringIO()
    with Progress(1000, "featurizing x", stream=out, enabled=False) as bar:
        bar.update(1000)
    with Progress(1000, "featurizing x", stream=out, terminal=True) as bar:  # a tqdm bar instead
        bar.update(1000)
    assert "featurizing x: 1,000 molecules in" not in out.getvalue()  # the bar's text, not the log line
    assert "\r" in out.getvalue()  # a bar redraws its line


def test_load_dataset_prints_progress_lines_to_a_piped_stderr(tmp_path):
    """A real process whose stderr is a pipe (as under nohup, CI or a scheduler): lines appear."""
    code = textwrap.dedent(f"""
        import warnings
        warnings.simplefilter("ignore")
        from gradscope.chem import load_dataset
        load_dataset("demo", cache_dir={str(tmp_path)!r}, workers=2)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("featurizing demo:")]
    assert len(lines) >= 2, done.stderr
    assert re.match(r"featurizing demo: [\d,]+/[\d,]+ molecules \(\d+ %\), [\d,]+ molecules/s, ETA ", lines[0])
    assert re.match(r"featurizing demo: [\d,]+ molecules in \d+ s \([\d,]+ molecules/s\)$", lines[-1])

"""Two `gradscope record` runs on one --out: the second is refused before it writes anything."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gradscope.cli import main
from gradscope.runlock import LOCK_NAME
from kit.data import record_args, write_regression_csv


def _wait_for_lock(out: Path, pid: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads((out / LOCK_NAME).read_text()).get("pid") == pid and (out / "config.json").exists():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise AssertionError("the first run never took the lock")


def test_a_second_writer_is_refused_and_the_first_runs_on(moleculenet_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GRADSCOPE_CACHE", str(tmp_path / "cache"))
    data = write_regression_csv(moleculenet_dir, tmp_path / "mols.csv", 24)
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "gradscope", *record_args(data, out, "--quiet", epochs=400)],
                             stderr=subprocess.PIPE, text=True, env={**os.environ, "GRADSCOPE_CACHE": str(tmp_path / "cache")})
    try:
        _wait_for_lock(out, first.pid)
        config_before = (out / "config.json").read_text()
        code = main(record_args(data, out, "--overwrite", "--optimizer", "sam", epochs=1))
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and f"process {first.pid}" in err[0] and "being written" in err[0]
        assert (out / "config.json").read_text() == config_before  # nothing of the refused run was written
        assert first.poll() is None  # the first run goes on
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=60)


def test_a_failed_first_write_leaves_no_directory_behind(tmp_path, capsys):
    out = tmp_path / "new-run"
    code = main(["record", "--data", str(tmp_path / "missing.csv"), "--out", str(out)])
    assert code == 2 and not out.exists()

"""Fixtures of the CLI tests: one tiny recorded run (shared, never written to) and a way to run the real command."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kit.data import record_args, write_regression_csv

REPO = Path(__file__).resolve().parents[2]




def run_cli(*argv: str, cwd: Path, timeout: float = 120, env: dict | None = None,
            **kw) -> subprocess.CompletedProcess:
    """The real `gradscope` command in a subprocess (this checkout first on the path)."""
    env = {**(env or os.environ), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "gradscope", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, **kw)


@pytest.fixture(scope="session")
def cli_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "gradscope-cache"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, cli_cache) -> Path:
    """A 1-epoch tiny-model run on 24 ESOL molecules with ε/ω snapshots (copy it before writing into it)."""
    from gradscope.cli import main

    base = tmp_path_factory.mktemp("tiny_run")
    data = write_regression_csv(REPO / "tests" / "data" / "moleculenet", base / "esol24.csv", 24)
    old = os.environ.get("GRADSCOPE_CACHE")
    os.environ["GRADSCOPE_CACHE"] = str(cli_cache)
    try:
        argv = record_args(data, base / "run", "--quiet", "--save-vectors-every", "2", epochs=1)
        assert main(argv) == 0
    finally:
        if old is None:
            os.environ.pop("GRADSCOPE_CACHE", None)
        else:
            os.environ["GRADSCOPE_CACHE"] = old
    return base / "run"


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Path:
    """A private copy of :func:`tiny_run` (its dataset file stays where the run found it)."""
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


@pytest.fixture(scope="session")
def cli(cli_cache):
    """:func:`run_cli` with the tests' feature cache."""
    def run(*argv: str, cwd: Path, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
        env = {**os.environ, "GRADSCOPE_CACHE": str(cli_cache)}
        return run_cli(*argv, cwd=cwd, timeout=timeout, env=env, **kw)
    return run


@pytest.fixture(scope="session")
def record_argv(tiny_run):
    """``record_argv(out, *extra)``: the command line of a 1-epoch tiny run on :func:`tiny_run`'s data."""
    def argv(out: Path, *extra: str) -> list[str]:
        return record_args(tiny_run.parent / "esol24.csv", out, "--quiet", *extra, epochs=1)
    return argv

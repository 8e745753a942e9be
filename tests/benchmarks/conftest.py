"""Fixtures of the benchmark-script tests: the repository root importable, a private feature cache."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # ``benchmarks`` is a folder of the repository, not an installed package
    sys.path.insert(0, str(REPO))


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the featurization cache out of the user's home (one cache per test session)."""
    monkeypatch.setenv("GRADSCOPE_CACHE", str(tmp_path_factory.getbasetemp() / "gradscope-cache"))

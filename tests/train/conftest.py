"""Fixtures of the record-loop tests: tiny data files (the feature cache is private suite-wide: tests/conftest.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from kit.data import write_classification_csv, write_regression_csv




@pytest.fixture
def regression_csv(moleculenet_dir: Path, tmp_path: Path) -> Path:
    """24 ESOL molecules: split 19/2/3, so batches of 8 give 3 steps per epoch (8, 8, 3)."""
    return write_regression_csv(moleculenet_dir, tmp_path / "esol24.csv", 24)


@pytest.fixture
def classification_csv(moleculenet_dir: Path, tmp_path: Path) -> Path:
    return write_classification_csv(moleculenet_dir, tmp_path / "bbbp32.csv", 32)

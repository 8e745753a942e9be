"""The notebooks in notebooks/ execute top to bottom on tiny runs made here (nbclient)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

from gradscope.cli import main  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory) -> list[Path]:
    base = tmp_path_factory.mktemp("runs")
    runs = []
    for optimizer in ("graphsam", "sam"):
        out = base / optimizer
        args = ["record", "--optimizer", optimizer, "--model", "tiny", "--epochs", "1", "--batch-size", "64",
                "--out", str(out), "--quiet", "--flush-every", "4"]
        if optimizer == "graphsam":
            args += ["--probe-exact-every", "3"]
        assert main(args) == 0
        runs.append(out)
    return runs


def _execute(name: str, env: dict[str, str], tmp_path: Path):
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{name} is stored with outputs"
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                         resources={"metadata": {"path": str(REPO)}})
        client.execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def _text(nb) -> str:
    return "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_explore_trace_notebook(tiny_runs, tmp_path) -> None:
    nb = _execute("explore_trace.ipynb", {"GRADSCOPE_RUN": str(tiny_runs[0]),
                                          "GRADSCOPE_COMPARE": str(tiny_runs[1])}, tmp_path)
    text = _text(nb)
    assert "consistent steps:" in text and "Trace(" in text
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # Observation 1, norms, Observation 2


def test_landscape_notebook(tiny_runs, tmp_path) -> None:
    nb = _execute("landscape.ipynb", {"GRADSCOPE_RUN": str(tiny_runs[0]), "GRADSCOPE_POINTS": "5"}, tmp_path)
    text = _text(nb)
    assert "centre loss" in text and "λ_max" in text


def test_lightning_chemprop_notebook(tmp_path) -> None:
    pytest.importorskip("lightning")
    pytest.importorskip("chemprop")
    nb = _execute("lightning_chemprop.ipynb", {"GRADSCOPE_OUT": str(tmp_path), "GRADSCOPE_EPOCHS": "2"}, tmp_path)
    text = _text(nb)
    assert "Trace(" in text and "no attention" in text
    assert any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)

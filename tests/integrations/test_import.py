"""`import gradscope` (and its core API) never imports an integration's framework."""
from __future__ import annotations

import subprocess
import sys

FRAMEWORKS = ("lightning", "pytorch_lightning", "chemprop", "tensorboard", "wandb", "torch.utils.tensorboard")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_import_gradscope_loads_no_framework() -> None:
    assert _loaded_after("import gradscope, gradscope.optim, gradscope.probes, gradscope.trace; gradscope.Recorder") == []


def test_the_probe_itself_can_fail() -> None:
    assert "lightning" in _loaded_after("import gradscope.integrations.lightning")
    assert _loaded_after("import gradscope.integrations, gradscope.integrations.sinks") == []
